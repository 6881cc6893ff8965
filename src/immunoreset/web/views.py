"""What the pages show, computed from a :class:`~immunoreset.course.Course` (no I/O here).

Dashboard rows (study day, current and maximum CRS/ICANS, ICAHT, B-cell status, alerts), the
daily-grade timeline, the live grade of a day being typed in, plotly figure specifications
(plain dicts rendered by the bundled ``plotly.min.js``) and the chain-of-identity trace.

Alerts are a mapping of name → rule (:data:`ALERTS`); each rule sees the course, its daily
grades and "today":

* ``crs_today`` — CRS grade ≥ 2 on today's study day.
* ``bag_expiring`` — a bag still in stock (quarantined, released or stored for re-dosing:
  :data:`IN_STOCK_BAG_STATUS`) whose expiry is within ``bag_expiry_warning_days`` of today, or
  past; infused, discarded and expired-and-written-off bags never alert.
* ``he_report_overdue`` — a hospital-exemption report not submitted and past its due date (the
  caller passes the patient's overdue reports, from
  :meth:`immunoreset.registry.gmp.Gmp.overdue_reports`).
* ``ltfu_overdue`` — a long-term follow-up visit whose window (± 14 days) closed without a
  visit recorded (:func:`immunoreset.clinical.course_safety.course_followup`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from immunoreset import course as c
from immunoreset.clinical import crs, icans
from immunoreset.clinical.episodes import (
    DailyGrade,
    course_toxicity,
    daily_grades,
    grade_icans_day,
)
from immunoreset.clinical.settings import DEFAULT_SETTINGS
from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.authorisation import RequiredReport

__all__ = [
    "ALERTS",
    "AlertContext",
    "DashboardRow",
    "LiveGrade",
    "chain_view",
    "check_icans_gradable",
    "dashboard_row",
    "figures",
    "grade_day",
    "grade_observations",
    "uses_ice",
]

#: Bag statuses of bags still in stock, whose expiry the ``bag_expiring`` alert watches.
IN_STOCK_BAG_STATUS = ("quarantined", "released", "stored_for_redosing")
USABLE_BAG_STATUS = IN_STOCK_BAG_STATUS  # the former name


@dataclass(frozen=True, slots=True)
class DashboardRow:
    """One patient's line of the cohort dashboard."""

    study_id: str
    site: str
    diagnosis: str
    age_years: float | None
    study_day: int | None
    current_crs: int | None
    max_crs: int | None
    current_icans: int | None
    max_icans: int | None
    max_icaht: int | None
    bcell_status: str
    alerts: tuple[str, ...]
    #: The day "now" refers to: today when assessed today, else the last assessed day (≤ today)
    #: — ``current_crs``/``current_icans`` are that day's grades; None without any.
    current_on: dt.date | None = None
    #: Date of the patient's last daily assessment on or before today (any phase).
    last_assessment: dt.date | None = None
    #: The "today" of the row.
    as_of: dt.date | None = None

    @property
    def current_is_today(self) -> bool:
        """Whether "now" is today's assessment (else an earlier day, shown with its date)."""
        return self.current_on is not None and self.current_on == self.as_of


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What the alert rules need besides the course: the day and the patient's overdue reports.

    Attributes
    ----------
    today : datetime.date
    bag_warning_days : int
        Horizon of the ``bag_expiring`` alert, days (0–365).
    overdue_reports : tuple[RequiredReport, ...]
        The patient's hospital-exemption reports past due on ``today``, oldest first.
    """

    today: dt.date
    bag_warning_days: int = 30
    overdue_reports: tuple[RequiredReport, ...] = ()


def _crs_today(course: c.Course, grades: Sequence[DailyGrade], ctx: AlertContext) -> str | None:
    if course.day0 is None:
        return None
    day = course.study_day(ctx.today)
    for g in grades:
        if g.study_day == day and g.crs_grade is not None and g.crs_grade >= 2:
            return f"grade {g.crs_grade} CRS today (day {day})"
    return None


def _bag_expiring(course: c.Course, _: Sequence[DailyGrade], ctx: AlertContext) -> str | None:
    today = ctx.today
    horizon = today + dt.timedelta(days=ctx.bag_warning_days)
    soon = [
        b
        for b in course.bags
        if b.status in IN_STOCK_BAG_STATUS and b.expiry is not None and b.expiry <= horizon
    ]
    if not soon:
        return None
    first = min(soon, key=lambda b: b.expiry or today)
    verb = "expired" if first.expiry and first.expiry < today else "expires"
    return f"bag {first.bag_id} {verb} {first.expiry.isoformat() if first.expiry else ''}"


def _he_report_overdue(course: c.Course, _: Sequence[DailyGrade], ctx: AlertContext) -> str | None:
    mine = [r for r in ctx.overdue_reports if r.study_id == course.study_id]
    if not mine:
        return None
    first = min(mine, key=lambda r: r.due)
    more = f" (+{len(mine) - 1} more)" if len(mine) > 1 else ""
    return f"HE report overdue: {first.label}, due {first.due.isoformat()}{more}"


def _ltfu_overdue(course: c.Course, _: Sequence[DailyGrade], ctx: AlertContext) -> str | None:
    from immunoreset.clinical.course_safety import course_followup

    status = course_followup(course, today=ctx.today)
    if status is None or not status.overdue:
        return None
    first = status.overdue[0]
    more = f" (+{len(status.overdue) - 1} more)" if len(status.overdue) > 1 else ""
    return (
        f"LTFU visit {first.visit.code} overdue: due {first.visit.due.isoformat()}, "
        f"{first.days_overdue} days past its window{more}"
    )


#: Alert name -> rule(course, daily grades, context) -> message or None.
ALERTS: Mapping[str, Callable[[c.Course, Sequence[DailyGrade], AlertContext], str | None]] = {
    "crs_today": _crs_today,
    "he_report_overdue": _he_report_overdue,
    "bag_expiring": _bag_expiring,
    "ltfu_overdue": _ltfu_overdue,
}


def _bcell_status(course: c.Course) -> str:
    days, values = course.lab_series("cd19_b_cells")
    if days.size == 0:
        return "no counts"
    if course.day0 is None:
        return f"{values[-1]:g}/µL (before infusion)"
    from immunoreset.kinetics.bcells import aplasia_duration

    after = days >= 0
    if not after.any():
        return f"{values[-1]:g}/µL (before infusion)"
    try:
        res = aplasia_duration(days, values)
    except InvalidInput:
        return f"{values[-1]:g}/µL"
    if res.reconstitution_day is not None:
        return f"reconstituted day {res.reconstitution_day:g}"
    if res.cleared:
        return f"aplasia since day {res.clearance_day:g}"
    return f"{values[-1]:g}/µL, not cleared"


def dashboard_row(
    course: c.Course,
    *,
    today: dt.date,
    bag_warning_days: int = 30,
    overdue_reports: Sequence[RequiredReport] = (),
) -> DashboardRow:
    """The dashboard line of one course on ``today``.

    Parameters
    ----------
    course : Course
    today : datetime.date
        The day the study day and the alerts refer to.
    bag_warning_days : int
        ``bag_expiring`` horizon, days (0–365).
    overdue_reports : Sequence[RequiredReport]
        Overdue hospital-exemption reports (only this patient's are used).
    """
    from immunoreset.errors import check_range

    check_range("bag_warning_days", bag_warning_days, 0, 365, "days", integer=True)
    ctx = AlertContext(
        today=today,
        bag_warning_days=bag_warning_days,
        overdue_reports=tuple(r for r in overdue_reports if r.study_id == course.study_id),
    )
    grades: list[DailyGrade] = []
    max_icaht = None
    if course.day0 is not None:
        grades = daily_grades(course)
        try:
            tox = course_toxicity(course)
            max_icaht = tox.max_icaht_grade
        except InvalidInput:
            max_icaht = None
    crs_known = [g.crs_grade for g in grades if g.crs_grade is not None]
    icans_known = [g.icans_grade for g in grades if g.icans_grade is not None]
    # "now": today's grade, else the last assessed day up to today (a later, future-dated
    # entry is not "now"); never the last row regardless of its date
    current = None
    if course.day0 is not None:
        today_day = course.study_day(today)
        past = [g for g in grades if g.study_day <= today_day]
        current = past[-1] if past else None
    assessed = [a.date for a in course.daily_assessments if a.date <= today]
    alerts = tuple(
        msg for rule in ALERTS.values() if (msg := rule(course, grades, ctx)) is not None
    )
    return DashboardRow(
        study_id=course.study_id,
        site=course.patient.site,
        diagnosis=course.patient.diagnosis,
        age_years=course.age_on(today),
        study_day=course.study_day(today) if course.day0 is not None else None,
        current_crs=current.crs_grade if current else None,
        max_crs=max(crs_known) if crs_known else None,
        current_icans=current.icans_grade if current else None,
        max_icans=max(icans_known) if icans_known else None,
        max_icaht=max_icaht,
        bcell_status=_bcell_status(course),
        alerts=alerts,
        current_on=course.date_of_day(current.study_day) if current else None,
        last_assessment=max(assessed) if assessed else None,
        as_of=today,
    )


def uses_ice(course: c.Course, when: dt.date) -> bool:
    """Whether ICANS is assessed with ICE (age ≥ the CAPD age cut) on ``when``, else CAPD."""
    return course.age_on(when) >= DEFAULT_SETTINGS.capd_age_cut


def check_icans_gradable(course: c.Course, a: c.DailyAssessment) -> None:
    """Raise :class:`InvalidInput` (``ice_score``…) when the day's ICANS cannot be graded."""
    grade_icans_day(course, a)


@dataclass(frozen=True, slots=True)
class LiveGrade:
    """The grade of one day as typed: CRS and ICANS with reasons, and the study day."""

    study_day: int | None
    crs_grade: int | None
    crs_reasons: tuple[str, ...]
    icans_grade: int | None
    icans_reasons: tuple[str, ...]
    instrument: str
    age_years: float
    fever_masked: bool = False


#: Reasons of a blank day: nothing entered is "not assessed", never a grade 0.
NOT_ASSESSED: tuple[str, ...] = ("not assessed: no observation entered",)


def _not_assessed(a: c.DailyAssessment, age: float, instrument: str, course: c.Course) -> LiveGrade:
    day = course.study_day(a.date) if course.day0 is not None else None
    return LiveGrade(day, None, NOT_ASSESSED, None, NOT_ASSESSED, instrument, age)


def grade_day(course: c.Course, a: c.DailyAssessment) -> LiveGrade:
    """Grade ``a`` in the context of the course (masked fever after treatment, age on the day).

    Raises
    ------
    InvalidInput
        ICANS not gradable (e.g. an ICE score below the CAPD age cut).
    """
    age = course.age_on(a.date)
    instrument = "ice" if uses_ice(course, a.date) else "capd"
    if a.is_blank:
        return _not_assessed(a, age, instrument, course)
    check_icans_gradable(course, a)
    if course.day0 is not None and course.study_day(a.date) >= 0:
        others = tuple(x for x in course.daily_assessments if x.date != a.date)
        trial = dataclasses.replace(course, daily_assessments=(*others, a))
        day = course.study_day(a.date)
        g = next(x for x in daily_grades(trial) if x.study_day == day)
        return LiveGrade(
            day,
            g.crs_grade,
            g.crs_reasons,
            g.icans_grade,
            g.icans_reasons,
            instrument,
            age,
            g.fever_masked,
        )
    day = course.study_day(a.date) if course.day0 is not None else None
    note = ("before the infusion: not CRS/ICANS by definition",) if day is not None else ()
    return grade_observations(a, age_years=age, study_day=day, note=note)


def grade_observations(
    a: c.DailyAssessment,
    *,
    age_years: float,
    study_day: int | None = None,
    note: tuple[str, ...] = (),
) -> LiveGrade:
    """Grade one day's observations on their own (no earlier days, so no masked fever).

    ``age_years`` (0–120) chooses ICE (≥ the CAPD age cut) or CAPD.
    """
    from immunoreset.errors import check_range

    check_range("age_years", age_years, 0, 120, "years")
    if a.is_blank:
        instrument = "ice" if age_years >= DEFAULT_SETTINGS.capd_age_cut else "capd"
        return LiveGrade(study_day, None, NOT_ASSESSED, None, NOT_ASSESSED, instrument, age_years)
    r = crs.grade_crs(
        temperature_c=a.temperature_max_c,
        hypotension=a.hypotension,
        vasopressors=a.vasopressors,
        oxygen_device=a.oxygen_device,
        oxygen_flow_l_min=a.oxygen_flow_l_min,
    )
    i = icans.grade_icans(
        age_years=age_years,
        ice_score=a.ice_score,
        capd_score=None if a.unable_to_assess else a.capd_score,
        unable_to_assess=a.unable_to_assess,
        consciousness=a.consciousness,
        seizure=a.seizure,
        motor_weakness=a.motor_weakness,
        cerebral_edema=a.cerebral_edema,
    )
    instrument = "ice" if age_years >= DEFAULT_SETTINGS.capd_age_cut else "capd"
    return LiveGrade(
        study_day, r.grade, r.reasons + note, i.grade, i.reasons, instrument, age_years
    )


# --------------------------------------------------------------------------- figures
#: Figure key -> (title, analytes or instruments, y-axis title, log scale).
FIGURES: Mapping[str, tuple[str, tuple[str, ...], str, bool]] = {
    "car_t": ("CAR T cells", ("car_t_flow", "car_t_qpcr"), "cells/µL · copies/µg", True),
    "b_cells": ("CD19+ B cells", ("cd19_b_cells",), "cells/µL", False),
    "anc": ("Absolute neutrophil count", ("anc",), "cells/µL", False),
    "autoantibodies": (
        "Autoantibodies",
        ("anti_dsdna", "anti_scl70", "anti_tif1g", "anti_mda5", "anti_jo1"),
        "IU/mL · U/mL",
        True,
    ),
}


def _layout(title: str, ytitle: str, log: bool) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "xaxis": {"title": {"text": "study day"}, "zeroline": True},
        "yaxis": {"title": {"text": ytitle}, "type": "log" if log else "linear"},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 45},
        "height": 280,
        "legend": {"orientation": "h"},
        "template": "none",
    }


