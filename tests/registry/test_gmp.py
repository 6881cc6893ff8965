"""GMP records in the registry: QC, release, chain of identity at infusion, spec versions, dose,
hospital-exemption reports, trace — on SQLite and PostgreSQL, every refusal audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

from immunoreset import course as c
from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.manufacturing import (
    ChainViolation,
    Deviation,
    HospitalExemption,
    ReleaseRefused,
    RequiredReport,
    default_spec,
)
from immunoreset.manufacturing.spec import spec_to_dict
from immunoreset.registry import Actor, Registry, system_actor
from immunoreset.registry.gmp import Gmp, seed_demo_qc
from tests.factories import day, small_course
from tests.manufacturing.factories import PASSING_POST, PASSING_RELEASE

ADMIN = system_actor("tester")
ROSA = Actor("rosa", "investigator", frozenset({"ROME"}))
MONA = Actor("mona", "monitor", frozenset({"ROME"}))


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    with Registry(db_url) as reg:
        reg.add_site(ADMIN, "ROME", "Ospedale Pediatrico Bambino Gesù")
        reg.add_site(ADMIN, "ERLANGEN", "Universitätsklinikum Erlangen")
        reg.save_courses(
            ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
        )
        yield reg


@pytest.fixture
def gmp(registry: Registry) -> Gmp:
    return Gmp(registry)


def add_batch(
    registry: Registry,
    batch_id: str,
    *,
    status: str = "quarantined",
    bags: tuple[tuple[str, str, dt.date | None], ...] = (),
    study_id: str = "RM-001",
) -> None:
    """A batch of the patient's apheresis with bags (bag_id, status, expiry) of 4e7 in 20 mL."""
    aph = "AP-" + study_id.replace("-", "")
    batch = c.Batch(batch_id, aph, "CliniMACS Prodigy", day(-34), day(-22), "op07", status=status)
    registry.add_record(ADMIN, study_id, "batches", batch, reason="test")
    for bag_id, bag_status, expiry in bags:
        bag = c.Bag(bag_id, batch_id, 4e7, 20.0, status=bag_status, expiry=expiry)
        registry.add_record(ADMIN, study_id, "bags", bag, reason="test")


def last_audit(registry: Registry, study_id: str = "RM-001") -> dict[str, Any]:
    return registry.audit_trail(ADMIN, study_id=study_id, limit=1)[0]


def deviation(*attributes: str, when: dt.date = day(-21)) -> Deviation:
    return Deviation(attributes, "gmp.lead", "risk assessed", "qa.person", when, "DEV-7")


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
            ("BG-LAST", "released", day(30)),
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


