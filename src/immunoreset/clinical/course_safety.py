"""A course's safety follow-up from its records: IEC-HS screen, T-ICAHT, infections, IgG, LTFU.

Pure functions over a :class:`~immunoreset.course.Course` (no database, no clock: ``today`` is
passed in). Each delegates the rules to the calculator module that cites its source:
:mod:`~immunoreset.clinical.iec_hs` (Hines 2023), :mod:`~immunoreset.clinical.ticaht`
(Rejeski 2025), :mod:`~immunoreset.clinical.infections` (Hill 2018),
:mod:`~immunoreset.clinical.igg` (Mayo age table; Hill 2019 / AAAAI 2022 triggers) and
:mod:`~immunoreset.clinical.followup` (FDA LTFU guidance 2020).

Operational choices (this project)
----------------------------------
* IEC-HS candidate onset = the day of the highest ferritin on days 1–100; the other features are
  read from labs within ± ``IEC_HS_WINDOW_DAYS`` (7) of it (lowest fibrinogen, highest ALT/AST,
  triglycerides, LDH); the day-0 ferritin and ALT/AST baselines are the last values on or before
  day 0. The registry stores no lab reference limits: ULNs come from :data:`LAB_LIMITS`
  (typical adult values, UNCONFIRMED for any given lab; ferritin ULN None → the day-0 value is
  the reference). Clinician confirmation = an adverse event of category ``iec_hs``; its grade 5
  = death. Interventions on or after the onset: anakinra/corticosteroid (medications or daily
  flags), vasopressors and mechanical ventilation (daily assessments).
* Infections: end of follow-up = last contact (or death); onset study day from the date.
* IgG: every ``igg`` lab; each ``ivig`` medication record is one dose on its start date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from immunoreset.clinical import followup as ltfu
from immunoreset.clinical import iec_hs, igg, infections, ticaht
from immunoreset.clinical.settings import DEFAULT_SETTINGS, ToxicitySettings
from immunoreset.course import Course
from immunoreset.errors import InvalidInput

__all__ = [
    "IEC_HS_WINDOW_DAYS",
    "LAB_LIMITS",
    "CourseFollowUp",
    "course_followup",
    "course_iec_hs",
    "course_igg",
    "course_infections",
    "course_ticaht",
]

IEC_HS_WINDOW_DAYS = 7
#: Reference limits used when the lab's are not stored (UNCONFIRMED, typical adult values).
LAB_LIMITS: Mapping[str, float | None] = {
    "ferritin_uln_ng_ml": None,
    "transaminase_uln_u_l": 40.0,
    "ldh_uln_u_l": 250.0,
}


def _check(course: object) -> Course:
    if not isinstance(course, Course):
        raise InvalidInput("course", course, "a Course")
    if course.day0 is None:
        raise InvalidInput("infusion", None, "an infusion date")
    return course


def _values(course: Course, analyte: str, lo: int, hi: int) -> list[tuple[int, float]]:
    days, vals = course.lab_series(analyte)
    return [(int(d), float(v)) for d, v in zip(days, vals, strict=True) if lo <= d <= hi]


def _baseline(course: Course, analyte: str) -> float | None:
    before = _values(course, analyte, -60, 0)
    return before[-1][1] if before else None


def course_ticaht(
    course: Course, *, ctcae_version: str = "5.0", settings: ToxicitySettings = DEFAULT_SETTINGS
) -> tuple[ticaht.TicahtResult, ticaht.TicahtResult]:
    """Early and late T-ICAHT (with the CTCAE nadir grade) of a course's platelet series."""
    course = _check(course)
    days, vals = course.lab_series("platelets")
    censor = None
    if course.followup is not None and course.followup.status == "dead":
        censor = float(course.study_day(course.followup.last_contact))
    return ticaht.grade_ticaht(
        days.tolist(), vals.tolist(), unit="cells/uL", censor_day=censor,
        ctcae_version=ctcae_version, settings=settings,
    )  # fmt: skip


