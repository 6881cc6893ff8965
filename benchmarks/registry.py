"""Registry benchmark: import the 10,000-patient synthetic cohort from CSV and load it back.

Targets (2-core machine, SQLite): import ≤ 60 s, load all courses ≤ 20 s.

    .venv/bin/python benchmarks/registry.py [--patients 10000] [--db URL]

The CSV folder is generated first (not timed); the import is the full path a data manager
uses (parse, validate every row, write in one transaction with the audit trail).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from immunoreset import demo
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.csvio import import_csv, read_csv_dir, write_csv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default=None, help="registry URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    console = Console()
    actor = system_actor("benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "csv"
        t0 = time.perf_counter()
        counts = write_csv(
            demo.synthetic_cohort(args.patients, seed=args.seed),
            folder,
            sites=list(demo.SITE_NAMES.items()),
        )
        t_gen = time.perf_counter() - t0
        rows = sum(counts.values())
        console.print(f"generated {args.patients:,} patients, {rows:,} rows in {t_gen:.1f} s")
        db = args.db or str(Path(tmp) / "bench.db")
        with Registry(db, upgrade=True) as reg:
            t0 = time.perf_counter()
            parsed = read_csv_dir(folder)
            t_parse = time.perf_counter() - t0
            del parsed
            t0 = time.perf_counter()
            stats = import_csv(reg, actor, folder)
            t_import = time.perf_counter() - t0
            t0 = time.perf_counter()
            n = 0
            records = 0
            for course in reg.iter_courses(actor):
                n += 1
                records += len(course.labs) + len(course.daily_assessments)
            t_load = time.perf_counter() - t0
            audit = reg.count_rows()["audit_log"]
    table = Table(title=f"Registry benchmark ({args.patients:,} patients, SQLite)")
    for col in ("step", "seconds", "rows", "rows/s", "target"):
        table.add_column(col, justify="right" if col != "step" else "left")
    table.add_row(
        "parse + validate CSV", f"{t_parse:.1f}", f"{rows:,}", f"{rows / t_parse:,.0f}", ""
    )
    table.add_row(
        "import (parse, validate, write, audit)",
        f"{t_import:.1f}",
        f"{stats.total_inserted:,}",
        f"{stats.total_inserted / t_import:,.0f}",
        "≤ 60 s",
    )
    table.add_row(
        "load every course", f"{t_load:.1f}", f"{rows:,}", f"{rows / t_load:,.0f}", "≤ 20 s"
    )
    console.print(table)
    console.print(f"courses loaded: {n:,}; audit rows: {audit:,}")


if __name__ == "__main__":
    main()
