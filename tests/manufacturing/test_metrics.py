"""Program metrics against hand-computed values."""

from __future__ import annotations

import math
from typing import Any

import pytest

from immunoreset.course import Course, Infusion, Patient
from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.metrics import (
    bags_per_batch,
    manufacturing_success,
    qc_distributions,
    vein_to_vein,
)
from immunoreset.manufacturing.qc import evaluate_batch
from immunoreset.manufacturing.spec import default_spec
from tests.manufacturing.factories import PASSING_RELEASE, D, apheresis, bag, batch


def _batches(released: int, failed: int, other: int = 0) -> list[Any]:
    out = [batch(f"B-{i}", status="released") for i in range(released)]
    out += [batch(f"F-{i}", status="failed") for i in range(failed)]
    out += [batch(f"Q-{i}", status="quarantined") for i in range(other)]
    return out


# (released, failed, rate, ci_low, ci_high, source of the interval)
SUCCESS = [
    (8, 0, 1.0, 0.025 ** (1 / 8), 1.0, "k = n: lower = (α/2)^(1/n) = 0.6306"),
    (0, 10, 0.0, 0.0, 1 - 0.025 ** (1 / 10), "k = 0: upper = 1 − (α/2)^(1/n) = 0.3085"),
    (7, 3, 0.7, 0.3475, 0.9333, "7/10 exact CI 0.3475–0.9333 (standard tables)"),
    (1, 1, 0.5, 0.0126, 0.9874, "1/2: 0.0126–0.9874"),
]


@pytest.mark.parametrize(("ok", "failed", "rate", "lo", "hi", "source"), SUCCESS)
def test_success_rate_clopper_pearson(
    ok: int, failed: int, rate: float, lo: float, hi: float, source: str
) -> None:
    r = manufacturing_success(_batches(ok, failed, other=2))
    assert (r.successes, r.failures, r.unresolved, r.attempts) == (ok, failed, 2, ok + failed)
    assert r.score == pytest.approx(rate)
    assert r.ci_low == pytest.approx(lo, abs=1e-4), source
    assert r.ci_high == pytest.approx(hi, abs=1e-4), source


def test_success_rate_no_outcome_yet() -> None:
    r = manufacturing_success(_batches(0, 0, other=3))
    assert (r.attempts, r.score, r.ci_low, r.ci_high) == (0, None, None, None)


def test_success_rate_confidence_and_inputs() -> None:
    r90 = manufacturing_success(_batches(8, 0), confidence=0.90)
    assert r90.ci_low == pytest.approx(0.05 ** (1 / 8))
    for bad in ({"confidence": 1.0}, {"confidence": 0.3}, {"confidence": "95%"}):
        with pytest.raises(InvalidInput):
            manufacturing_success(_batches(1, 0), **bad)
    with pytest.raises(InvalidInput):
        manufacturing_success("B-1")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        manufacturing_success([bag()])  # type: ignore[list-item]


def _course(n: int, aph_day: int, inf_day: int, traced: bool = True) -> Course:
    p = Patient(f"RM-00{n}", "OPBG", "F", 2012, 5, "SLE", "M32.1", D(2020, 1, 1))
    aph = apheresis(f"AP-{n}", D(2025, 1, aph_day))
    extra = apheresis(f"AP-{n}b", D(2025, 1, 1))
    b = batch(f"B-{n}", apheresis_id=f"AP-{n}" if traced else f"AP-{n}x")
    g = bag(f"B-{n}-01", batch_id=f"B-{n}", status="infused")
    inf = Infusion(D(2025, 2, inf_day), (g.bag_id,), 1e6)
    return Course(p, apheresis=(extra, aph), batches=(b,), bags=(g,), infusions=(inf,))


def test_vein_to_vein_median_and_range() -> None:
    """Days: 2025-01-10→02-01 = 22; 01-05→02-10 = 36; 01-20→02-05 = 16; 01-02→02-20 = 49.
    Median of (16, 22, 36, 49) = 29."""
    courses = [_course(1, 10, 1), _course(2, 5, 10), _course(3, 20, 5), _course(4, 2, 20)]
    v = vein_to_vein(courses)
    assert list(v.table["days"]) == [22, 36, 16, 49]
    assert (v.n, v.median_days, v.min_days, v.max_days) == (4, 29.0, 16, 49)
    assert v.table["traced"].all()
    assert list(v.table["apheresis_id"]) == ["AP-1", "AP-2", "AP-3", "AP-4"]