def _label(key: str) -> str:
    from immunoreset.report.labels import label

    return label(key)


def figures(course: c.Course) -> dict[str, dict[str, Any]]:
    """Plotly figure specifications (``{"data": …, "layout": …}``) of the patient page."""
    if course.day0 is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for key, (title, analytes, ytitle, log) in FIGURES.items():
        traces = []
        for analyte in analytes:
            results = course.lab_results(analyte)
            if not results:
                continue
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": _label(analyte),
                    "x": [course.study_day(r.date) for r in results],
                    "y": [max(r.value, 1e-3) if log else r.value for r in results],
                    "text": [
                        f"{r.date.isoformat()}: {'< LLOQ ' if r.below_lloq else ''}"
                        f"{r.value:g} {r.unit}"
                        for r in results
                    ],
                    "hoverinfo": "text+name",
                }
            )
        if traces:
            out[key] = {"data": traces, "layout": _layout(title, ytitle, log)}
    from immunoreset.report.labels import label
    from immunoreset.vocab import INSTRUMENTS

    scores: dict[str, list[c.DiseaseAssessment]] = {}
    for d in sorted(course.disease_assessments, key=lambda d: d.date):
        scores.setdefault(d.instrument, []).append(d)
    for name, rows in scores.items():  # one panel per instrument, on its own scale
        lo, hi, title = INSTRUMENTS.get(name, (0.0, None, label(name)))
        shown = label(name)
        ytitle = shown if "(" in shown or hi is None else f"{shown} ({lo:g}–{hi:g})"
        layout = _layout(shown, ytitle, False)
        if hi is not None:
            layout["yaxis"]["range"] = [lo, hi]
        layout["showlegend"] = False
        out[f"disease-{name}"] = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": label(name),
                    "x": [course.study_day(d.date) for d in rows],
                    "y": [d.score for d in rows],
                    "text": [f"{d.date.isoformat()}: {d.score:g}" for d in rows],
                    "hoverinfo": "text+name",
                }
            ],
            "layout": layout,
            "title": title,
        }
    return out


