"""NPDE (hand-checked cases) and the censoring-aware VPC."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from immunoreset.interop.nonmem import validate_nonmem
from immunoreset.model.fit.data import prepare_data
from immunoreset.model.fit.foce import ErrorSpec, FitSpec, ParameterSpec, fit_foce, hessian
from immunoreset.model.fit.results import npde, npde_values, simulate_design, vpc
from immunoreset.model.fit.simulate import simulate_dataset


def test_npde_one_observation_by_hand():
    # K = 4 simulations 1, 2, 3, 4: mean 2.5, the decorrelation is a scaling, pde = the
    # fraction of simulations below; 0 -> 1/K, 1 -> 1 - 1/K (Comets 2008)
    sims = np.array([[1.0], [2.0], [3.0], [4.0]])
    assert npde_values(np.array([2.5]), sims)[0] == pytest.approx(0.0, abs=1e-12)
    assert npde_values(np.array([3.5]), sims)[0] == pytest.approx(norm.ppf(0.75))
    assert npde_values(np.array([10.0]), sims)[0] == pytest.approx(norm.ppf(0.75))
    assert npde_values(np.array([-10.0]), sims)[0] == pytest.approx(norm.ppf(0.25))


def test_npde_decorrelates_with_the_cholesky_factor():
    # two correlated observations: npde ≈ L⁻¹(y − m) for the true mean and covariance
    rng = np.random.default_rng(3)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    mean = np.array([1.0, 2.0])
    sims = rng.multivariate_normal(mean, cov, size=20000)
    y = np.array([1.5, 1.0])
    expected = np.linalg.solve(np.linalg.cholesky(cov), y - mean)  # (0.5, −1.667)
    assert expected[1] == pytest.approx((-1.0 - 0.8 * 0.5) / math.sqrt(1 - 0.64))
    got = npde_values(y, sims)
    assert got == pytest.approx(expected, abs=0.04)
    # without the decorrelation the second value would be Φ⁻¹(P(y2 < 1)) = −1.0
    assert abs(got[1] + 1.0) > 0.5


def test_npde_needs_more_simulations_than_observations():
    assert np.isnan(npde_values(np.zeros(3), np.ones((3, 3)))).all()
    assert np.isnan(npde_values(np.zeros(2), np.ones((50, 2)))).all()  # singular


def test_npde_of_a_correct_model_is_standard_normal(theoph_fit):
    values = npde(theoph_fit, n_rep=400, seed=2)
    v = values[theoph_fit.problem.quant]
    assert np.isfinite(v).all() and len(v) == 132
    assert abs(v.mean()) < 0.3  # Comets 2008: mean 0, variance 1 under the model
    assert 0.6 < v.var() < 1.5
    assert np.isnan(values[~theoph_fit.problem.mask]).all()


@pytest.fixture(scope="module")
def blq_fit():
    cov = pd.DataFrame({"WT": np.full(30, 70.0)})
    df = simulate_dataset(
        "pk_1cmt_oral",
        covariates=cov,
        times=[0.5, 1, 2, 4, 8, 12, 24, 36],
        cmts=[2],
        theta={"ka": 1.2, "cl": 3.0, "v": 35.0},
        omega={"cl": 0.3},
        errors={2: ("combined", 0.05, 0.15)},
        dose=300.0,
        lloq={2: 0.6},
        seed=4,
    )
    data = prepare_data(validate_nonmem(df))
    spec = FitSpec(
        "pk_1cmt_oral",
        (ParameterSpec("ka", 1.0, 0.0), ParameterSpec("cl", 3.0, 0.3), ParameterSpec("v", 30, 0.0)),
        (ErrorSpec(2, "combined", 0.1, 0.1),),
    )
    return fit_foce(spec, data, covariance=False)


def test_vpc_keeps_censoring_and_compares_blq_fractions(blq_fit):
    pr = blq_fit.problem
    v = vpc(blq_fit, n_rep=100, seed=1)[2]
    obs_frac = np.array(v["obs_blq_frac"])
    assert obs_frac[-1] > 0.5 and obs_frac[0] == 0.0  # late samples mostly below 0.6
    assert all(x == pytest.approx(0.6) for x in v["lloq"])
    # the simulated BLQ fraction brackets the observed one where the model is right
    inside = [
        lo <= o <= hi
        for lo, o, hi in zip(v["sim_blq_frac_lo"], obs_frac, v["sim_blq_frac_hi"], strict=True)
    ]
    assert sum(inside) >= len(inside) - 1
    # a percentile below the LLOQ is missing, never drawn at the LLOQ
    for key in ("obs_p05", "sim_p05_mid", "obs_p50", "sim_p50_hi"):
        vals = np.array(v[key], dtype=float)
        assert np.all(np.isnan(vals) | (vals >= 0.6)), key
    assert np.isnan(v["obs_p05"][-1]) and np.isnan(v["sim_p05_mid"][-1])
    assert not np.isnan(v["obs_p50"][0])
    # the same simulations can be passed in (write_fit shares them with the NPDE)
    sims = simulate_design(blq_fit, 100, 1)
    assert vpc(blq_fit, n_rep=100, sims=sims)[2] == v
    assert np.isnan(npde(blq_fit, sims=sims)[pr.blq]).all()


class _Quadratic:
    """Stand-in problem whose −2LL is a known quadratic (the Hessian formula is exact)."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        self.eta = None

    def minus2ll_many(self, xs, _eta=None):
        xs = np.atleast_2d(xs)
        return np.einsum("ij,jk,ik->i", xs, self.a, xs) + 7.0


def test_hessian_of_a_quadratic_is_exact():
    a = np.array([[2.0, 0.5, -0.3], [0.5, 1.0, 0.2], [-0.3, 0.2, 3.0]])
    hm = hessian(_Quadratic(a), np.array([0.1, -0.2, 0.3]), 1e-2)
    assert hm == pytest.approx(2.0 * a, abs=1e-8)


def test_exp_where_leaves_data_scale_entries_alone_without_overflow():
    """A combined-error B-cell prediction of 10³ cells/µL beside a log-error CAR T one: exp is
    taken of the log entry only (no overflow warning, which pytest turns into an error)."""
    import numpy as np

    from immunoreset.model.fit.results import exp_where

    out = exp_where(np.array([True, False]), np.array([np.log(5.0), 1000.0]))
    assert np.allclose(out, [5.0, 1000.0])