def test_vein_to_vein_untraced_and_uninfused() -> None:
    untraced = _course(1, 10, 1, traced=False)  # falls back to latest apheresis AP-1 (01-10)
    p = Patient("RM-009", "OPBG", "F", 2012, 5, "SLE", "M32.1", D(2020, 1, 1))
    not_infused = Course(p, apheresis=(apheresis("AP-9"),))
    v = vein_to_vein([untraced, not_infused])
    assert (v.n, v.median_days) == (1, 22.0)
    assert not v.table["traced"][0]
    assert any("RM-009: not infused" in r for r in v.reasons)
    assert any("not traced" in r for r in v.reasons)
    empty = vein_to_vein([not_infused])
    assert (empty.n, empty.median_days, empty.min_days) == (0, None, None)
    with pytest.raises(InvalidInput):
        vein_to_vein([p])  # type: ignore[list-item]


def test_vein_to_vein_no_apheresis_before_infusion() -> None:
    p = Patient("RM-008", "OPBG", "F", 2012, 5, "SLE", "M32.1", D(2020, 1, 1))
    c = Course(
        p,
        apheresis=(apheresis("AP-8", D(2025, 3, 1)),),
        infusions=(Infusion(D(2025, 2, 1), ("X-1",), 1e6),),
    )
    v = vein_to_vein([c])
    assert v.n == 0
    assert "no apheresis on or before infusion" in v.reasons[0]


def test_bags_per_batch() -> None:
    batches = [batch("B-1"), batch("B-2"), batch("B-3"), batch("F-1", status="failed")]
    bags = (
        [bag(f"B-1-0{i}", batch_id="B-1") for i in range(3)]
        + [bag(f"B-2-0{i}", batch_id="B-2", status="infused") for i in range(4)]
        + [bag(f"B-3-0{i}", batch_id="B-3") for i in range(6)]
        + [bag("Z-1", batch_id="Z")]
    )
    r = bags_per_batch(batches, bags)
    assert list(r.table["n_bags"]) == [3, 4, 6, 0]
    assert (r.n_batches, r.median, r.min, r.max) == (3, 4.0, 3, 6)
    r_all = bags_per_batch(batches, bags, statuses=("released", "failed"))
    assert (r_all.n_batches, r_all.median, r_all.min, r_all.max) == (4, 3.5, 0, 6)
    none = bags_per_batch(batches, bags, statuses=("in_process",))
    assert (none.n_batches, none.median) == (0, None)
    for bad in ("released", (), ("done",)):
        with pytest.raises(InvalidInput):
            bags_per_batch(batches, bags, statuses=bad)  # type: ignore[arg-type]


def test_qc_distributions() -> None:
    spec = default_spec()
    qcs = [
        evaluate_batch(spec, PASSING_RELEASE | {"cd3_viability": 90.0, "vcn": 2.0}),
        evaluate_batch(spec, PASSING_RELEASE | {"cd3_viability": 78.0}),
        evaluate_batch(spec, {"cd3_viability": 84.0, "sterility_interim": "positive"}),
    ]
    df = qc_distributions(qcs).set_index("attribute")
    assert list(df.index) == list(spec.names)
    via = df.loc["cd3_viability"]
    assert (via["n_results"], via["n_pass"], via["n_fail"], via["n_pending"]) == (3, 2, 1, 0)
    assert (via["median"], via["min"], via["max"]) == (84.0, 78.0, 90.0)
    vcn = df.loc["vcn"]
    assert (vcn["n_results"], vcn["n_pending"], vcn["median"]) == (1, 2, 2.0)
    ster = df.loc["sterility_interim"]
    assert (ster["n_pass"], ster["n_fail"]) == (2, 1)
    assert math.isnan(ster["median"])
    assert df.loc["endotoxin", "unit"] == "EU/mL"
    assert qc_distributions([]).empty
    with pytest.raises(InvalidInput):
        qc_distributions([{"cd3_viability": 90}])  # type: ignore[list-item]
