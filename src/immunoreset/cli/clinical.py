"""``immunoreset grades STUDY_ID`` (daily CRS/ICANS grades with reasons, episodes) and
``immunoreset followup due [--site]`` (long-term follow-up visits due and overdue).

Grades are computed from the stored raw observations every time (never stored), so a corrected
observation changes the grade at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from immunoreset.cli import (
    DbOption,
    JsonOption,
    UserOption,
    app,
    console,
    open_registry,
    print_json,
    user_errors,
)

__all__ = ["followup_app", "followup_due", "grades"]


@app.command("grades")
def grades(
    study_id: Annotated[str, typer.Argument(help="Pseudonymous study ID, e.g. RM-003")],
    db: DbOption = None,
    user: UserOption = None,
    all_days: Annotated[
        bool, typer.Option("--all-days", help="Also list days with grade 0")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Grade CRS and ICANS (ASTCT 2019) day by day, then episodes, ICAHT and CTCAE cytopenias."""
    from rich.table import Table

    from immunoreset.clinical.episodes import course_toxicity, daily_grades

    with user_errors():
        registry, actor = open_registry(db, user)
        course = registry.load_course(actor, study_id)
        days = daily_grades(course)
        if as_json:
            from dataclasses import asdict

            tox = course_toxicity(course)
            print_json(
                {
                    "study_id": study_id,
                    "days": [asdict(d) for d in days if all_days or d.crs_grade or d.icans_grade],
                    "episodes": [asdict(e) for e in (*tox.crs_episodes, *tox.icans_episodes)],
                    "early_icaht": {
                        "grade": tox.early_icaht.grade,
                        "reasons": list(tox.early_icaht.reasons),
                    },
                    "late_icaht": {
                        "grade": tox.late_icaht.grade,
                        "reasons": list(tox.late_icaht.reasons),
                    },
                }
            )
            return
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


followup_app = typer.Typer(
    help="Long-term follow-up (15 years after a gene-modified cell product).", no_args_is_help=True
)
app.add_typer(followup_app, name="followup")


@followup_app.command("due")
def followup_due(
    db: DbOption = None,
    user: UserOption = None,
    site: Annotated[
        str | None, typer.Option("--site", help="Only patients of this site code")
    ] = None,
    today: Annotated[
        str | None, typer.Option("--today", help="Reference date YYYY-MM-DD [default: today]")
    ] = None,
    vector: Annotated[
        str,
        typer.Option("--vector", help="Vector type: integrating, non_integrating or unknown"),
    ] = "integrating",
) -> None:
    """List LTFU visits due now and overdue (window ± 14 days), with what each collects."""
    import datetime as dt

    from rich.table import Table

    from immunoreset.clinical.course_safety import course_followup
    from immunoreset.clinical.followup import VECTOR_TYPES
    from immunoreset.errors import InvalidInput, check_choice

    with user_errors():
        check_choice("vector", vector, VECTOR_TYPES)
        try:
            when = dt.date.today() if today is None else dt.date.fromisoformat(today)
        except ValueError:
            raise InvalidInput("today", today, "a date YYYY-MM-DD") from None
        registry, actor = open_registry(db, user)
        if site is not None:
            known = [code for code, _ in registry.list_sites()]
            check_choice("site", site, known)
        table = Table(
            "study ID",
            "site",
            "visit",
            "due",
            "window",
            "status",
            "overdue (days)",
            "collects",
            title=f"Long-term follow-up on {when.isoformat()}",
        )
        n_due = n_over = 0
        for course in registry.iter_courses(actor, site=site):
            status = course_followup(course, today=when, vector_type=vector)
            if status is None:
                continue
            for v in (*status.overdue, *status.due):
                n_over += v.status == "overdue"
                n_due += v.status == "due"
                sv = v.visit
                table.add_row(
                    status.study_id,
                    status.site,
                    sv.code,
                    sv.due.isoformat(),
                    f"{sv.window_start.isoformat()} – {sv.window_end.isoformat()}",
                    v.status,
                    str(v.days_overdue) if v.status == "overdue" else "",
                    ", ".join(sv.items),
                )
        console.print(table)
        console.print(f"{n_over} overdue, {n_due} due")
