"""Release store: release refused on QC unless a documented deviation, pending results, dates."""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.manufacturing import ReleaseRefused
from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.factories import day
from tests.manufacturing.factories import PASSING_POST, PASSING_RELEASE
from tests.registry.gmp.factories import ADMIN, ROSA, add_batch, deviation, last_audit


# --------------------------------------------------------------------------- QC and release
def test_release_refused_on_failed_attribute_unless_deviation(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-R", bags=(("BG-R-1", "quarantined", day(300)),))
    qc = gmp.record_qc(ADMIN, "BT-R", {**PASSING_RELEASE, "endotoxin": 5.0}, "QC report 1")
    assert qc.failed == ("endotoxin",)
    with pytest.raises(ReleaseRefused) as err:
        gmp.release(ADMIN, "BT-R", when=day(-20))
    assert err.value.failed == ("endotoxin",)
    entry = last_audit(registry)
    assert (entry["action"], entry["table_name"]) == ("refused", "release_decisions")
    assert "endotoxin 5 EU/mL is not < 5 EU/mL" in entry["reason"]
    assert gmp.decision(ADMIN, "BT-R") is None
    assert [d["decision"] for d in gmp.decisions(ADMIN, "BT-R")] == ["refused"]
    with pytest.raises(ReleaseRefused, match="does not cover"):
        gmp.release(ADMIN, "BT-R", when=day(-20), deviation=deviation("cd3_viability"))
    decision = gmp.release(ADMIN, "BT-R", when=day(-20), deviation=deviation("endotoxin"))
    assert decision.grade == "released_with_deviation"
    assert decision.released_by == "tester"
    stored = gmp.decision(ADMIN, "BT-R")
    assert stored is not None and stored.deviation == deviation("endotoxin")
    assert stored.spec_key == "default-v1" and stored.when == day(-20)
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.batch_id: b.status for b in course.batches}["BT-R"] == "released"
    assert {b.bag_id: b.status for b in course.bags}["BG-R-1"] == "released"
    tables = {e["table_name"] for e in registry.audit_trail(ADMIN, study_id="RM-001", limit=3)}
    assert tables == {"release_decisions", "batches", "bags"}
    with pytest.raises(ReleaseRefused, match="already released"):
        gmp.release(ADMIN, "BT-R", when=day(-19))


def test_release_refused_while_release_results_pending(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-P")
    gmp.record_qc(ADMIN, "BT-P", {"cd3_viability": 90.0}, "partial report")
    with pytest.raises(ReleaseRefused) as err:
        gmp.release(ADMIN, "BT-P", when=day(-20))
    assert "cd3_purity" in err.value.pending
    assert last_audit(registry)["action"] == "refused"


def test_clean_release_and_post_release_results(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-C", bags=(("BG-C-1", "quarantined", day(300)),))
    gmp.record_qc(ADMIN, "BT-C", PASSING_RELEASE, "QC report")
    decision = gmp.release(ROSA, "BT-C", when=day(-20))
    assert (decision.grade, decision.released_by) == ("released", "rosa")
    assert decision.post_release_pending == ("vcn", "sterility_final", "mycoplasma_final")
    qc = gmp.record_qc(ADMIN, "BT-C", PASSING_POST, "post-release results")
    assert qc.status == "pass"


def test_release_date_checks(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-D")
    gmp.record_qc(ADMIN, "BT-D", PASSING_RELEASE, "QC report")
    with pytest.raises(InvalidInput, match="harvest"):
        gmp.release(ADMIN, "BT-D", when=day(-23))
    with pytest.raises(InvalidInput, match=r"deviation\.date"):
        gmp.release(ADMIN, "BT-D", when=day(-20), deviation=deviation("endotoxin", when=day(-19)))
