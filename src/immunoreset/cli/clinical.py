"""``immunoreset grades STUDY_ID``: the day-by-day CRS/ICANS grades with reasons, and episodes.

Grades are computed from the stored raw observations every time (never stored), so a corrected
observation changes the grade at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from immunoreset.cli import DbOption, UserOption, app, console, open_registry, user_errors

__all__ = ["grades"]


@app.command("grades")
def grades(
    study_id: Annotated[str, typer.Argument(help="Pseudonymous study ID, e.g. RM-003")],
    db: DbOption = None,
    user: UserOption = None,
    all_days: Annotated[
        bool, typer.Option("--all-days", help="Also list days with grade 0")
    ] = False,
) -> None:
    """Grade CRS and ICANS (ASTCT 2019) day by day, then episodes, ICAHT and CTCAE cytopenias."""
    from rich.table import Table

    from immunoreset.clinical.episodes import course_toxicity, daily_grades

    with user_errors():
        registry, actor = open_registry(db, user)
        course = registry.load_course(actor, study_id)
        days = daily_grades(course)
        table = Table("day", "CRS", "why", "ICANS", "why", title=f"{study_id}: daily grades")
        for d in days:
            if not all_days and not (d.crs_grade or d.icans_grade):
                continue
            table.add_row(
                f"{d.study_day:+d}",
                "—" if d.crs_grade is None else str(d.crs_grade),
                "; ".join(d.crs_reasons),
                "—" if d.icans_grade is None else str(d.icans_grade),
                "; ".join(d.icans_reasons),
            )
        console.print(table)
        tox = course_toxicity(course)
        ep = Table("episode", "onset day", "last day", "days", "max grade", "on day", "why")
        for e in (*tox.crs_episodes, *tox.icans_episodes):
            ep.add_row(
                e.kind,
                f"{e.onset_day:+d}",
                f"{e.last_day:+d}",
                str(e.duration_days),
                str(e.max_grade),
                f"{e.max_day:+d}",
                "; ".join(e.max_reasons),
            )
        console.print(ep)
        early, late = tox.early_icaht, tox.late_icaht
        console.print(
            f"ICAHT early: {_g(early.grade)} ({'; '.join(early.reasons)})\n"
            f"ICAHT late: {_g(late.grade)} ({'; '.join(late.reasons)})\n"
            f"CTCAE v5 worst after day 0 — neutrophils {_g(tox.neutrophil_grade)}, platelets "
            f"{_g(tox.platelet_grade)}, lymphocytes {_g(tox.lymphocyte_grade)}, anemia "
            f"{_g(tox.anemia_grade)}; febrile neutropenia days: "
            f"{', '.join(map(str, tox.febrile_neutropenia_days)) or 'none'}"
        )


def _g(grade: int | None) -> str:
    return "not gradable" if grade is None else f"grade {grade}"
