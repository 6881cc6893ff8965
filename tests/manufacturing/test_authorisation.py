"""Hospital-exemption authorisations, generated reports and what is overdue."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from immunoreset.course import AdverseEvent
from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.authorisation import (
    HospitalExemption,
    ReportingRules,
    RequiredReport,
    annual_reports,
    overdue,
    report_status,
    serious_ae_notifications,
    standard_reports,
)

D = dt.date


def _he(**kw: Any) -> HospitalExemption:
    args: dict[str, Any] = {
        "study_id": "RM-001",
        "authority": "AIFA",
        "reference": "HE-2024-007",
        "request_date": D(2024, 1, 10),
        "decision": "approved",
        "decision_date": D(2024, 2, 15),
        "conditions": ["report every serious AE", "annual report"],
    }
    return HospitalExemption(**(args | kw))


def test_authorisation_valid() -> None:
    he = _he()
    assert he.conditions == ("report every serious AE", "annual report")
    assert _he(decision="pending", decision_date=None).decision == "pending"
    assert _he(decision="rejected", decision_date=D(2024, 1, 10)).decision == "rejected"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"study_id": "x"}, "study_id"),
        ({"authority": ""}, "authority"),
        ({"reference": None}, "reference"),
        ({"request_date": "2024-01-10"}, "request_date"),
        ({"decision": "granted"}, "decision"),
        ({"decision_date": None}, "decision_date"),
        ({"decision": "pending"}, "decision_date"),
        ({"decision_date": D(2024, 1, 9)}, "decision_date"),
        ({"conditions": "annual report"}, "conditions"),
        ({"conditions": [""]}, "conditions"),
    ],
)
def test_authorisation_validation(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        _he(**kw)
    assert err.value.field == field


def test_annual_reports_each_anniversary() -> None:
    reports = annual_reports(_he(), until=D(2026, 2, 15))
    assert [(r.due, r.subject) for r in reports] == [
        (D(2025, 2, 15), "period 1"),
        (D(2026, 2, 15), "period 2"),
    ]
    assert all(r.authorisation_reference == "HE-2024-007" for r in reports)
    assert annual_reports(_he(), until=D(2026, 2, 14))[-1].due == D(2025, 2, 15)


def test_annual_reports_configurable_interval_and_leap_day() -> None:
    he = _he(decision_date=D(2024, 2, 29))
    rules = ReportingRules(annual_report_interval_months=6)
    assert [r.due for r in annual_reports(he, until=D(2025, 3, 1), rules=rules)] == [
        D(2024, 8, 29),
        D(2025, 2, 28),
    ]


@pytest.mark.parametrize("decision", ["pending", "rejected"])
def test_no_annual_reports_without_approval(decision: str) -> None:
    he = _he(decision=decision, decision_date=None if decision == "pending" else D(2024, 2, 1))
    assert annual_reports(he, until=D(2030, 1, 1)) == []


AES = [
    AdverseEvent("CRS", "crs", 1, D(2024, 3, 5)),
    AdverseEvent("febrile neutropenia", "hematologic", 3, D(2024, 3, 8), serious=True),
    AdverseEvent("sepsis", "infection", 5, D(2024, 4, 1), serious=True),
]


def test_serious_ae_notifications_default_rules() -> None:
    """15 days after onset (7 for a fatal event); non-serious events need none."""
    reports = serious_ae_notifications(_he(), AES)
    assert [(r.kind, r.due) for r in reports] == [
        ("sae_notification", D(2024, 3, 23)),
        ("sae_notification", D(2024, 4, 8)),
    ]
    assert reports[0].subject == "febrile neutropenia grade 3, onset 2024-03-08"


def test_serious_ae_notifications_configurable() -> None:
    rules = ReportingRules(serious_ae_days=7, fatal_ae_days=1)
    assert [r.due for r in serious_ae_notifications(_he(), AES, rules=rules)] == [
        D(2024, 3, 15),
        D(2024, 4, 2),
    ]


def test_standard_reports_sorted() -> None:
    reports = standard_reports(_he(), adverse_events=AES, until=D(2025, 3, 1))
    assert [r.due for r in reports] == [D(2024, 3, 23), D(2024, 4, 8), D(2025, 2, 15)]


# (due, submitted, today, status)
STATUS_ROWS = [
    (D(2025, 3, 1), None, D(2025, 2, 28), "due"),
    (D(2025, 3, 1), None, D(2025, 3, 1), "due"),
    (D(2025, 3, 1), None, D(2025, 3, 2), "overdue"),
    (D(2025, 3, 1), D(2025, 3, 1), D(2025, 4, 1), "submitted"),
    (D(2025, 3, 1), D(2025, 3, 2), D(2025, 4, 1), "submitted_late"),
]


@pytest.mark.parametrize(("due", "submitted", "today", "status"), STATUS_ROWS)
def test_report_status(
    due: dt.date, submitted: dt.date | None, today: dt.date, status: str
) -> None:
    r = RequiredReport("RM-001", "annual_report", "period 1", due, submitted)
    assert report_status(r, today) == status


def test_overdue_lists_unsubmitted_past_due_oldest_first() -> None:
    reports = [
        RequiredReport("RM-002", "sae_notification", "sepsis", D(2025, 3, 10)),
        RequiredReport("RM-001", "annual_report", "period 1", D(2025, 3, 1)),
        RequiredReport("RM-001", "annual_report", "period 2", D(2026, 3, 1)),
        RequiredReport("RM-003", "susar", "ICANS", D(2025, 2, 1), submitted=D(2025, 2, 5)),
        RequiredReport("RM-004", "final_report", "end", D(2025, 3, 20)),
    ]
    late = overdue(reports, D(2025, 3, 20))
    assert [(r.study_id, r.subject) for r in late] == [("RM-001", "period 1"), ("RM-002", "sepsis")]
    assert late[0].label == "annual report (period 1)"
    assert overdue([], D(2025, 1, 1)) == []


@pytest.mark.parametrize(
    "kw",
    [
        {"study_id": "RM1"},
        {"kind": "report"},
        {"subject": ""},
        {"due": "2025-01-01"},
        {"submitted": dt.datetime(2025, 1, 1)},
        {"authorisation_reference": ""},
    ],
)
def test_report_validation(kw: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "study_id": "RM-001",
        "kind": "annual_report",
        "subject": "period 1",
        "due": D(2025, 1, 1),
    }
    with pytest.raises(InvalidInput):
        RequiredReport(**(args | kw))


@pytest.mark.parametrize(
    "kw",
    [
        {"annual_report_interval_months": 0},
        {"serious_ae_days": 1.5},
        {"fatal_ae_days": 100},
        {"serious_ae_days": "15"},
    ],
)
def test_rules_validation(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        ReportingRules(**kw)


def test_helper_bad_inputs() -> None:
    with pytest.raises(InvalidInput):
        overdue("reports", D(2025, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        overdue([], "2025-01-01")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        overdue([None], D(2025, 1, 1))  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        annual_reports("HE-1", until=D(2025, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        annual_reports(_he(), until=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        annual_reports(_he(), until=D(2025, 1, 1), rules={"serious_ae_days": 7})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        serious_ae_notifications(_he(), [None])  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        serious_ae_notifications(_he(), "sepsis")  # type: ignore[arg-type]
