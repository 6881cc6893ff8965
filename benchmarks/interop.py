"""Interop benchmark: FHIR, SDTM and REDCap exports of the 10,000-patient synthetic registry.

Target (2-core machine, SQLite): each export ≤ 60 s, timed end to end as a user runs it —
loading the visible courses from the registry, building the format, writing the files and
the audit record.

    .venv/bin/python benchmarks/interop.py [--patients 10000] [--db PATH] [--keep DIR]

Without ``--db`` the synthetic cohort is generated and imported first (not timed). With
``--db`` an existing registry is used (e.g. one built by an earlier run with ``--keep``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from immunoreset import demo
from immunoreset.interop import fhir, redcap, sdtm
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.csvio import import_csv, write_csv


def _unique_infections(courses):  # type: ignore[no-untyped-def]
    """The cohort with duplicate infection keys (onset, site, organism class) dropped.

    The synthetic generator can give one patient two infections on one day that map to the
    same site and organism class (e.g. two unmapped terms → other/unknown), which the CSV
    importer rightly refuses as one key twice (seen at 10,000 patients, seed 1).
    """
    for co in courses:
        seen, keep = set(), []
        for ifx in co.infections:
            key = (ifx.onset, ifx.site, ifx.organism_class)
            if key not in seen:
                seen.add(key)
                keep.append(ifx)
        if len(keep) != len(co.infections):
            co = dataclasses.replace(co, infections=tuple(keep))
        yield co


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the FHIR workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _size(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default=None, help="existing registry (default: build one)")
    ap.add_argument("--keep", default=None, help="folder to keep the built registry in")
    ap.add_argument("--workers", type=int, default=2, help="FHIR export processes")
    ap.add_argument("--sdtm-workers", type=int, default=1, help="SDTM column-wise processes")
    ap.add_argument("--only", default="fhir,sdtm,redcap")
    args = ap.parse_args()
    console = Console()
    actor = system_actor("benchmark")
    tmp = Path(tempfile.mkdtemp(prefix="interop-bench-"))
    try:
        db = args.db
        if db is None:
            folder = tmp / "csv"
            t0 = time.perf_counter()
            write_csv(
                _unique_infections(demo.synthetic_cohort(args.patients, seed=args.seed)),
                folder,
                sites=list(demo.SITE_NAMES.items()),
            )
            db = str(Path(args.keep or tmp) / f"interop-{args.patients}.db")
            with Registry(db, upgrade=True) as reg:
                import_csv(reg, actor, folder)
            shutil.rmtree(folder)
            console.print(
                f"built {args.patients:,}-patient registry in "
                f"{time.perf_counter() - t0:.1f} s (not timed)"
            )
        table = Table(title=f"interop exports, {args.patients:,} patients (target ≤ 60 s each)")
        for col in ("export", "wall s", "CPU s", "load", "output", "MB"):
            table.add_column(col, justify="right" if col != "export" else "left")
        with Registry(db) as reg:
            runs = {
                "fhir": lambda out: fhir.export_fhir(reg, actor, out, workers=args.workers),
                "sdtm": lambda out: sdtm.export_sdtm(reg, actor, out, workers=args.sdtm_workers),
                "redcap": lambda out: redcap.export_redcap(reg, actor, out),
            }
            for name in args.only.split(","):
                out = tmp / name
                t0, c0 = time.perf_counter(), _cpu()
                result = runs[name](out)
                seconds, cpu = time.perf_counter() - t0, _cpu() - c0
                load = os.getloadavg()[0]
                what = (
                    f"{len(result):,} bundles"
                    if name == "fhir"
                    else (
                        f"{sum(result.values()):,} rows"
                        if name == "sdtm"
                        else f"{result['records']:,} records"
                    )
                )
                table.add_row(
                    name, f"{seconds:.1f}", f"{cpu:.1f}", f"{load:.1f}", what, f"{_size(out):,.0f}"
                )
                console.print(f"{name}: {seconds:.1f} s wall, {cpu:.1f} s CPU, load {load:.1f}")
                shutil.rmtree(out)
        console.print(table)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
