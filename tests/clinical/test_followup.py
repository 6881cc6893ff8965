"""LTFU schedule (FDA LTFU guidance 2020; clinical-addendum.md §5)."""

from __future__ import annotations

import datetime as dt

import pytest

from immunoreset.clinical.followup import (
    LtfuSettings,
    add_months,
    build_schedule,
    visit_status,
)

INF = dt.date(2025, 1, 10)


def test_case_1_fifteen_years_lentiviral() -> None:
    """§5 #1: infusion 2025-01-10, lentiviral → LTFU end 2040-01-10; M3 due 2025-04-10."""
    s = build_schedule(INF)
    codes = [v.code for v in s]
    assert codes[:4] == ["D28", "M3", "M6", "M12"] and codes[-1] == "Y15"
    assert len(s) == 4 + 14
    by = {v.code: v for v in s}
    assert by["M3"].due == dt.date(2025, 4, 10)
    assert by["Y15"].due == dt.date(2040, 1, 10)
    assert by["D28"].study_day == 28


def test_items_per_visit_and_remote_years() -> None:
    by = {v.code: v for v in build_schedule(INF)}
    assert "rcr_rcl" in by["M3"].items and "rcr_rcl" not in by["Y2"].items
    assert "vaccination_status" not in by["M3"].items and "vaccination_status" in by["M6"].items
    assert by["Y5"].contact == "visit" and by["Y6"].contact == "remote"
    assert by["Y6"].items == ("contact_questionnaire", "secondary_malignancy_screen")
    assert all("secondary_malignancy_screen" in v.items for v in by.values())


def test_vector_type_sets_duration() -> None:
    assert build_schedule(INF, vector_type="non_integrating")[-1].code == "Y5"
    assert build_schedule(INF, vector_type="unknown")[-1].code == "Y15"
    short = LtfuSettings(years_by_vector={"integrating": 3, "non_integrating": 2, "unknown": 3})
    assert build_schedule(INF, settings=short)[-1].code == "Y3"


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (dt.date(2025, 3, 26), "upcoming"),  # M3 window opens 2025-03-27
        (dt.date(2025, 3, 27), "due"),
        (dt.date(2025, 4, 24), "due"),  # window closes 2025-04-24 (± 14 days)
        (dt.date(2025, 4, 25), "overdue"),
    ],
)
def test_due_and_overdue_window_boundaries(today: dt.date, status: str) -> None:
    st = {v.visit.code: v for v in visit_status(build_schedule(INF), done={}, today=today)}
    assert st["M3"].status == status
    if status == "overdue":
        assert st["M3"].days_overdue == 1


def test_done_visits_and_add_months() -> None:
    st = visit_status(build_schedule(INF), done={"M3": dt.date(2025, 5, 30)},
                      today=dt.date(2025, 6, 1))  # fmt: skip
    m3 = next(v for v in st if v.visit.code == "M3")
    assert m3.status == "done" and m3.done_on == dt.date(2025, 5, 30)
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
