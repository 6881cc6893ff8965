"""Running virtual trials: probability of success, reproducibility, arms and negative controls."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.model.trial.cohort import draw_arm
from immunoreset.model.trial.design import parse_design
from immunoreset.model.trial.estimates import FORMAT, default_estimates
from immunoreset.model.trial.growth import load_growth_reference
from immunoreset.model.trial.run import run_trial


def test_trivially_easy_rule_has_probability_one(small):
    # every binary proportion is >= 0, every CI lower bound of 1 responder in n is > 0 ... use
    # a responder threshold every patient meets: disease score >= 0 points
    small["success"] = {
        "conditions": [
            {"arm": "A", "endpoint": "disease_m6", "responder": {"ge": 0.0}, "min_proportion": 1},
            {"arm": "B", "endpoint": "b_clear_d7", "min_proportion": 0.0},
        ]
    }
    res = run_trial(parse_design(small))
    assert res.success.all()
    assert res.success.mean() == 1.0


def test_impossible_rule_has_probability_zero(small):
    small["success"] = {
        "combine": "any",
        "conditions": [
            {"arm": "A", "endpoint": "cmax", "responder": {"gt": 1e9}, "min_proportion": 0.01},
            {"arm": "A", "endpoint": "b_clear_d7", "ci": {"lower_above": 0.999}},
        ],
    }
    res = run_trial(parse_design(small))
    assert not res.success.any()


def test_identical_whatever_the_chunk_size(small):
    d = parse_design(small)
    a = run_trial(d, chunk_replicates=1)
    b = run_trial(d, chunk_replicates=4)
    c = run_trial(d, chunk_replicates=100)
    pd.testing.assert_frame_equal(a.replicates, b.replicates, check_exact=True)
    pd.testing.assert_frame_equal(a.replicates, c.replicates, check_exact=True)
    np.testing.assert_array_equal(a.samples["A"], c.samples["A"])
    for k, v in a.patients["B"].items():
        np.testing.assert_array_equal(v, c.patients["B"][k])


def test_seed_option_overrides_and_changes_patients(small):
    d = parse_design(small)
    a = run_trial(d)
    b = run_trial(d, seed=6)
    assert a.seed == 5 and b.seed == 6
    assert not np.array_equal(a.replicates["cmax_median"], b.replicates["cmax_median"])


def test_smaller_trial_is_a_prefix_of_the_larger(small):
    small["patients_per_arm"] = 3
    small["size_curve"] = []
    few = run_trial(parse_design(small))
    small["size_curve"] = [6]
    many = run_trial(parse_design(small))
    for k, v in few.patients["A"].items():
        np.testing.assert_array_equal(v, many.patients["A"][k])


def test_replicates_differ_by_typical_values_only_with_uncertainty(small):
    res = run_trial(parse_design(small))
    assert res.replicates["theta_k_kill"].nunique() == small["replicates"]
    small["parameters"] = {"rse": {"k_kill": 0.2}, "uncertainty": "none"}
    res = run_trial(parse_design(small))
    assert res.replicates["theta_k_kill"].nunique() == 1


def test_no_lymphodepletion_is_a_negative_control(small):
    """Without lymphodepletion the CAR T cells do not expand (model: surge needed)."""
    small["arms"] = [
        {"name": "A", "dose_per_kg": 1e6},
        {"name": "B", "dose_per_kg": 1e6, "lymphodepletion": {"regimen": "none"}},
    ]
    res = run_trial(parse_design(small))
    pa, pb = res.patients["A"], res.patients["B"]
    assert np.median(pb["cmax"]) < 0.2 * np.median(pa["cmax"])
    assert pb["b_clear_d7"].mean() < pa["b_clear_d7"].mean()


def test_intensity_orders_expansion(small):
    small["arms"] = [
        {"name": "low", "dose_per_kg": 1e6, "lymphodepletion": {"intensity": 0.5}},
        {"name": "std", "dose_per_kg": 1e6},
        {"name": "high", "dose_per_kg": 1e6, "lymphodepletion": {"intensity": 1.5}},
    ]
    small["success"]["conditions"][0]["arm"] = "std"
    res = run_trial(parse_design(small))
    med = [np.median(res.patients[a]["cmax"]) for a in ("low", "std", "high")]
    assert med[0] < med[1] < med[2]


def test_flat_dose_equals_per_kg_dose_at_the_childs_weight(small):
    d = parse_design(small)
    est = default_estimates()
    growth = load_growth_reference("uk-who")
    theta = est.typical.to_array()[None, :]
    seq = [np.random.SeedSequence(1)]
    flat = draw_arm(d, d.arms[1], theta, est, growth, seq, 5)
    per_kg = draw_arm(d, d.arms[0], theta, est, growth, seq, 5)
    # same stream: same children; E0 scales as flat dose / weight vs dose per kg
    np.testing.assert_allclose(flat.e0 * flat.weight_kg / 3e7, per_kg.e0 / 1e6, rtol=1e-12)


def test_redosing_rules(small):
    small["arms"] = [
        {"name": "A", "dose_per_kg": 1e6},
        {"name": "sched", "dose_per_kg": 1e6,
         "redose": {"trigger": "scheduled", "at_day": 120, "lymphodepletion": True}},
        {"name": "ret", "dose_per_kg": 1e6,
         "redose": {"trigger": "b_cell_return", "before_day": 365, "lag_days": 7}},
        {"name": "noclear", "dose_per_kg": 1e6, "lymphodepletion": {"regimen": "none"},
         "redose": {"trigger": "no_clearance", "at_day": 14, "dose_per_kg": 2e6}},
    ]  # fmt: skip
    res = run_trial(parse_design(small))
    p = res.patients
    assert p["A"]["redosed"].sum() == 0
    assert p["sched"]["redosed"].all()
    # redosing 7 d after B-cell return: exactly the patients whose B cells return by day 358
    # (each arm enrols its own patients; return day = clearance + aplasia)
    r = p["ret"]
    back = r["day_b_clear"] + r["aplasia_days"]
    np.testing.assert_array_equal(r["redosed"] > 0, np.isfinite(back) & (back <= 365.0 - 7.0))
    assert r["redosed"].sum() > 0
    # without lymphodepletion nobody clears by day 14: everyone is redosed
    assert p["noclear"]["redosed"].all()


def test_parameters_from_a_fit_file(tmp_path, small):
    fit = tmp_path / "fit.json"
    f_dist = 0.5 * default_estimates().typical.f_dist  # half the model's default
    fit.write_text(json.dumps({"format": FORMAT, "typical": {"f_dist": f_dist}}))
    small["parameters"] = {"fit": "fit.json"}
    low = run_trial(parse_design(small), design_dir=tmp_path)
    small["parameters"] = {}
    ref = run_trial(parse_design(small))
    # the fitted value is the one simulated: the same children expand differently
    assert np.median(low.patients["A"]["cmax"]) != np.median(ref.patients["A"]["cmax"])
    assert "no parameter uncertainty" in ref.estimates_source


def test_parquet_streamed_in_replicate_order(tmp_path, small):
    res = run_trial(parse_design(small), out=tmp_path, chunk_replicates=2)
    table = pd.read_parquet(tmp_path / "replicates.parquet")
    pd.testing.assert_frame_equal(table, res.replicates, check_exact=True)
    assert list(table["replicate"]) == sorted(table["replicate"])
    assert set(table["arm"]) == {"A", "B"}


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"workers": 0}, "workers"),
        ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "workers"),
        ({"scheduler": "localhost:8786"}, "scheduler"),
        ({"chunk_replicates": 0}, "chunk_replicates"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_run_options(small, kw, field):
    with pytest.raises(InvalidInput) as err:
        run_trial(parse_design(small), **kw)
    assert err.value.field == field


def test_solver_tolerances_reach_the_solver(small):
    small["solver"] = {"rtol": 1e-8, "atol": 1e-10}
    tight = run_trial(parse_design(small))
    small["solver"] = {"rtol": 1e-5, "atol": 1e-8}
    loose = run_trial(parse_design(small))
    assert loose.rhs_evals < tight.rhs_evals
    a, b = tight.patients["A"]["cmax"], loose.patients["A"]["cmax"]
    np.testing.assert_allclose(a, b, rtol=1e-2)


def test_b_cell_thresholds_are_design_settings(small):
    base = run_trial(parse_design(small)).patients["A"]
    small["b_thresholds"] = {"recon": 50.0}
    later = run_trial(parse_design(small)).patients["A"]
    ok = (base["aplasia_days"] > 0) & (later["aplasia_days"] > 0)
    assert ok.any()
    # aplasia lasts longer when return means B ≥ 50/µL instead of ≥ 10/µL
    assert (later["aplasia_days"][ok] >= base["aplasia_days"][ok]).all()
    assert (later["aplasia_days"][ok] > base["aplasia_days"][ok]).any()
