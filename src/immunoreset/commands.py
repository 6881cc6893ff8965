"""Commands of the feature packages, mounted on the ``immunoreset`` CLI.

Each feature package keeps its command functions in its own ``cli`` module (light imports only);
this module is the one place that lists them, so ``immunoreset --help`` shows everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register", "summarise"]


def register(app: typer.Typer) -> None:
    """Add the feature packages' commands to ``app``."""
    from immunoreset.clinical.cli import grades
    from immunoreset.manufacturing.cli import mount as mount_manufacturing
    from immunoreset.model.cli import simulate
    from immunoreset.web.cli import serve, token_create

    app.command("grades")(grades)
    app.command("simulate")(simulate)
    app.command("serve")(serve)
    token_app = typer.Typer(help="API tokens for site systems.", no_args_is_help=True)
    token_app.command("create")(token_create)
    app.add_typer(token_app, name="token")
    mount_manufacturing(app)


def summarise(registry: Any, actor: Any, *, out: Path | None, console: Console) -> None:
    """Print a cohort overview of every visible course (and write the report when available)."""
    courses = list(registry.iter_courses(actor))
    table = Table(title=f"Cohort ({len(courses)} patients)")
    table.add_column("study ID")
    table.add_column("site")
    table.add_column("sex")
    table.add_column("age")
    table.add_column("diagnosis")
    table.add_column("infusion")
    table.add_column("follow-up (months)", justify="right")
    for co in courses[:50]:
        p = co.patient
        fu = (
            f"{(co.last_contact - co.day0).days / 30.4375:.1f}"
            if co.day0 and co.last_contact
            else "—"
        )
        table.add_row(
            p.study_id,
            p.site,
            p.sex,
            f"{co.age_at_infusion:.0f}" if co.day0 else "—",
            p.diagnosis,
            str(co.day0 or "—"),
            fu,
        )
    console.print(table)
