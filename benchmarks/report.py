"""Report benchmark: the case-series report for the 10,000-patient synthetic registry.

Target (issue 5, 2-core machine, SQLite): ≤ 60 s end to end — loading every course from the
registry, the analysis (vectorised across patients), the figures, the HTML and the PDF.

    .venv/bin/python benchmarks/report.py [--patients 10000] [--seed 1] [--no-pdf]

The synthetic cohort is generated and saved into a temporary SQLite registry first (not timed).
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
from immunoreset.report.case_series import build_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-pdf", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="copy the report into this folder")
    args = ap.parse_args()
    console = Console()
    actor = system_actor("benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        with Registry(db, upgrade=True) as reg:
            for code, *_ in demo.SITES:
                reg.add_site(actor, code, code.title())
            reg.save_courses(
                actor, demo.synthetic_cohort(args.patients, seed=args.seed), reason="benchmark"
            )
        t_setup = time.perf_counter() - t0
        console.print(f"registry of {args.patients:,} synthetic patients ready in {t_setup:.1f} s")
        out = args.keep or Path(tmp) / "report"
        t0 = time.perf_counter()
        with Registry(db, upgrade=True) as reg:
            paths = build_report(reg, out_dir=out, actor=actor, pdf=not args.no_pdf)
        total = time.perf_counter() - t0
        size_html = paths.html.stat().st_size
        size_pdf = paths.pdf.stat().st_size if paths.pdf else 0
    table = Table(title=f"Case-series report, {paths.n_patients:,} patients (SQLite)")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, seconds in paths.timings.items():
        table.add_row(step, f"{seconds:.1f}")
    table.add_row("[bold]end to end[/]", f"[bold]{total:.1f}[/]")
    table.add_row("target", "≤ 60")
    console.print(table)
    console.print(f"HTML {size_html / 1e6:.2f} MB, PDF {size_pdf / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
