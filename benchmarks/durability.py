"""Durability benchmark: import the 10,000-patient cohort, then backup → restore → verify.

    .venv/bin/python benchmarks/durability.py [--patients 10000] [--db URL] [--synchronous FULL]

Reports the import time (with the audit hash-chain seal and the write gate), the time of
``db backup``, ``db restore`` into a new registry and ``db verify --against`` (per-table
digests and both audit chains), and whether the two are identical. ``--db`` may name an empty
PostgreSQL database; its restore goes to a sibling database ``<name>_restored``.
``--synchronous NORMAL`` measures what SQLite's ``synchronous=FULL`` costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from immunoreset import demo
from immunoreset.registry import Registry, audit, system_actor
from immunoreset.registry.audit import verify
from immunoreset.registry.backup import backup, compare, restore
from immunoreset.registry.csvio import import_csv, write_csv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default=None)
    ap.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL"))
    ap.add_argument(
        "--import-only", action="store_true", help="skip backup → restore → verify (import figures)"
    )
    args = ap.parse_args()
    console = Console()
    actor = system_actor("benchmark")
    times: dict[str, float] = {}
    sealing = {"seconds": 0.0, "cpu": 0.0, "rows": 0}
    plain_seal = audit.seal

    def timed_seal(conn):  # type: ignore[no-untyped-def]
        t0, c0 = time.perf_counter(), time.process_time()
        n = plain_seal(conn)
        sealing["seconds"] += time.perf_counter() - t0
        sealing["cpu"] += time.process_time() - c0
        sealing["rows"] += n
        return n

    audit.seal = timed_seal  # the commit hook looks the function up at each commit
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "csv"
        write_csv(
            demo.synthetic_cohort(args.patients, seed=args.seed),
            folder,
            sites=list(demo.SITE_NAMES.items()),
        )
        db = args.db or str(Path(tmp) / "bench.db")
        with Registry(db, upgrade=True) as reg:
            if args.synchronous != "FULL":

                @sa.event.listens_for(reg.engine, "connect")
                def _sync(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
                    dbapi_conn.execute(f"PRAGMA synchronous={args.synchronous}")

                reg.engine.dispose()
            t0, c0 = time.perf_counter(), time.process_time()
            stats = import_csv(reg, actor, folder)
            times["import (write gate, audit, hash chain)"] = time.perf_counter() - t0
            times["  of which: sealing the audit rows at commit"] = sealing["seconds"]
            times["  sealing CPU time"] = sealing["cpu"]
            times["  import CPU time of this process"] = time.process_time() - c0
            t0 = time.perf_counter()
            chain = verify(reg.engine)
            times["audit verify"] = time.perf_counter() - t0
        if args.import_only:
            console.print(_table(times, args, db))
            console.print(
                f"rows inserted {stats.total_inserted:,}; audit rows sealed at commit "
                f"{sealing['rows']:,}; {chain}"
            )
            return
        file = Path(tmp) / "registry.backup"
        t0 = time.perf_counter()
        backup(db, file)
        times["db backup"] = time.perf_counter() - t0
        if db.startswith("postgresql"):
            server, name = db.rsplit("/", 1)
            target = f"{server}/{name}_restored"
            admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}_restored"'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}_restored"'))
            admin.dispose()
        else:
            target = str(Path(tmp) / "restored.db")
        t0 = time.perf_counter()
        restore(file, target)
        times["db restore"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = compare(target, file)
        times["db verify --against (restored vs backup)"] = time.perf_counter() - t0
    console.print(_table(times, args, db))
    console.print(
        f"rows inserted {stats.total_inserted:,}; audit rows sealed {sealing['rows']:,}; {chain}; "
        f"identical: {'yes' if result.identical else 'NO ' + ', '.join(result.differing)}"
    )


def _table(times: dict[str, float], args: argparse.Namespace, db: str) -> Table:
    kind = "PostgreSQL" if str(db).startswith("postgresql") else f"SQLite {args.synchronous}"
    table = Table(title=f"Durability benchmark ({args.patients:,} patients, {kind})")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, sec in times.items():
        table.add_row(step, f"{sec:.1f}")
    return table


if __name__ == "__main__":
    main()