def course_iec_hs(
    course: Course,
    *,
    settings: iec_hs.IecHsSettings = iec_hs.DEFAULT_IEC_HS_SETTINGS,
    tox_settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> iec_hs.IecHsResult | None:
    """IEC-HS screen of a course (None when no ferritin was measured on days 1–100)."""
    from immunoreset.clinical.episodes import crs_episodes

    course = _check(course)
    ferritin = _values(course, "ferritin", 1, 100)
    if not ferritin:
        return None
    onset, peak = max(ferritin, key=lambda dv: (dv[1], -dv[0]))
    lo, hi = onset - IEC_HS_WINDOW_DAYS, onset + IEC_HS_WINDOW_DAYS

    def worst(analyte: str, low: bool) -> float | None:
        vals = [v for _, v in _values(course, analyte, lo, hi)]
        return (min(vals) if low else max(vals)) if vals else None

    eps = [(e.onset_day, e.last_day) for e in crs_episodes(course, settings=tox_settings)]
    ae = [a for a in course.adverse_events if a.category == "iec_hs"]
    confirmed = bool(ae)
    died = any(a.grade == 5 for a in ae)
    acts: set[str] = set()
    onset_date = course.date_of_day(onset)
    for m in course.medications:
        if m.stop is not None and m.stop < onset_date:
            continue
        if m.drug.lower() == "anakinra":
            acts.add("anakinra")
        elif m.drug_class == "glucocorticoid" and m.start >= onset_date:
            acts.add("corticosteroids")
    for a in course.daily_assessments:
        if a.date < onset_date:
            continue
        if a.anakinra:
            acts.add("anakinra")
        if a.corticosteroids:
            acts.add("corticosteroids")
        if a.vasopressors:
            acts.add("vasopressor")
        if a.oxygen_device == "mechanical_ventilation":
            acts.add("intubation")
    alt, ast = worst("alt", False), worst("ast", False)
    uln = LAB_LIMITS["transaminase_uln_u_l"]
    ldh = worst("ldh", False)
    return iec_hs.assess_iec_hs(
        ferritin_ng_ml=peak,
        ferritin_uln_ng_ml=LAB_LIMITS["ferritin_uln_ng_ml"],
        ferritin_day0_ng_ml=_baseline(course, "ferritin"),
        onset_day=onset,
        crs_episodes=eps,
        fibrinogen_mg_dl=worst("fibrinogen", True),
        alt_u_l=alt,
        ast_u_l=ast,
        transaminase_uln_u_l=uln if alt is not None or ast is not None else None,
        alt_baseline_u_l=_baseline(course, "alt"),
        ast_baseline_u_l=_baseline(course, "ast"),
        triglycerides_mg_dl=worst("triglycerides", False),
        ldh_u_l=ldh,
        ldh_uln_u_l=LAB_LIMITS["ldh_uln_u_l"] if ldh is not None else None,
        confirmed_by_clinician=confirmed,
        interventions=sorted(acts),
        died_of_iec_hs=died,
        settings=settings,
    )


def _end_day(course: Course) -> int | None:
    last = course.last_contact
    return None if last is None else max(0, course.study_day(last))


def course_infections(course: Course) -> infections.PatientFollowUp | None:
    """The course's infections and follow-up end for density (None before any follow-up)."""
    course = _check(course)
    end = _end_day(course)
    if end is None:
        return None
    events = tuple(
        infections.InfectionEvent(
            course.study_day(i.onset), i.organism_class, i.site, i.ctcae_grade
        )
        for i in course.infections
        if course.study_day(i.onset) >= -365
    )
    return infections.PatientFollowUp(end, events)


def course_igg(
    course: Course, *, settings: igg.IggSettings = igg.DEFAULT_IGG_SETTINGS
) -> igg.IggSummary | None:
    """IgG series of a course against the age-specific LLN (None without IgG values)."""
    course = _check(course)
    rows = course.lab_results("igg")
    if not rows:
        return None
    days = [course.study_day(r.date) for r in rows]
    # one value per day (the lowest), as the course's lab index
    by_day: dict[int, tuple[float, dt.date]] = {}
    for d, r in zip(days, rows, strict=True):
        if d not in by_day or r.value < by_day[d][0]:
            by_day[d] = (r.value, r.date)
    ordered = sorted(by_day)
    doses = sorted(
        {course.study_day(m.start) for m in course.medications if m.drug_class == "ivig"}
    )
    return igg.summarise_igg(
        ordered,
        [by_day[d][0] for d in ordered],
        age_years=[course.age_on(by_day[d][1]) for d in ordered],
        ivig_days=doses,
        settings=settings,
    )


@dataclass(frozen=True, slots=True)
class CourseFollowUp:
    """A patient's LTFU schedule with the status of every visit on ``today``."""

    study_id: str
    site: str
    visits: tuple[ltfu.VisitStatus, ...]

    @property
    def due(self) -> tuple[ltfu.VisitStatus, ...]:
        return tuple(v for v in self.visits if v.status == "due")

    @property
    def overdue(self) -> tuple[ltfu.VisitStatus, ...]:
        return tuple(v for v in self.visits if v.status == "overdue")


def course_followup(
    course: Course,
    *,
    today: dt.date,
    vector_type: str = "integrating",
    settings: ltfu.LtfuSettings = ltfu.DEFAULT_LTFU_SETTINGS,
) -> CourseFollowUp | None:
    """LTFU visit status of a course on ``today``.

    None before infusion, after death and after withdrawal of consent (no visits are owed);
    a patient lost to follow-up keeps the schedule, so missed visits show as overdue.
    """
    if not isinstance(course, Course):
        raise InvalidInput("course", course, "a Course")
    if isinstance(today, dt.datetime) or not isinstance(today, dt.date):
        raise InvalidInput("today", today, "a calendar date")
    if course.day0 is None:
        return None
    if course.followup is not None and course.followup.status in ("dead", "withdrawn"):
        return None
    schedule = ltfu.build_schedule(course.day0, vector_type=vector_type, settings=settings)
    codes = {v.code for v in schedule}
    done = {v.visit: v.date for v in course.followup_visits if v.visit in codes}
    status = ltfu.visit_status(schedule, done=done, today=today)
    return CourseFollowUp(course.study_id, course.patient.site, status)
