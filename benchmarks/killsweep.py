"""Kill sweep: SIGKILL every migration after each of its SQL statements, on SQLite and on
PostgreSQL, and count the kill points after which the registry was still usable.

    .venv/bin/python benchmarks/killsweep.py [--only sqlite|postgres]

The probe is the suite's (``tests/registry/killpoints.py``, ``tests/registry/test_db.py``):
for each migration (empty and populated registries) and for ``db upgrade`` of a populated
registry from 0001 to head, a forked child runs the command and kills itself right after its
k-th statement, for every k; the registry must then be at the old or the new revision with
exactly that revision's schema, keep its rows, upgrade and accept a write. The suite runs the
whole per-migration sweep on SQLite but only the ``db upgrade`` sweep on PostgreSQL (each kill
point there needs a new database); this script runs every sweep on both. The PostgreSQL
cluster is a throwaway one (``tests/pgcluster.py``) with ``fsync=off``: the client is killed,
not the server, so flushing to disk changes nothing the probe looks at.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pgcluster import throwaway_cluster
from tests.registry.test_db import _Databases, _sweeps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=("sqlite", "postgres"), default=None)
    args = ap.parse_args()
    console = Console()
    table = Table(title="Kill sweep: kill points survived / tried")
    for col in ("database", "sweep", "survived", "tried", "failures"):
        table.add_column(col, justify="left" if col in ("database", "sweep") else "right")
    totals = []
    for kind in ("sqlite", "postgres"):
        if args.only not in (None, kind):
            continue
        load0, t0, c0 = os.getloadavg()[0], time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory(dir="/dev/shm" if kind == "sqlite" else None) as tmp:
            if kind == "sqlite":
                results = _sweeps(_Databases("sqlite", Path(tmp), None))
            else:
                with throwaway_cluster(durable=False) as server:
                    results = _sweeps(_Databases("postgres", Path(tmp), server))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        for r in results:
            table.add_row(kind, r.name, str(r.survived), str(r.tried), str(len(r.failures)))
            for f in r.failures[:3]:
                console.print(f"[red]{kind} {r.name}: {f}")
        survived = sum(r.survived for r in results)
        tried = sum(r.tried for r in results)
        totals.append(
            f"{kind}: {survived}/{tried} survived in {wall:.0f} s wall, {cpu:.0f} s CPU of this "
            f"process (children not counted), load {load0:.1f}→{os.getloadavg()[0]:.1f}"
        )
    console.print(table)
    for line in totals:
        console.print(line)


if __name__ == "__main__":
    main()
