"""Cohort (vectorised) forms equal the per-patient functions on seeded random data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.kinetics.bcells import aplasia_cohort, aplasia_duration
from immunoreset.kinetics.nca import compute_nca, compute_nca_cohort
from immunoreset.kinetics.titres import percent_change_cohort, percent_change_from_baseline


def _random_long(seed: int, n_patients: int = 150, max_samples: int = 14):
    """Long-format rows, shuffled, with unique days per patient, zeros and BLQ values."""
    rng = np.random.default_rng(seed)
    ids, days, values = [], [], []
    for p in range(n_patients):
        k = int(rng.integers(0, max_samples + 1))
        d = np.sort(rng.choice(np.arange(-10, 400), size=k, replace=False)).astype(float)
        v = rng.lognormal(1.0, 2.0, size=k) * (rng.random(k) > 0.25)
        ids += [f"P{p:04d}"] * k
        days += d.tolist()
        values += v.tolist()
    order = rng.permutation(len(ids))
    return (np.array(ids)[order], np.array(days)[order], np.array(values)[order])


def _per_patient(ids, days, values):
    for pid in sorted(set(ids.tolist())):
        m = ids == pid
        yield pid, days[m], values[m]


def _same(a, b) -> bool:
    if a is None:
        return isinstance(b, float) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-12, abs=0)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("blq_rule", ["keep_first_last", "zero", "drop"])
@pytest.mark.parametrize(("end", "impute"), [(28.0, True), (84.0, False)])
def test_nca_cohort_equals_per_patient(seed, blq_rule, end, impute):
    ids, days, values = _random_long(seed)
    kw = {"end": end, "blq_rule": blq_rule, "impute_start_zero": impute}
    df = compute_nca_cohort(ids, days, values, 1.0, **kw)
    for pid, d, v in _per_patient(ids, days, values):
        r = compute_nca(d, v, lloq=1.0, **kw)
        row = df.loc[pid]
        for col in ("cmax", "tmax", "auc", "clast", "tlast", "persistence_day"):
            assert _same(getattr(r, col), row[col]), (pid, col)
        assert (r.n_samples, r.n_blq, r.flags) == (row["n_samples"], row["n_blq"], row["flags"])


def test_nca_cohort_per_row_lloq():
    ids = ["A", "A", "A", "B", "B", "B"]
    days = [0, 7, 28, 0, 7, 28]
    vals = [0, 5, 2, 0, 5, 2]
    df = compute_nca_cohort(ids, days, vals, [1, 1, 1, 3, 3, 3])
    assert df.loc["A", "tlast"] == 28 and df.loc["B", "tlast"] == 7
    assert df.loc["B", "flags"] == ("blq_first_set_to_zero", "blq_last_set_to_zero")


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"clearance_threshold": 2.0, "threshold": 50.0},
        {"definition": "percent_of_lymphocytes", "threshold": 10.0},
        {"definition": "percent_of_baseline", "threshold": 20.0},
    ],
)
def test_aplasia_cohort_equals_per_patient(seed, kwargs):
    ids, days, values = _random_long(seed)
    rng = np.random.default_rng(seed + 100)
    lymph = values * (1 + 20 * rng.random(values.size))
    base = {pid: float(rng.uniform(50, 500)) for pid in set(ids.tolist())}
    kw = dict(kwargs)
    extra_cohort, extra_one = {}, {}
    if kw.get("definition") == "percent_of_lymphocytes":
        extra_cohort["lymphocytes"] = lymph
    if kw.get("definition") == "percent_of_baseline":
        extra_cohort["baseline"] = pd.Series(base)
    df = aplasia_cohort(ids, days, values, **kw, **extra_cohort)
    for pid in df.index:
        m = ids == pid
        if "lymphocytes" in extra_cohort:
            extra_one = {"lymphocytes": lymph[m]}
        if "baseline" in extra_cohort:
            extra_one = {"baseline": base[pid]}
        r = aplasia_duration(days[m], values[m], **kw, **extra_one)
        row = df.loc[pid]
        assert (r.cleared, r.censored) == (row["cleared"], row["censored"])
        for col in ("clearance_day", "reconstitution_day", "aplasia_days", "last_day"):
            assert _same(getattr(r, col), row[col]), (pid, col)


def test_aplasia_cohort_missing_baseline():
    with pytest.raises(InvalidInput) as exc:
        aplasia_cohort(
            ["A", "B"], [0, 0], [1, 1], definition="percent_of_baseline", baseline={"A": 100}
        )
    assert exc.value.field == "baseline"


@pytest.mark.parametrize("seed", [5, 6])
@pytest.mark.parametrize("window_days", [None, 45.0])
def test_percent_change_cohort_equals_per_patient(seed, window_days):
    ids, days, values = _random_long(seed)
    months = (1, 3, 6, 12)
    df = percent_change_cohort(ids, days, values, at_months=months, window_days=window_days)
    for pid, d, v in _per_patient(ids, days, values):
        r = percent_change_from_baseline(d, v, at_months=months, window_days=window_days)
        row = df.loc[pid]
        assert _same(r.baseline_value, row["baseline_value"])
        assert _same(r.baseline_day, row["baseline_day"])
        for mc in r.months:
            assert _same(mc.sample_day, row[f"day_m{mc.month}"])
            assert _same(mc.value, row[f"value_m{mc.month}"])
            assert _same(mc.percent_change, row[f"pct_m{mc.month}"])


@pytest.mark.parametrize("aggregate", ["min", "max", "mean"])
def test_cohort_duplicate_days(aggregate):
    ids = ["A", "A", "A", "B"]
    days = [0, 7, 7, 0]
    vals = [0.0, 20.0, 40.0, 3.0]
    df = compute_nca_cohort(ids, days, vals, 1.0, aggregate=aggregate)
    one = compute_nca([0, 7, 7], [0, 20, 40], lloq=1.0, aggregate=aggregate)
    assert df.loc["A", "cmax"] == one.cmax
    with pytest.raises(InvalidInput) as exc:
        compute_nca_cohort(ids, days, vals, 1.0)
    assert exc.value.field == "days"


def test_cohort_same_day_in_different_patients_is_fine():
    df = compute_nca_cohort([2, 1, 2, 1], [0, 0, 28, 28], [0, 0, 5, 5], 1.0)
    assert list(df.index) == [1, 2]
    assert df["auc"].tolist() == [70.0, 70.0]