def chain_view(course: c.Course) -> Any:
    """The chain-of-identity trace (apheresis → batch → bags → infusion) of the course."""
    from immunoreset.manufacturing.chain import trace_course

    return trace_course(course)


# --------------------------------------------------------------------------- safety follow-up
def safety_view(course: c.Course, today: dt.date) -> dict[str, Any]:
    """IgG series, infections by period, IEC-HS screen, T-ICAHT and LTFU status for the page."""
    from immunoreset.clinical import course_safety as cs
    from immunoreset.clinical.infections import assign_window

    out: dict[str, Any] = {"igg": None, "igg_days": [], "infections": [], "iec_hs": None}
    out["ticaht"] = None
    out["followup"] = cs.course_followup(course, today=today)
    if course.day0 is None:
        return out
    s = cs.course_igg(course)
    if s is not None:
        days, values = course.lab_series("igg")  # lowest value per day, as course_igg
        out["igg"] = s
        out["igg_days"] = [
            {"day": int(d), "value": v, "lln": lln, "below": below, "on_rep": rep}
            for d, v, lln, below, rep in zip(
                days.tolist(),
                values.tolist(),
                s.lln_mg_dl,
                s.below_lln,
                s.on_replacement,
                strict=True,
            )
        ]
    for i in course.infections:
        day = course.study_day(i.onset)
        out["infections"].append(
            {
                "onset": i.onset.isoformat(),
                "day": day,
                "window": assign_window(day) if day >= -365 else None,
                "site": i.site,
                "organism": " ".join(x for x in (i.organism_class, i.organism or "") if x),
                "grade": i.ctcae_grade,
            }
        )
    out["iec_hs"] = cs.course_iec_hs(course)
    out["ticaht"] = cs.course_ticaht(course)
    return out


