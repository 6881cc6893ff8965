"""QC of batches against the release specification, and the release decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from immunoreset.errors import ImmunoresetError, InvalidInput
from immunoreset.manufacturing.qc import (
    Deviation,
    ReleaseRefused,
    evaluate_attribute,
    evaluate_batch,
    release_decision,
)
from immunoreset.manufacturing.spec import default_spec, parse_spec, spec_to_dict
from tests.manufacturing.factories import PASSING_POST, PASSING_RELEASE

FI = "Front Immunol 2024;15:1328368 Table 1 (peer-data §4.1)"

# (attribute, result, expected status, source) — at, just inside and just outside each limit.
BOUNDARIES = [
    ("cd3_viability", 80.0, "pass", f"≥80 % at the limit, {FI}"),
    ("cd3_viability", 80.01, "pass", FI),
    ("cd3_viability", 79.99, "fail", FI),
    ("cd3_purity", 80.0, "pass", FI),
    ("cd3_purity", 80.01, "pass", FI),
    ("cd3_purity", 79.99, "fail", FI),
    ("car_transduction", 10.0, "pass", FI),
    ("car_transduction", 10.01, "pass", FI),
    ("car_transduction", 9.99, "fail", FI),
    ("vcn", 5.0, "fail", f"<5 fails at the limit, {FI}"),
    ("vcn", 4.99, "pass", FI),
    ("vcn", 5.01, "fail", FI),
    ("endotoxin", 5.0, "fail", f"<5 EU/mL fails at the limit, {FI}"),
    ("endotoxin", 4.99, "pass", FI),
    ("endotoxin", 5.01, "fail", FI),
    ("endotoxin", 0, "pass", FI),
    ("dose_deviation", 20.0, "pass", f"20 % acceptable, {FI}"),
    ("dose_deviation", 19.99, "pass", FI),
    ("dose_deviation", 20.01, "fail", FI),
    ("dose_deviation", -20.0, "pass", FI),
    ("dose_deviation", -19.99, "pass", FI),
    ("dose_deviation", -20.01, "fail", FI),
    ("sterility_interim", "negative", "pass", FI),
    ("sterility_interim", "positive", "fail", FI),
    ("sterility_final", " Negative ", "pass", "case and spaces ignored"),
    ("sterility_final", "positive", "fail", FI),
    ("mycoplasma_interim", "negative", "pass", FI),
    ("mycoplasma_interim", "POSITIVE", "fail", FI),
    ("mycoplasma_final", "negative", "pass", FI),
    ("mycoplasma_final", "positive", "fail", FI),
]


@pytest.mark.parametrize(("name", "result", "status", "source"), BOUNDARIES)
def test_attribute_boundaries(name: str, result: Any, status: str, source: str) -> None:
    r = evaluate_attribute(default_spec().attribute(name), result)
    assert r.status == status, source
    assert r.reasons == (r.reason,)
    assert name in r.reason


@pytest.mark.parametrize("name", default_spec().names)
def test_missing_result_is_pending(name: str) -> None:
    attr = default_spec().attribute(name)
    r = evaluate_attribute(attr, None)
    assert (r.status, r.value, r.blocking) == ("pending", None, attr.blocking)


def test_reason_text() -> None:
    spec = default_spec()
    assert evaluate_attribute(spec.attribute("cd3_viability"), 80).reason == (
        "cd3_viability 80 % is ≥ 80 %"
    )
    assert evaluate_attribute(spec.attribute("sterility_final"), "positive").reason == (
        "sterility_final positive is not negative"
    )


BAD_RESULTS = [
    ("cd3_viability", "high"),
    ("cd3_viability", True),
    ("cd3_viability", float("nan")),
    ("cd3_viability", 100.01),
    ("cd3_viability", -1),
    ("endotoxin", float("inf")),
    ("dose_deviation", -101),
    ("sterility_interim", 0),
    ("sterility_interim", "sterile"),
    ("mycoplasma_final", True),
]


@pytest.mark.parametrize(("name", "result"), BAD_RESULTS)
def test_bad_result_refused(name: str, result: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        evaluate_attribute(default_spec().attribute(name), result)
    assert err.value.field == name


def test_evaluate_attribute_needs_attribute() -> None:
    with pytest.raises(InvalidInput):
        evaluate_attribute("cd3_viability", 90)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- batch
def test_batch_all_pass() -> None:
    qc = evaluate_batch(default_spec(), PASSING_RELEASE | PASSING_POST, batch_id="B-1")
    assert (qc.status, qc.failed, qc.pending, qc.releasable) == ("pass", (), (), True)
    assert qc.spec_key == "default-v1"
    assert len(qc.reasons) == len(default_spec().attributes)


def test_batch_post_release_pending_is_releasable() -> None:
    qc = evaluate_batch(default_spec(), PASSING_RELEASE)
    assert qc.status == "pending"
    assert qc.blocking_pending == ()
    assert qc.post_release_pending == ("vcn", "sterility_final", "mycoplasma_final")
    assert qc.releasable


def test_batch_fail_wins_over_pending() -> None:
    qc = evaluate_batch(default_spec(), {"endotoxin": 7.5})
    assert qc.status == "fail"
    assert qc.failed == ("endotoxin",)
    assert not qc.releasable


def test_batch_unknown_attribute() -> None:
    with pytest.raises(InvalidInput) as err:
        evaluate_batch(default_spec(), PASSING_RELEASE | {"viability": 90})
    assert err.value.field == "results"
    assert err.value.value == "viability"
    assert "cd3_viability" in str(err.value)


@pytest.mark.parametrize(
    ("spec", "results", "batch_id"),
    [
        ("default-v1", {}, None),
        (None, {}, None),
        ("SPEC", [("cd3_viability", 90)], None),
        ("SPEC", {}, ""),
        ("SPEC", {}, 5),
    ],
)
def test_batch_bad_inputs(spec: Any, results: Any, batch_id: Any) -> None:
    real = default_spec() if spec == "SPEC" else spec
    with pytest.raises(InvalidInput):
        evaluate_batch(real, results, batch_id=batch_id)


def test_batch_result_lookup() -> None:
    qc = evaluate_batch(default_spec(), PASSING_RELEASE)
    assert qc.result("endotoxin").status == "pass"
    with pytest.raises(InvalidInput):
        qc.result("nope")


# ------------------------------------------------------------------------- release
WHEN = dt.datetime(2025, 1, 16, 14, 30)


def _deviation(**kw: Any) -> Deviation:
    args: dict[str, Any] = {
        "attributes": ("car_transduction",),
        "raised_by": "dr.bianchi",
        "reason": "8 % CAR+ still gives the 1e6/kg dose in 2 bags; risk assessed",
        "approved_by": "qa.verdi",
        "date": dt.date(2025, 1, 16),
        "reference": "DEV-2025-003",
    }
    return Deviation(**(args | kw))


def test_release_records_who_when_and_spec() -> None:
    qc = evaluate_batch(default_spec(), PASSING_RELEASE, batch_id="B-1")
    d = release_decision(qc, released_by="qp.rossi", when=WHEN)
    assert (d.grade, d.batch_id, d.released_by, d.when) == ("released", "B-1", "qp.rossi", WHEN)
    assert (d.spec_id, d.spec_version, d.spec_key) == ("default", 1, "default-v1")
    assert d.deviation is None
    assert d.post_release_pending == ("vcn", "sterility_final", "mycoplasma_final")
    assert any("default-v1" in r for r in d.reasons)


def test_release_refused_on_failed_attribute_without_deviation() -> None:
    qc = evaluate_batch(default_spec(), PASSING_RELEASE | {"car_transduction": 8.0}, batch_id="B-2")
    with pytest.raises(ReleaseRefused) as err:
        release_decision(qc, released_by="qp.rossi", when=WHEN)
    assert err.value.failed == ("car_transduction",)
    assert err.value.batch_id == "B-2"
    assert isinstance(err.value, ImmunoresetError)
    assert "car_transduction 8 % is not ≥ 10 %" in str(err.value)
    assert "deviation" in str(err.value)


def test_release_with_documented_deviation() -> None:
    qc = evaluate_batch(default_spec(), PASSING_RELEASE | {"car_transduction": 8.0}, batch_id="B-2")
    dev = _deviation()
    d = release_decision(qc, released_by="qp.rossi", when=WHEN, deviation=dev)
    assert d.grade == "released_with_deviation"
    assert d.deviation == dev
    assert any("DEV-2025-003" in r and "qa.verdi" in r for r in d.reasons)


def test_deviation_must_cover_every_failed_attribute() -> None:
    results = PASSING_RELEASE | {"car_transduction": 8.0, "endotoxin": 6.0}
    qc = evaluate_batch(default_spec(), results)
    with pytest.raises(ReleaseRefused) as err:
        release_decision(qc, released_by="qp.rossi", when=WHEN, deviation=_deviation())
    assert err.value.failed == ("endotoxin",)
    assert "does not cover" in str(err.value)


def test_release_refused_while_blocking_result_pending() -> None:
    results = dict(PASSING_RELEASE)
    del results["sterility_interim"]
    qc = evaluate_batch(default_spec(), results)
    with pytest.raises(ReleaseRefused) as err:
        release_decision(qc, released_by="qp.rossi", when=WHEN, deviation=_deviation())
    assert err.value.pending == ("sterility_interim",)


def test_post_release_failure_known_at_release_needs_deviation() -> None:
    qc = evaluate_batch(default_spec(), PASSING_RELEASE | {"vcn": 6.0})
    with pytest.raises(ReleaseRefused):
        release_decision(qc, released_by="qp.rossi", when=WHEN)


@pytest.mark.parametrize(
    "kw",
    [
        {"approved_by": "dr.bianchi"},
        {"attributes": ()},
        {"attributes": "car_transduction"},
        {"reason": " "},
        {"raised_by": None},
        {"date": "2025-01-16"},
        {"reference": ""},
    ],
)
def test_deviation_validation(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        _deviation(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"released_by": ""},
        {"released_by": 7},
        {"when": "2025-01-16"},
        {"deviation": "DEV-1"},
        {"qc": {"status": "pass"}},
    ],
)
def test_release_bad_inputs(kw: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "qc": evaluate_batch(default_spec(), PASSING_RELEASE),
        "released_by": "qp.rossi",
        "when": WHEN,
    }
    args |= kw
    qc = args.pop("qc")
    with pytest.raises(InvalidInput):
        release_decision(qc, **args)


# ------------------------------------------------------------------------- versioning
def _v2() -> Any:
    data = spec_to_dict(default_spec())
    data["version"] = 2
    for attr in data["attributes"]:
        if attr["name"] == "car_transduction":
            attr["lower"] = 20  # ARI-0001 alternative (PMC6319086 Table 2)
    return parse_spec(data)


def test_decision_keeps_spec_version() -> None:
    results = PASSING_RELEASE | {"car_transduction": 15.0}
    v1_decision = release_decision(
        evaluate_batch(default_spec(), results, batch_id="B-3"), released_by="qp", when=WHEN
    )
    snapshot = (v1_decision.spec_key, v1_decision.grade, v1_decision.qc.status)
    v2_qc = evaluate_batch(_v2(), results, batch_id="B-3")
    assert v2_qc.spec_key == "default-v2"
    assert v2_qc.failed == ("car_transduction",)
    assert (v1_decision.spec_key, v1_decision.grade, v1_decision.qc.status) == snapshot
    assert v1_decision.spec_version == 1
    assert v1_decision.qc.result("car_transduction").status == "pass"
    with pytest.raises(AttributeError):
        v1_decision.spec_version = 2  # type: ignore[misc]
    with pytest.raises(ReleaseRefused):
        release_decision(v2_qc, released_by="qp", when=WHEN)
