"""PostgreSQL's own share of a bulk import: the server CPU of COPYing the imported rows back.

    .venv/bin/python benchmarks/copy_floor.py [--patients 1000] [--pg-setting NAME=VALUE]

Why: issue 14 asks for the 10,000-patient import on PostgreSQL in ≤ 60 s on 2 cores. One
import is one transaction, so one server backend does all of its writing, on one core,
whatever the client does. This benchmark measures that backend's work alone, with no
parsing, validation or hashing on the client: it imports the synthetic cohort once (not
timed) into a throwaway *durable* cluster (``tests/pgcluster.py``: fsync, synchronous_commit
and full_page_writes on), takes every registry table out with ``COPY … TO STDOUT`` (the
server's own text, so the client sends nothing it has to build), and then, in a second empty
registry of the same schema, COPYs every table back in one transaction and rolls it back,
once per variant:

* ``as built``: the schema as it is (primary keys, unique natural keys, the child tables'
  foreign key to ``patients``, the audit trail's three indexes);
* ``no foreign keys``: the same without the child tables' foreign keys (what PostgreSQL's
  per-row referential-integrity trigger costs);
* ``no audit indexes``: without ``ix_audit_study``, ``ix_audit_chain_seq`` and
  ``ix_audit_unsealed`` (what indexing the audit rows costs);
* ``binary``: as built, in COPY's binary format (what parsing COPY text costs the server).

Each figure is the backend's CPU seconds (``/proc/<pid>/stat``) and the wall time of the
whole transaction; the 1-minute load average is printed with them. The variants only measure
where the time goes — the registry keeps its keys, foreign keys and indexes.

Measured 2026-12-02 (PostgreSQL 15.18, durable, max_wal_size 4GB, shared_buffers 128MB; two
shared cores with other work running, so the backend's CPU seconds are the figure to compare):

==============================  ==============================  ===============================
variant                         1,000 patients (1,084,814 rows)  10,000 patients (10,904,574 rows,
                                                                 2,425 MB of COPY text)
==============================  ==============================  ===============================
as built (text COPY)            15.7 s wall, 12.3 CPU-s (2.5)    215.6 s wall, **116.7 CPU-s** (4.7)
no foreign keys to patients     9.5 s, 8.9 CPU-s                 120.3 s, 82.5 CPU-s (−34.2)
no audit indexes                11.6 s, 11.2 CPU-s               134.9 s, 99.8 CPU-s (−16.9)
as built, binary COPY           11.5 s, 11.2 CPU-s               114.7 s, 90.3 CPU-s (−26.4)
==============================  ==============================  ===============================

So the 10,000-patient import cannot finish in under ≈ 117 s on PostgreSQL as the schema is,
whatever the client does: its single backend alone needs that much CPU (the client's parsing,
validation and hash chain, ≈ 170 CPU-s more today, run beside it on the other core). Binary
COPY and a set-based replacement of the per-row foreign-key trigger would bring the backend to
≈ 60 CPU-s at best, with nothing left for the client — see issue 14's note.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pgcluster import throwaway_cluster

from immunoreset import demo
from immunoreset.registry import Registry, schema, system_actor
from immunoreset.registry.csvio import import_csv, write_csv

_TICK = os.sysconf("SC_CLK_TCK")
_AUDIT_INDEXES = ("ix_audit_study", "ix_audit_chain_seq", "ix_audit_unsealed")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _tables() -> list[str]:
    """Every table holding imported rows, parents first (the foreign keys' order)."""
    return [t.name for t in schema.metadata.sorted_tables]


def _dump(dbapi, tables: list[str], fmt: str) -> dict[str, tuple[list[str], bytes]]:  # type: ignore[no-untyped-def]
    out = {}
    with dbapi.cursor() as cur:
        for name in tables:
            cols = [c.name for c in schema.metadata.tables[name].columns]
            buf = io.BytesIO()
            with cur.copy(f"COPY {name} ({', '.join(cols)}) TO STDOUT (FORMAT {fmt})") as copy:
                for chunk in copy:
                    buf.write(chunk)
            if buf.tell():
                out[name] = (cols, buf.getvalue())
    return out


def _load(
    dbapi, data: dict[str, tuple[list[str], bytes]], fmt: str, prepare: list[str]
) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """COPY ``data`` back in one transaction after the ``prepare`` statements; roll back."""
    with dbapi.cursor() as cur:
        pid = cur.execute("SELECT pg_backend_pid()").fetchone()[0]
        for sql in prepare:
            cur.execute(sql)
        t0, c0 = time.perf_counter(), _cpu(pid)
        for name, (cols, payload) in data.items():
            with cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN (FORMAT {fmt})") as copy:
                for i in range(0, len(payload), 1 << 20):
                    copy.write(payload[i : i + (1 << 20)])
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # any deferred check runs inside the timing
        wall, cpu = time.perf_counter() - t0, _cpu(pid) - c0
    dbapi.rollback()
    return wall, cpu


def _foreign_keys(dbapi) -> list[str]:  # type: ignore[no-untyped-def]
    with dbapi.cursor() as cur:
        rows = cur.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = 'patients'::regclass"
        ).fetchall()
    return [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for table, name in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pg-setting", action="append", default=["max_wal_size=4GB"])
    args = ap.parse_args()
    console = Console()
    with (
        tempfile.TemporaryDirectory() as tmp,
        throwaway_cluster(durable=True, settings=args.pg_setting) as server,
    ):
        folder = Path(tmp) / "csv"
        write_csv(
            demo.synthetic_cohort(args.patients, seed=args.seed),
            folder,
            sites=list(demo.SITE_NAMES.items()),
        )
        admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE source")
            conn.exec_driver_sql("CREATE DATABASE target")
        admin.dispose()
        with Registry(f"{server}/source", upgrade=True) as reg:
            stats = import_csv(reg, system_actor("benchmark"), folder)
            raw = reg.engine.raw_connection()
            try:
                text = _dump(raw.driver_connection, _tables(), "text")
                binary = _dump(raw.driver_connection, _tables(), "binary")
            finally:
                raw.close()
        rows = sum(payload.count(b"\n") for _, payload in text.values())
        console.print(
            f"{args.patients:,} patients: {stats.total_inserted:,} rows imported; "
            f"{rows:,} rows in {len(text)} tables to COPY back "
            f"({sum(len(p) for _, p in text.values()) / 1e6:,.0f} MB of COPY text)"
        )
        variants = [
            ("as built (text COPY)", text, "text", "keys"),
            ("no foreign keys to patients", text, "text", "fks"),
            ("no audit indexes", text, "text", "audit"),
            ("as built, binary COPY", binary, "binary", "keys"),
        ]
        table = Table(title=f"Server backend, COPY of {rows:,} rows in one transaction")
        for col in ("variant", "wall s", "backend CPU s", "µs per row", "load (1 min)"):
            table.add_column(col, justify="left" if col == "variant" else "right")
        for i, (name, data, fmt, drop) in enumerate(variants):
            wall, cpu, load = _variant(server, f"target{i}", data, fmt, drop)
            console.print(f"  {name}: {wall:.1f} s, {cpu:.1f} CPU-s")
            table.add_row(name, f"{wall:.1f}", f"{cpu:.1f}", f"{cpu / rows * 1e6:.2f}", load)
        console.print(table)


def _variant(server: str, db: str, data, fmt: str, drop: str) -> tuple[float, float, str]:  # type: ignore[no-untyped-def]
    """Load ``data`` into a new registry database ``db`` (dropped afterwards): a fresh one per
    variant, as rolled-back rows would leave dead tuples and index entries for the next."""
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {db}")
    Registry(f"{server}/{db}", upgrade=True).close()
    engine = sa.create_engine(f"{server}/{db}")
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        prepare = []
        if drop == "fks":
            prepare = _foreign_keys(dbapi)
        elif drop == "audit":
            prepare = [f"DROP INDEX {i}" for i in _AUDIT_INDEXES]
        with dbapi.cursor() as cur:
            cur.execute("CHECKPOINT")
        load0 = os.getloadavg()[0]
        wall, cpu = _load(dbapi, data, fmt, prepare)
        load = f"{load0:.1f}→{os.getloadavg()[0]:.1f}"
    finally:
        raw.close()
        engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {db}")
    admin.dispose()
    return wall, cpu, load


if __name__ == "__main__":
    main()