# --------------------------------------------------------------------------- patient summary
#: The grade table opens on the acute phase: study days 0–14 (CRS/ICANS onset and resolution;
#: ASTCT 2019 grading applies from the infusion on).
ACUTE_DAYS = (0, 14)


def _episodes_text(episodes: Sequence[Any]) -> str:
    if not episodes:
        return "none"
    return "; ".join(
        f"grade {e.max_grade}, days {e.onset_day}–{e.last_day} ({e.duration_days} d)"
        + (" · tocilizumab" if e.tocilizumab else "")
        + (" · corticosteroids" if e.corticosteroids else "")
        for e in episodes
    )


def patient_summary(course: c.Course, today: dt.date) -> dict[str, Any] | None:
    """The patient page's summary box, from the case-series functions (nothing recomputed).

    Dose, response (DORIS/LLDAS for SLE, TIS for myositis), B-cell clearance/return, follow-up
    and the first day off therapy come from the report's per-patient table
    (:func:`immunoreset.report.tables.patients.table_patients`) and its cohort analysis
    (lymphodepletion regimen, therapy note); CRS/ICANS episodes and ICAHT from
    :func:`immunoreset.clinical.episodes.course_toxicity`; IEC-HS, infections and the LTFU
    visits from :mod:`immunoreset.clinical.course_safety`. None before the infusion.
    """
    if course.day0 is None:
        return None
    import math

    from immunoreset.clinical import course_safety as cs
    from immunoreset.report.tables.cohort import analyse_cohort
    from immunoreset.report.tables.patients import table_patients

    analysis = analyse_cohort([course])
    row = table_patients(analysis).iloc[0].to_dict()
    p = analysis.patients.loc[course.study_id]
    out: dict[str, Any] = {"row": row, "regimen": p["regimen"], "therapy_note": p["therapy_note"]}
    off = p["off_from_day"]
    out["off_therapy"] = (
        course.date_of_day(int(off)) if p["therapy_free"] and not math.isnan(off) else None
    )
    out["off_therapy_day"] = int(off) if out["off_therapy"] is not None else None
    try:
        tox = course_toxicity(course)
    except InvalidInput as err:
        out["crs"] = out["icans"] = f"not gradable ({err.message})"
        out["icaht"] = "—"
    else:
        out["crs"] = _episodes_text(tox.crs_episodes)
        out["icans"] = _episodes_text(tox.icans_episodes)
        early, late = tox.early_icaht.grade, tox.late_icaht.grade
        out["icaht"] = (
            f"early {'–' if early is None else early}, late {'–' if late is None else late}"
        )
    iec = cs.course_iec_hs(course)
    out["iec_hs"] = (
        "not assessed"
        if iec is None
        else ("suspected" + (f", grade {iec.grade}" if iec.grade is not None else ""))
        if iec.suspected
        else "not suspected"
    )
    infections = course.infections
    grades = [i.ctcae_grade for i in infections if i.ctcae_grade is not None]
    out["infections"] = (
        "none recorded"
        if not infections
        else f"{len(infections)} (highest CTCAE grade {max(grades)})"
        if grades
        else f"{len(infections)}"
    )
    fu = cs.course_followup(course, today=today)
    out["followup_status"] = course.followup.status if course.followup else "unknown"
    out["visits_overdue"] = list(fu.overdue) if fu else []
    out["visits_due"] = list(fu.due) if fu else []
    upcoming = [v for v in fu.visits if v.status == "upcoming"] if fu else []
    out["next_visit"] = upcoming[0] if upcoming else None
    return out
