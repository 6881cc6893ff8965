"""Infections by period and density (Hill et al., Blood 2018; clinical-addendum.md §3)."""

from __future__ import annotations

import pytest

from immunoreset.clinical.infections import (
    InfectionEvent,
    PatientFollowUp,
    assign_window,
    compute_infection_density,
    days_at_risk,
    grade_bacteraemia,
)

SPEC = "clinical-addendum §3"


def ev(day: int, cls: str = "viral", site: str = "upper respiratory", grade: int = 2):
    return InfectionEvent(day, cls, site, grade)


def test_case_1_density_per_100_patient_days() -> None:
    """§3 #1: 10 patients followed past day 28, 3 infections in 0–28 → 3/290 × 100 = 1.03."""
    cohort = [PatientFollowUp(90) for _ in range(7)] + [
        PatientFollowUp(90, (ev(d),)) for d in (0, 14, 28)
    ]
    early, late = compute_infection_density(cohort)
    assert (early.events, early.patient_days, early.patients_at_risk) == (3, 290, 10)
    assert early.density_per_100 == pytest.approx(100 * 3 / 290)
    assert round(early.density_per_100, 2) == 1.03
    assert (late.events, late.patient_days, late.density_per_100) == (0, 620, 0.0)


@pytest.mark.parametrize(
    ("window", "end", "expected", "source"),
    [
        ((0, 28), 14, 15, f"{SPEC} #2: dies day 14 → 15 days"),
        ((29, 90), 14, 0, f"{SPEC} #2: 0 days in 29–90"),
        ((29, 90), 29, 1, "inclusive: day 29 is one day"),
        ((29, 90), 28, 0, "ends the day before"),
        ((0, 28), 28, 29, "full window"),
        ((101, None), 200, 100, "open window to end of follow-up"),
    ],
)
def test_case_2_days_at_risk(window, end, expected, source) -> None:
    assert days_at_risk(*window, end) == expected, source


@pytest.mark.parametrize(
    ("day", "window_set", "expected"),
    [
        (28, "hill_2018", "days 0–28"),
        (29, "hill_2018", "days 29–90"),
        (90, "hill_2018", "days 29–90"),
        (91, "hill_2018", None),
        (-1, "hill_2018", None),
        (30, "platform_default", "days 0–30"),
        (31, "platform_default", "days 31–100"),
        (100, "platform_default", "days 31–100"),
        (101, "platform_default", "days > 100"),
    ],
)
def test_case_3_window_boundaries(day, window_set, expected) -> None:
    """§3 #3: onset 28/29 (hill_2018) and 30/31 (platform_default): early / late."""
    assert assign_window(day, window_set) == expected


def test_events_after_follow_up_end_or_before_day_0_are_not_counted() -> None:
    rows = compute_infection_density([PatientFollowUp(14, (ev(-2), ev(10), ev(20)))])
    assert rows[0].events == 1 and rows[0].patient_days == 15


def test_recurrence_interval_setting() -> None:
    p = PatientFollowUp(90, (ev(5), ev(9), ev(30), ev(9, "bacterial", "blood")))
    assert compute_infection_density([p])[0].events == 3
    rows = compute_infection_density([p], recurrence_interval_days=7)
    assert rows[0].events == 2  # day 9 same class/site within 7 days of day 5
    assert dict(rows[0].events_by_class) == {"bacterial": 1, "viral": 1}


def test_platform_default_windows_and_severe_count() -> None:
    p = PatientFollowUp(400, (ev(30, grade=3), ev(31), ev(150, "fungal", "lung", 4)))
    rows = compute_infection_density([p], window_set="platform_default")
    assert [r.events for r in rows] == [1, 1, 1]
    assert [r.patient_days for r in rows] == [31, 70, 300]
    assert [r.severe_events for r in rows] == [1, 0, 1]


def test_case_4_bacteraemia_severity() -> None:
    """§3 #4: CoNS → 3-grade G1 / moderate; E. coli without sepsis → G2 / severe."""
    assert grade_bacteraemia(cons_or_diphtheroid=True) == {
        "bmtctn_3grade": 1, "bmtctn_5level": "moderate"}  # fmt: skip
    assert grade_bacteraemia(cons_or_diphtheroid=False) == {
        "bmtctn_3grade": 2, "bmtctn_5level": "severe"}  # fmt: skip
    assert grade_bacteraemia(cons_or_diphtheroid=False, severe_sepsis=True)["bmtctn_3grade"] == 3


def test_no_patients_gives_no_density() -> None:
    assert compute_infection_density([])[0].density_per_100 is None