def test_qc_result_replaced_with_audit(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-Q")
    gmp.record_qc(ADMIN, "BT-Q", {"cd3_viability": 79.9}, "first")
    qc = gmp.record_qc(ADMIN, "BT-Q", {"cd3_viability": 80.0}, "transcription error")
    assert qc.result("cd3_viability").status == "pass"
    entry = last_audit(registry)
    assert (entry["action"], entry["field"]) == ("update", "value")
    assert (entry["old_value"], entry["new_value"]) == ("79.9", "80.0")
    assert entry["reason"] == "transcription error"
    n = registry.count_rows()["audit_log"]
    gmp.record_qc(ADMIN, "BT-Q", {"cd3_viability": 80.0}, "same again")
    assert registry.count_rows()["audit_log"] == n


@pytest.mark.parametrize(
    ("results", "field"),
    [
        ({"viability": 90.0}, "results"),
        ({"cd3_viability": 101.0}, "cd3_viability"),
        ({"cd3_viability": "high"}, "cd3_viability"),
        ({"sterility_interim": "maybe"}, "sterility_interim"),
        ({"cd3_viability": None}, "cd3_viability"),
        ({}, "results"),
    ],
)
def test_record_qc_bad_inputs(
    registry: Registry, gmp: Gmp, results: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        gmp.record_qc(ADMIN, "BT-RM001", results, "entry")
    assert err.value.field == field


def test_qc_site_and_role_rules(registry: Registry, gmp: Gmp) -> None:
    with pytest.raises(PermissionDenied):
        gmp.record_qc(MONA, "BT-RM001", {"cd3_viability": 90.0}, "entry")
    with pytest.raises(NotFound):
        gmp.record_qc(ROSA, "BT-ER001", {"cd3_viability": 90.0}, "entry")
    with pytest.raises(NotFound):
        gmp.evaluate(ROSA, "BT-ER001")
    with pytest.raises(NotFound):
        gmp.release(ROSA, "BT-NONE")
    assert gmp.evaluate(MONA, "BT-RM001").status == "pending"


def test_release_date_checks(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-D")
    gmp.record_qc(ADMIN, "BT-D", PASSING_RELEASE, "QC report")
    with pytest.raises(InvalidInput, match="harvest"):
        gmp.release(ADMIN, "BT-D", when=day(-23))
    with pytest.raises(InvalidInput, match=r"deviation\.date"):
        gmp.release(ADMIN, "BT-D", when=day(-20), deviation=deviation("endotoxin", when=day(-19)))


# --------------------------------------------------------------------------- spec versions
def _write_spec(path: Path, version: int, viability_lower: float) -> Path:
    data = spec_to_dict(default_spec())
    data["version"] = version
    for attr in data["attributes"]:
        if attr["name"] == "cd3_viability":
            attr["lower"] = viability_lower
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_batch_keeps_the_spec_it_was_released_against(
    registry: Registry, gmp: Gmp, tmp_path: Path
) -> None:
    add_batch(registry, "BT-V1")
    add_batch(registry, "BT-V2")
    results = {**PASSING_RELEASE, "cd3_viability": 85.0}
    gmp.record_qc(ADMIN, "BT-V1", results, "QC")
    assert gmp.release(ADMIN, "BT-V1", when=day(-20)).spec_key == "default-v1"
    spec2 = gmp.load_spec_file(ADMIN, _write_spec(tmp_path / "v2.yaml", 2, 90.0))
    assert gmp.current_spec().key == "default-v2" == spec2.key
    # the released batch still reads against v1, a new batch against v2
    decision = gmp.decision(ADMIN, "BT-V1")
    assert decision is not None and decision.spec_key == "default-v1"
    assert gmp.evaluate(ADMIN, "BT-V1").spec_key == "default-v1"
    assert gmp.evaluate(ADMIN, "BT-V1").result("cd3_viability").status == "pass"
    assert gmp.evaluate(ADMIN, "BT-V1", spec2).result("cd3_viability").status == "fail"
    assert gmp.record_qc(ADMIN, "BT-V1", PASSING_POST, "post").spec_key == "default-v1"
    gmp.record_qc(ADMIN, "BT-V2", results, "QC")
    with pytest.raises(ReleaseRefused, match="default-v2"):
        gmp.release(ADMIN, "BT-V2", when=day(-20))
    # identical reload is a no-op; different content under the same version is refused
    gmp.load_spec_file(ADMIN, tmp_path / "v2.yaml")
    with pytest.raises(InvalidInput, match="already loaded"):
        gmp.load_spec_file(ADMIN, _write_spec(tmp_path / "v2b.yaml", 2, 95.0))
    assert [s["key"] for s in gmp.list_specs()] == ["default-v2"]
    assert gmp.spec("default-v1") == default_spec()


def test_load_spec_file_refusals(gmp: Gmp, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec_id: [unclosed", encoding="utf-8")
    with pytest.raises(InvalidInput, match="YAML"):
        gmp.load_spec_file(ADMIN, bad)
    with pytest.raises(InvalidInput, match="readable"):
        gmp.load_spec_file(ADMIN, tmp_path / "missing.yaml")
    with pytest.raises(InvalidInput, match=r"\.json"):
        gmp.load_spec_file(ADMIN, tmp_path / "spec.txt")
    with pytest.raises(PermissionDenied):
        gmp.load_spec_file(MONA, bad)


def test_load_spec_from_json(gmp: Gmp, tmp_path: Path) -> None:
    import json

    data = spec_to_dict(default_spec())
    data.update(spec_id="site-rome", version=1, effective=data["effective"].isoformat())
    path = tmp_path / "rome.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert gmp.load_spec_file(ADMIN, path).key == "site-rome-v1"
    assert gmp.current_spec().key == "site-rome-v1"


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


# --------------------------------------------------------------------------- reports
def test_authorisation_and_overdue_reports(registry: Registry, gmp: Gmp) -> None:
    pending = HospitalExemption("RM-001", "AIFA", "HE-2024-7", day(-60))
    gmp.add_authorisation(ADMIN, pending)
    approved = HospitalExemption(
        "RM-001", "AIFA", "HE-2024-7", day(-60), "approved", day(-40), ("annual report",)
    )
    gmp.add_authorisation(ADMIN, approved, reason="decision received")
    assert gmp.authorisations(ADMIN, "RM-001") == [approved]
    assert last_audit(registry)["field"] in {"decision", "decision_date", "conditions"}
    sae = RequiredReport("RM-001", "sae_notification", "CRS grade 3", day(17), None, "HE-2024-7")
    annual = RequiredReport("RM-001", "annual_report", "period 1", day(325))
    gmp.add_report(ADMIN, sae)
    gmp.add_report(ADMIN, annual)
    gmp.add_report(ADMIN, RequiredReport("ER-001", "annual_report", "period 1", day(10)))
    assert gmp.overdue_reports(ADMIN, day(17)) == [
        RequiredReport("ER-001", "annual_report", "period 1", day(10))
    ]
    assert gmp.overdue_reports(ROSA, day(17)) == []  # due today is not overdue
    assert gmp.overdue_reports(ROSA, day(18)) == [sae]
    gmp.add_report(ROSA, dataclasses.replace(sae, submitted=day(19)))
    assert gmp.overdue_reports(ROSA, day(20)) == []
    entry = last_audit(registry)
    assert (entry["action"], entry["field"], entry["username"]) == ("update", "submitted", "rosa")
    with pytest.raises(NotFound):
        gmp.add_report(ROSA, RequiredReport("ER-001", "other", "x", day(1)))
    with pytest.raises(InvalidInput):
        gmp.add_report(ADMIN, "report")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        gmp.overdue_reports(ADMIN, "2024-01-01")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- trace
@pytest.mark.parametrize("key", ["RM-001", "BG-RM001-2", "BT-RM001", "AP-RM001"])
def test_trace_by_any_id(gmp: Gmp, key: str) -> None:
    t = gmp.trace(ADMIN, key)
    assert t.study_id == "RM-001" and t.complete
    assert [b.bag.bag_id for b in t.apheresis[0].batches[0].bags] == ["BG-RM001-1", "BG-RM001-2"]


def test_trace_shows_release_decision_and_hides_other_sites(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-T")
    gmp.record_qc(ADMIN, "BT-T", PASSING_RELEASE, "QC")
    gmp.release(ADMIN, "BT-T", when=day(-20))
    node = next(
        b for b in gmp.trace(ADMIN, "BT-T").apheresis[0].batches if b.batch.batch_id == "BT-T"
    )
    assert node.decision is not None and node.decision.spec_key == "default-v1"
    for key in ("BG-ER001-1", "ER-001", "NOPE-1"):
        with pytest.raises(NotFound):
            gmp.trace(ROSA, key)


# --------------------------------------------------------------------------- metrics and demo
def test_program_metrics(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-F", status="failed")
    gmp.record_qc(ADMIN, "BT-F", {**PASSING_RELEASE, "car_transduction": 4.0}, "QC")
    m = gmp.program_metrics(ADMIN)
    assert (m.success.successes, m.success.failures) == (2, 1)
    assert m.vein_to_vein.median_days == 35.0
    row = m.qc.set_index("attribute").loc["car_transduction"]
    assert (row["n_fail"], row["n_pass"]) == (1, 0)
    assert gmp.program_metrics(ROSA).success.successes == 1


def test_seed_demo_qc(registry: Registry) -> None:
    courses = [small_course("RM-001"), small_course("ER-001", "ERLANGEN")]
    given = {
        "BT-ER001": SimpleNamespace(
            outcome="deviation",
            results={
                "viability_percent": 75.0,
                "cd3_percent": 95.0,
                "car_percent": 30.0,
                "vcn_copies_per_transduced_cell": 2.0,
                "endotoxin_eu_ml": 0.4,
                "dose_deviation_percent": 3.0,
                "sterility": "negative",
                "mycoplasma": "negative",
            },
        )
    }
    counts = seed_demo_qc(registry, ADMIN, courses, np.random.default_rng(1), qc=given)
    assert counts == {"released": 1, "released_with_deviation": 1, "refused": 0}
    gmp = Gmp(registry)
    assert gmp.evaluate(ADMIN, "BT-RM001").status == "pass"
    dev = gmp.decision(ADMIN, "BT-ER001")
    assert dev is not None and dev.deviation is not None
    assert dev.deviation.attributes == ("cd3_viability",)
