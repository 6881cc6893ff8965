"""Issue 13 item 3: a released batch's QC results are read-only (store, on both databases).

An overwrite is refused and audited and changes nothing; a later result is *added* as a
post-release result that opens a deviation and, when out of specification, quarantines the
bags not yet infused.
"""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.factories import day
from tests.manufacturing.factories import PASSING_RELEASE
from tests.registry.gmp.factories import ADMIN, MONA, ROSA, add_batch, last_audit, release


@pytest.fixture
def released(registry: Registry, gmp: Gmp) -> str:
    add_batch(
        registry,
        "BT-L",
        bags=(("BG-L-1", "quarantined", day(300)), ("BG-L-2", "quarantined", day(300))),
    )
    gmp.record_qc(ADMIN, "BT-L", PASSING_RELEASE, "QC report 1")
    release(gmp, "BT-L", when=day(-20))
    return "BT-L"


def _state(registry: Registry, gmp: Gmp) -> tuple[object, ...]:
    course = registry.load_course(ADMIN, "RM-001")
    qc = gmp.evaluate(ADMIN, "BT-L")
    return (
        {a.attribute: a.value for a in qc.attributes},
        [b for b in course.batches if b.batch_id == "BT-L"],
        [b for b in course.bags if b.batch_id == "BT-L"],
        gmp.decision(ADMIN, "BT-L"),
    )


def test_overwrite_of_a_released_result_is_refused_and_audited(
    registry: Registry, gmp: Gmp, released: str
) -> None:
    before = _state(registry, gmp)
    for who in (ADMIN, ROSA):
        with pytest.raises(PermissionDenied, match="read-only"):
            gmp.record_qc(who, released, {"cd3_viability": 70.0}, "retyped")
    with pytest.raises(PermissionDenied, match="read-only"):  # a release-stage one with it
        gmp.record_qc(ADMIN, released, {"vcn": 1.0, "cd3_viability": 70.0}, "late")
    assert _state(registry, gmp) == before
    # the post-release results the spec awaits may be filled in once, never overwritten
    gmp.record_qc(ADMIN, released, {"vcn": 1.8}, "VCN report")
    with pytest.raises(PermissionDenied, match="read-only"):
        gmp.record_qc(ADMIN, released, {"vcn": 2.5}, "VCN retyped")
    assert gmp.evaluate(ADMIN, released).result("vcn").value == 1.8
    entry = last_audit(registry)
    assert (entry["action"], entry["table_name"]) == ("refused", "qc_results")
    assert gmp.evaluate(ADMIN, released).result("cd3_viability").value == 92.0


def test_awaited_post_release_result_out_of_spec_quarantines_bags(
    registry: Registry, gmp: Gmp, released: str
) -> None:
    gmp.record_qc(ADMIN, released, {"sterility_final": "positive"}, "final sterility")
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.status for b in course.bags if b.batch_id == released} == {"quarantined"}
    trail = registry.audit_trail(ADMIN, study_id="RM-001", limit=5)
    assert "deviations" in {e["table_name"] for e in trail}


def test_post_release_oos_result_opens_deviation_and_quarantines_bags(
    registry: Registry, gmp: Gmp, released: str
) -> None:
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.status for b in course.bags if b.batch_id == released} == {"released"}
    added = gmp.add_post_release_result(
        ROSA, released, {"sterility_final": "positive"}, "final sterility read-out day 14"
    )
    assert added["out_of_spec"] == ("sterility_final",)
    assert added["flagged_bags"] == ("BG-L-1", "BG-L-2")
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.status for b in course.bags if b.batch_id == released} == {"quarantined"}
    # the released results and the decision are untouched
    assert gmp.evaluate(ADMIN, released).result("cd3_viability").value == 92.0
    assert gmp.decision(ADMIN, released) is not None
    post = gmp.post_release_results(ADMIN, released)
    assert [(p["attribute"], p["status"], p["entered_by"]) for p in post] == [
        ("sterility_final", "fail", "rosa")
    ]
    trail = registry.audit_trail(ADMIN, study_id="RM-001", limit=10)
    assert {"deviations", "qc_post_release", "bags"} <= {e["table_name"] for e in trail}


def test_post_release_passing_result_flags_nothing(
    registry: Registry, gmp: Gmp, released: str
) -> None:
    added = gmp.add_post_release_result(ROSA, released, {"vcn": 1.8}, "VCN report")
    assert added["out_of_spec"] == () and added["flagged_bags"] == ()
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.status for b in course.bags if b.batch_id == released} == {"released"}


def test_post_release_refusals_change_nothing(registry: Registry, gmp: Gmp, released: str) -> None:
    before = _state(registry, gmp)
    with pytest.raises(PermissionDenied):
        gmp.add_post_release_result(MONA, released, {"vcn": 1.0}, "monitor")
    with pytest.raises(InvalidInput, match="released batch"):
        gmp.add_post_release_result(ADMIN, "BT-RM001", {"vcn": 1.0}, "not released")
    with pytest.raises(InvalidInput):
        gmp.add_post_release_result(ADMIN, released, {"viability": 1.0}, "unknown")
    assert _state(registry, gmp) == before
    assert gmp.post_release_results(ADMIN, released) == []


def test_qa_signed_approval_clears_the_quarantine_to_the_previous_status(
    registry: Registry, gmp: Gmp, released: str
) -> None:
    from tests.registry.gmp.factories import PASSWORD, QA, QA_ER

    registry.update_record(
        ADMIN, "RM-001", "bags", ("BG-L-2",), {"status": "stored_for_redosing"}, reason="kept"
    )
    added = gmp.add_post_release_result(ROSA, released, {"sterility_final": "positive"}, "d14")
    dev = added["deviation_id"]
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.bag_id: b.status for b in course.bags if b.batch_id == released} == {
        "BG-L-1": "quarantined",
        "BG-L-2": "quarantined",
    }
    before = _state(registry, gmp)
    for actor, error in ((ROSA, PermissionDenied), (QA_ER, NotFound)):
        with pytest.raises(error):
            gmp.approve_deviation(actor, dev, PASSWORD)
    with pytest.raises(PermissionDenied, match="signature refused"):
        gmp.approve_deviation(QA, dev, "not the password")
    assert _state(registry, gmp) == before
    done = gmp.approve_deviation(QA, dev, PASSWORD)
    assert done["cleared_bags"] == ("BG-L-1", "BG-L-2")
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.bag_id: b.status for b in course.bags if b.batch_id == released} == {
        "BG-L-1": "released",
        "BG-L-2": "stored_for_redosing",
    }
    assert gmp.verify_signature(ADMIN, done["signature_id"])
    trail = registry.audit_trail(ADMIN, study_id="RM-001", limit=6)
    assert any("quarantine cleared by QA" in (e["reason"] or "") for e in trail)
