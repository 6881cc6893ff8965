"""Course-level safety follow-up: IEC-HS screen, T-ICAHT, infections, IgG and LTFU status."""

from __future__ import annotations

import datetime as dt

from immunoreset.clinical.course_safety import (
    course_followup,
    course_iec_hs,
    course_igg,
    course_infections,
    course_ticaht,
)
from immunoreset.clinical.episodes import course_toxicity
from immunoreset.clinical.infections import compute_infection_density
from immunoreset.course import (
    AdverseEvent,
    Course,
    DailyAssessment,
    FollowUp,
    FollowUpVisit,
    Infection,
    Infusion,
    LabResult,
    Medication,
    Patient,
)

DAY0 = dt.date(2024, 6, 10)


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


def lab(n: int, analyte: str, value: float, unit: str) -> LabResult:
    return LabResult(date=day(n), analyte=analyte, value=value, unit=unit)


def course(**kw) -> Course:
    pt = Patient("RM-001", "ERL", "F", 2019, 3, "SLE", "M32.1", dt.date(2023, 1, 1))
    inf = (Infusion(date=DAY0, bag_ids=("BAG-1",), dose_cells_per_kg=1e6),)
    return Course(patient=pt, infusions=inf, **kw)


def test_iec_hs_screen_after_crs_with_anakinra() -> None:
    labs = [lab(0, "ferritin", 400, "ng/mL"), lab(12, "ferritin", 5000, "ng/mL"),
            lab(13, "fibrinogen", 120, "mg/dL"), lab(-5, "alt", 20, "U/L"),
            lab(12, "alt", 250, "U/L")]  # fmt: skip
    days = [DailyAssessment(date=day(1), temperature_max_c=38.5),
            DailyAssessment(date=day(2), temperature_max_c=38.2)]  # fmt: skip
    c = course(labs=tuple(labs), daily_assessments=tuple(days))
    r = course_iec_hs(c)
    assert r.suspected and r.grade is None
    assert set(r.features_present) >= {"hyperferritinaemia", "timing", "hypofibrinogenaemia",
                                       "transaminitis"}  # fmt: skip
    confirmed = course(
        labs=tuple(labs), daily_assessments=tuple(days),
        adverse_events=(AdverseEvent("IEC-HS", "iec_hs", 2, day(12)),),
        medications=(Medication("anakinra", "anticytokine", 100, "mg", day(12), day(20)),),
    )  # fmt: skip
    assert course_iec_hs(confirmed).grade == 2
    assert course_iec_hs(course()) is None


def test_ticaht_in_course_toxicity() -> None:
    labs = [lab(d, "platelets", 30_000 if 1 <= d <= 8 else 150_000, "cells/uL")
            for d in range(0, 31)]  # fmt: skip
    c = course(labs=tuple(labs))
    early, _ = course_ticaht(c)
    tox = course_toxicity(c)
    assert early.grade == tox.early_ticaht.grade == 2 and early.ctcae_grade == 3


def test_infections_igg_and_followup() -> None:
    c = course(
        infections=(Infection(day(10), "upper_respiratory", "viral", 2, "RSV"),
                    Infection(day(45), "urinary", "bacterial", 2)),
        labs=(lab(30, "igg", 350, "mg/dL"), lab(60, "igg", 250, "mg/dL"),
              lab(90, "igg", 500, "mg/dL")),
        medications=(Medication("IVIG", "ivig", 0.4, "g/kg", day(95)),),
        followup_visits=(FollowUpVisit("D28", day(28)),),
        followup=FollowUp(last_contact=day(120)),
    )  # fmt: skip
    p = course_infections(c)
    early, late = compute_infection_density([p])
    assert (early.events, late.events, early.patient_days, late.patient_days) == (1, 1, 29, 62)
    s = course_igg(c)
    assert s.days_below_lln == 60 and s.lln_source == "fallback_mayo"  # age 5: LLN 386
    assert [(e.first_day, e.doses) for e in s.ivig] == [(95, 1)]
    f = course_followup(c, today=day(130))
    assert [v.visit.code for v in f.overdue] == ["M3"]
    assert [v.status for v in f.visits[:3]] == ["done", "overdue", "upcoming"]
    dead = course(followup=FollowUp(last_contact=day(50), status="dead"))
    assert course_followup(dead, today=day(130)) is None
