"""``immunoreset report``: the case-series report (HTML + PDF) from the registry.

Heavy imports (pandas, matplotlib, WeasyPrint) happen inside the command so
``immunoreset --help`` stays instant. Tracebacks never show local variables (they may hold
patient data): the project's errors become one line and exit code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from immunoreset.cli import app

__all__ = ["report", "report_command"]


def report_command(
    *,
    out: Path,
    db: str | None = None,
    user: str | None = None,
    site: str | None = None,
    diagnosis: str | None = None,
    patient: str | None = None,
    pdf: bool = True,
    console: Any = None,
) -> Any:
    """Load the courses with a progress bar, build the report, print the paths and timings.

    Returns
    -------
    ReportPaths
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from immunoreset.registry import Registry, system_actor
    from immunoreset.report.case_series import build_report

    con = console or Console()
    with Registry(db) as registry:
        actor = registry.actor_for(user) if user else system_actor("report")
        total = 1 if patient else len(registry.list_patients(actor, site=site, diagnosis=diagnosis))
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=con,
            transient=True,
        ) as bar:
            task = bar.add_task("loading courses", total=total)
            paths = build_report(
                registry,
                out_dir=out,
                actor=actor,
                site=site,
                diagnosis=diagnosis,
                patient=patient,
                pdf=pdf,
                progress=lambda n: bar.advance(task, n),
            )
    con.print(f"[bold]report[/] ({paths.n_patients:,} patients)")
    con.print(f"  HTML: {paths.html}", soft_wrap=True)
    if paths.pdf is not None:
        con.print(f"  PDF:  {paths.pdf}", soft_wrap=True)
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in paths.timings.items())
    con.print(f"  [dim]{steps}[/]")
    return paths


@app.command("report")
def report(
    out: Path = typer.Option(Path("report"), "--out", help="Folder to write the report into."),
    db: str | None = typer.Option(
        None, "--db", help="Registry: SQLite path or SQLAlchemy URL.", show_default=False
    ),
    user: str | None = typer.Option(
        None,
        "--user",
        envvar="IMMUNORESET_USER",
        help="Act as this registry user (site and role rules apply).",
        show_default=False,
    ),
    site: str | None = typer.Option(None, "--site", help="Only this site's patients."),
    diagnosis: str | None = typer.Option(None, "--diagnosis", help="Only this diagnosis."),
    patient: str | None = typer.Option(
        None, "--patient", help="One patient's one-page summary (study ID, e.g. RM-003)."
    ),
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Also write the PDF."),
) -> None:
    """Write the case-series report (HTML and PDF) or one patient's summary."""
    from rich.console import Console

    from immunoreset.errors import ImmunoresetError

    try:
        report_command(
            out=out, db=db, user=user, site=site, diagnosis=diagnosis, patient=patient, pdf=pdf
        )
    except ImmunoresetError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
