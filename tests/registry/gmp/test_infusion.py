"""Infusion store: chain of identity at the bedside (every refusal audited), dose from stored
bags, trace by any ID — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.manufacturing import ChainViolation
from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.factories import day
from tests.manufacturing.factories import PASSING_RELEASE
from tests.registry.gmp.factories import ADMIN, MONA, ROSA, add_batch, last_audit, release


# --------------------------------------------------------------------------- chain of identity
def _setup_chain(registry: Registry) -> None:
    add_batch(
        registry,
        "BT-OK",
        status="released",
        bags=(
            ("BG-OK-1", "released", day(340)),
            ("BG-QUAR", "quarantined", day(340)),
            ("BG-OLD", "released", day(29)),
            ("BG-LAST", "stored_for_redosing", day(30)),  # RM-001 was infused on day 0
        ),
    )
    add_batch(registry, "BT-INPROC", status="in_process", bags=(("BG-IP", "released", day(340)),))


@pytest.mark.parametrize(
    ("bag_id", "reason", "words"),
    [
        ("BG-NOPE", "unknown_bag", "unknown bag"),
        ("BG-ER001-2", "wrong_patient", "apheresis of ER-001, not RM-001"),
        ("BG-RM001-1", "already_infused", "already been infused"),
        ("BG-QUAR", "not_released", "is quarantined"),
        ("BG-OLD", "expired", "expired on"),
        ("BG-IP", "batch_not_released", "is in_process, not released"),
    ],
)
def test_chain_violation_refused_and_audited(
    registry: Registry, gmp: Gmp, bag_id: str, reason: str, words: str
) -> None:
    _setup_chain(registry)
    n_infusions = registry.count_rows()["infusions"]
    with pytest.raises(ChainViolation) as err:
        gmp.infuse(ADMIN, "RM-001", ["BG-OK-1", bag_id], on_date=day(30), weight_kg=40.0)
    assert err.value.reason == reason
    assert words in str(err.value)
    entry = last_audit(registry)
    assert entry["action"] == "refused"
    assert entry["table_name"] == "infusions"
    assert entry["record_key"] == f"RM-001/{day(30).isoformat()}"
    assert f"({reason})" in entry["reason"]
    # nothing was written: no infusion, the good bag is still released
    assert registry.count_rows()["infusions"] == n_infusions
    bags = {b.bag_id: b for b in registry.load_course(ADMIN, "RM-001").bags}
    assert bags["BG-OK-1"].status == "released"


def test_wrong_patient_of_another_site_does_not_disclose_its_id(
    registry: Registry, gmp: Gmp
) -> None:
    with pytest.raises(ChainViolation) as err:
        gmp.infuse(ROSA, "RM-001", ["BG-ER001-2"], on_date=day(30), weight_kg=40.0)
    assert err.value.reason == "wrong_patient"
    assert "ER-001" not in str(err.value)
    assert last_audit(registry)["action"] == "refused"


def test_infusion_on_expiry_day_is_allowed_and_audited(registry: Registry, gmp: Gmp) -> None:
    _setup_chain(registry)
    inf = gmp.infuse(ADMIN, "RM-001", ["BG-LAST"], on_date=day(30))
    # weight 38.5 kg recorded on day -7; one whole bag of 4e7 cells
    assert inf.dose_cells_per_kg == pytest.approx(4e7 / 38.5)
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.bag_id: b.status for b in course.bags}["BG-LAST"] == "infused"
    assert course.infusions[-1].bag_ids == ("BG-LAST",)
    trail = registry.audit_trail(ADMIN, study_id="RM-001", limit=2)
    assert {(e["action"], e["table_name"]) for e in trail} == {
        ("insert", "infusions"),
        ("update", "bags"),
    }
    with pytest.raises(ChainViolation) as err:
        gmp.infuse(ADMIN, "RM-001", ["BG-LAST"], on_date=day(31))
    assert err.value.reason == "already_infused"


def test_infuse_bad_inputs(registry: Registry, gmp: Gmp) -> None:
    with pytest.raises(InvalidInput, match="bag_ids"):
        gmp.infuse(ADMIN, "RM-001", [], on_date=day(30))
    with pytest.raises(InvalidInput, match="each bag listed once"):
        gmp.infuse(ADMIN, "RM-001", ["BG-RM001-2", "BG-RM001-2"], on_date=day(30))
    with pytest.raises(InvalidInput, match="weight_kg"):
        gmp.infuse(ADMIN, "RM-001", ["BG-RM001-2"], on_date=day(30), weight_kg=0.5)
    with pytest.raises(InvalidInput, match="on_date"):
        gmp.infuse(ADMIN, "RM-001", ["BG-RM001-2"], on_date="2024-04-01")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="without an infusion"):
        gmp.infuse(ADMIN, "RM-001", ["BG-RM001-2"], on_date=day(0))
    with pytest.raises(PermissionDenied):
        gmp.infuse(MONA, "RM-001", ["BG-RM001-2"], on_date=day(30))
    with pytest.raises(NotFound):
        gmp.infuse(ROSA, "ER-001", ["BG-ER001-2"], on_date=day(30))


# --------------------------------------------------------------------------- dose
@pytest.mark.parametrize(
    ("weight", "grade", "volume_ml", "dose_per_kg"),
    [
        # 38.5 kg: target 3.85e7, window 3.08e7–4.62e7; the 4e7 bag fits whole
        (38.5, "whole_bag", 20.0, 4e7 / 38.5),
        # 20 kg: target 2e7 below the window of a whole bag -> 10 mL of 2e6 cells/mL
        (20.0, "partial_bag", 10.0, 1e6),
    ],
)
def test_plan_dose_over_stored_bags(
    registry: Registry,
    gmp: Gmp,
    weight: float,
    grade: str,
    volume_ml: float,
    dose_per_kg: float,
) -> None:
    add_batch(registry, "BT-X", status="quarantined", bags=(("BG-X", "released", day(300)),))
    plan = gmp.plan_dose(ADMIN, "RM-001", weight_kg=weight, on_date=day(30))
    assert plan.grade == grade
    assert [d.bag_id for d in plan.draws] == ["BG-RM001-2"]  # BG-X: its batch is not released
    assert plan.total_volume_ml == pytest.approx(volume_ml)
    assert plan.dose_cells_per_kg == pytest.approx(dose_per_kg)


def test_plan_dose_refuses_without_enough_cells(gmp: Gmp) -> None:
    with pytest.raises(InvalidInput) as err:
        gmp.plan_dose(ADMIN, "RM-001", weight_kg=100.0, on_date=day(30))
    assert err.value.field == "bags"
    with pytest.raises(NotFound):
        gmp.plan_dose(ROSA, "ER-001", weight_kg=40.0, on_date=day(30))


# --------------------------------------------------------------------------- trace
@pytest.mark.parametrize("key", ["RM-001", "BG-RM001-2", "BT-RM001", "AP-RM001"])
def test_trace_by_any_id(gmp: Gmp, key: str) -> None:
    t = gmp.trace(ADMIN, key)
    assert t.study_id == "RM-001" and t.complete
    assert [b.bag.bag_id for b in t.apheresis[0].batches[0].bags] == ["BG-RM001-1", "BG-RM001-2"]


def test_trace_shows_release_decision_and_hides_other_sites(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-T")
    gmp.record_qc(ADMIN, "BT-T", PASSING_RELEASE, "QC")
    release(gmp, "BT-T", when=day(-20))
    node = next(
        b for b in gmp.trace(ADMIN, "BT-T").apheresis[0].batches if b.batch.batch_id == "BT-T"
    )
    assert node.decision is not None and node.decision.spec_key == "default-v1"
    for key in ("BG-ER001-1", "ER-001", "NOPE-1"):
        with pytest.raises(NotFound):
            gmp.trace(ROSA, key)
