"""Chain of identity: every refused link, and the printable trace."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rich.console import Console
from rich.tree import Tree

from immunoreset.course import Course, Infusion, Patient
from immunoreset.errors import ChainOfIdentityError, InvalidInput
from immunoreset.manufacturing.chain import (
    CHAIN_REASONS,
    ChainViolation,
    check_infusion,
    format_trace,
    trace,
    trace_course,
)
from immunoreset.manufacturing.qc import evaluate_batch, release_decision
from immunoreset.manufacturing.spec import default_spec
from tests.manufacturing.factories import PASSING_RELEASE, D, apheresis, bag, batch

ON = D(2025, 2, 1)


def _args(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "patient_study_id": "RM-001",
        "bag": bag(),
        "batch": batch(),
        "apheresis_owner_study_id": "RM-001",
        "on_date": ON,
        "already_infused_bag_ids": (),
    }
    return args | kw


def test_valid_infusion_passes() -> None:
    assert check_infusion(**_args()) is None


# (changes, reason code, words in the message) — issue 4 "Tests that must exist"
VIOLATIONS = [
    ({"bag": None}, "unknown_bag", "unknown bag"),
    ({"batch": None}, "unknown_batch", "B-1 is not recorded"),
    ({"batch": batch("B-9")}, "batch_mismatch", "belongs to batch B-1, not B-9"),
    ({"apheresis_owner_study_id": "RM-002"}, "wrong_patient", "apheresis of RM-002, not RM-001"),
    ({"apheresis_owner_study_id": None}, "wrong_patient", "owner of apheresis AP-1 is unknown"),
    ({"already_infused_bag_ids": ["B-1-01"]}, "already_infused", "already been infused"),
    ({"bag": bag(status="infused")}, "already_infused", "is infused"),
    ({"bag": bag(status="quarantined")}, "not_released", "is quarantined"),
    ({"bag": bag(status="discarded")}, "discarded", "discarded"),
    ({"bag": bag(status="expired")}, "expired", "is expired"),
    ({"batch": batch(status="quarantined")}, "batch_not_released", "B-1 is quarantined"),
    ({"batch": batch(status="failed")}, "batch_not_released", "B-1 is failed"),
    ({"on_date": D(2026, 1, 1)}, "expired", "expired on 2025-12-31"),
    ({"bag": bag(expiry=None)}, "no_expiry", "no expiry"),
]


@pytest.mark.parametrize(("changes", "reason", "words"), VIOLATIONS)
def test_violation_refused_with_reason(changes: dict[str, Any], reason: str, words: str) -> None:
    with pytest.raises(ChainOfIdentityError) as err:
        check_infusion(**_args(**changes))
    assert isinstance(err.value, ChainViolation)
    assert err.value.reason == reason
    assert reason in CHAIN_REASONS
    assert words in str(err.value)
    assert err.value.study_id == "RM-001"


def test_wrong_patient_checked_before_status() -> None:
    """A bag of another patient is refused as such even if it is also quarantined."""
    with pytest.raises(ChainViolation) as err:
        check_infusion(**_args(bag=bag(status="quarantined"), apheresis_owner_study_id="RM-002"))
    assert err.value.reason == "wrong_patient"
    assert err.value.bag_id == "B-1-01"
    assert err.value.batch_id == "B-1"


@pytest.mark.parametrize(
    ("changes", "source"),
    [
        ({"on_date": D(2025, 12, 31)}, "usable through the expiry date"),
        ({"bag": bag(status="stored_for_redosing")}, "re-dosing stock is released product"),
        ({"bag": bag(expiry=None), "require_expiry": False}, "expiry not required"),
        ({"already_infused_bag_ids": {"B-1-02"}}, "another bag was infused"),
    ],
)
def test_allowed_edges(changes: dict[str, Any], source: str) -> None:
    assert check_infusion(**_args(**changes)) is None, source


@pytest.mark.parametrize(
    "changes",
    [
        {"patient_study_id": "patient 1"},
        {"patient_study_id": None},
        {"bag": "B-1-01"},
        {"batch": "B-1"},
        {"apheresis_owner_study_id": "x"},
        {"on_date": "2025-02-01"},
        {"on_date": dt.datetime(2025, 2, 1, 10)},
        {"already_infused_bag_ids": "B-1-01"},
        {"already_infused_bag_ids": [1]},
        {"require_expiry": "yes"},
    ],
)
def test_bad_inputs(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        check_infusion(**_args(**changes))


# ------------------------------------------------------------------------- trace
def _chain() -> dict[str, Any]:
    return {
        "study_id": "RM-001",
        "apheresis": [apheresis()],
        "batches": [batch()],
        "bags": [
            bag("B-1-01", status="infused"),
            bag("B-1-02", status="stored_for_redosing", expiry=D(2026, 1, 31)),
        ],
        "infusions": [Infusion(ON, ("B-1-01",), 1e6)],
    }


def test_trace_structure() -> None:
    t = trace(**_chain())
    assert t.complete and t.reasons == ()
    (aph,) = t.apheresis
    (bn,) = aph.batches
    assert aph.apheresis.apheresis_id == "AP-1"
    assert [g.bag.bag_id for g in bn.bags] == ["B-1-01", "B-1-02"]
    assert bn.bags[0].infused_on == (ON,)
    assert bn.bags[1].infused_on == ()


def test_trace_lists_broken_links() -> None:
    chain = _chain()
    chain["batches"] = [batch(), batch("B-2", apheresis_id="AP-9")]
    chain["bags"] = [*chain["bags"], bag("B-7-01", batch_id="B-7")]
    chain["infusions"] = [Infusion(ON, ("B-1-01", "X-1"), 1e6)]
    t = trace(**chain)
    assert not t.complete
    assert t.reasons == (
        "infused bag X-1 is not among RM-001's bags",
        "batch B-2: apheresis AP-9 is not RM-001's",
        "bag B-7-01: batch B-7 is not RM-001's",
    )
    lines = format_trace(t, plain=True)
    assert isinstance(lines, list)
    assert "  BROKEN LINK: infused bag X-1 is not among RM-001's bags" in lines


def test_format_trace_plain_lines() -> None:
    qc = evaluate_batch(default_spec(), PASSING_RELEASE, batch_id="B-1")
    dec = release_decision(qc, released_by="qp.rossi", when=D(2025, 1, 16))
    lines = format_trace(trace(**_chain(), decisions={"B-1": dec}), plain=True)
    assert lines == [
        "RM-001",
        "  apheresis AP-1 on 2025-01-02 (2e+09 CD3+ cells, 150 mL)",
        "    batch B-1 CliniMACS Prodigy, 2025-01-03 → 2025-01-15, operator op1 [released]"
        " released by qp.rossi on 2025-01-16 against default-v1",
        "      bag B-1-01 5e+07 CAR+ T cells in 20 mL [infused] expires 2025-12-31"
        " infused 2025-02-01",
        "      bag B-1-02 5e+07 CAR+ T cells in 20 mL [stored_for_redosing] expires 2026-01-31",
        "  infusion 2025-02-01: bags B-1-01, 1e+06 CAR+ T cells/kg",
    ]


def test_format_trace_rich_tree() -> None:
    tree = format_trace(trace(**_chain()))
    assert isinstance(tree, Tree)
    console = Console(record=True, width=200, color_system=None)
    console.print(tree)
    text = console.export_text()
    assert "RM-001" in text and "B-1-02" in text and "infusion 2025-02-01" in text


def test_trace_course_matches_trace() -> None:
    patient = Patient("RM-001", "OPBG", "F", 2012, 5, "SLE", "M32.1", D(2020, 1, 1))
    c = _chain()
    course = Course(
        patient,
        apheresis=tuple(c["apheresis"]),
        batches=tuple(c["batches"]),
        bags=tuple(c["bags"]),
        infusions=tuple(c["infusions"]),
    )
    assert trace_course(course) == trace(**c)


@pytest.mark.parametrize(
    "changes",
    [
        {"study_id": "nope"},
        {"apheresis": "AP-1"},
        {"batches": [apheresis()]},
        {"bags": [batch()]},
        {"infusions": [None]},
        {"decisions": ["B-1"]},
    ],
)
def test_trace_bad_inputs(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        trace(**(_chain() | changes))


def test_format_and_course_bad_inputs() -> None:
    with pytest.raises(InvalidInput):
        format_trace("RM-001")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        format_trace(trace(**_chain()), plain="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        trace_course("RM-001")  # type: ignore[arg-type]
