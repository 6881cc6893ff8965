"""Commands of the feature packages, mounted on the ``immunoreset`` CLI.

Each feature package keeps its command functions in its own ``cli`` module (light imports only);
this module is the one place that lists them, so ``immunoreset --help`` shows everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

__all__ = ["register", "summarise"]


def register(app: typer.Typer) -> None:
    """Add the feature packages' commands to ``app``."""
    from immunoreset.clinical.cli import grades
    from immunoreset.manufacturing.cli import mount as mount_manufacturing
    from immunoreset.model.cli import simulate
    from immunoreset.report.cli import report
    from immunoreset.web.cli import serve, token_create

    app.command("grades")(grades)
    app.command("simulate")(simulate)
    app.command("report")(report)
    app.command("serve")(serve)
    token_app = typer.Typer(help="API tokens for site systems.", no_args_is_help=True)
    token_app.command("create")(token_create)
    app.add_typer(token_app, name="token")
    mount_manufacturing(app)


def summarise(registry: Any, actor: Any, *, out: Path | None, console: Console) -> None:
    """Print the cohort summary (case-series tables and program metrics); write the report.

    With ``out`` the courses are loaded and analysed once, by the report, and its analysis is
    printed; without it they are analysed here.
    """
    from immunoreset.registry.gmp import Gmp
    from immunoreset.report.case_series import build_report
    from immunoreset.report.tables import analyse_cohort, cohort_summary_rich

    paths = None
    if out is not None:
        paths = build_report(registry, out_dir=out, actor=actor)
        cohort = paths.analysis
    else:
        cohort = analyse_cohort(list(registry.iter_courses(actor)))
    for table in cohort_summary_rich(cohort):
        console.print(table)
    console.print(_metrics_line(Gmp(registry).program_metrics(actor)))
    if paths is not None:
        console.print(
            f"report: {paths.html}" + (f" and {paths.pdf}" if paths.pdf else ""), soft_wrap=True
        )


def _metrics_line(metrics: Any) -> str:
    return "Manufacturing: " + "; ".join(metrics.reasons)
