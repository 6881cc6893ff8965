"""Calibration targets, steady state, Stein special case and parameter validation."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.model.equations import (
    FLAVOURS,
    N_STATES,
    ImmuneParams,
    SteinParams,
    immune_initial_state,
    rhs,
    stein_analytical,
)
from immunoreset.model.population import simulate_typical
from immunoreset.model.solver import integrate_batch

DAYS = (0.0, 5.0, 7.0, 14.0, 28.0, 91.0, 182.0, 365.0)


@pytest.fixture(scope="module")
def typical():
    return simulate_typical(sample_days=DAYS)


@pytest.mark.parametrize(
    ("check", "source"),
    [
        (lambda s, e: 7.0 <= e["tmax"] <= 10.0, "Nicolai day 7; Kochenderfer 8.5; Stein 9.3"),
        (lambda s, e: 20.0 <= e["cmax"] <= 40.0, "Nicolai 2024 32.69 cells/µL"),
        (lambda s, e: s.loc[7.0, "b_cells"] < 1.0, "Nicolai 2024 B depletion by day 5"),
        (lambda s, e: 100.0 <= e["day_b_recon"] <= 130.0, "Mackensen 2022 110 ± 32 d"),
        (lambda s, e: s.loc[91.0, "autoantibody"] <= 0.10, "Schett 2023 'zero or near zero'"),
        (lambda s, e: e["ab_pct_d91"] <= -90.0, "spec §11 ≥ 90 % fall at 3 months"),
        (lambda s, e: s.loc[182.0, "disease"] < 0.2 * 12.6, "Müller 2024 SLEDAI 0 at 6 months"),
        (lambda s, e: e["day_b_clear"] <= 7.0, "B < 1/µL by day 7"),
    ],
)
def test_typical_patient_meets_targets(typical, check, source):
    samples, ends = typical
    assert check(samples, ends), source


def test_baseline_is_steady_state():
    p = ImmuneParams().to_array()
    dy = np.empty(N_STATES)
    rhs(FLAVOURS["immune"], 0.0, immune_initial_state(ImmuneParams()), p, 0, dy)
    assert np.allclose(dy[:9], 0.0, atol=1e-12)


@pytest.mark.parametrize("b0", [67.0, 200.0, 500.0, 1400.0])
def test_zero_dose_without_lymphodepletion_keeps_b_cells(b0):
    samples, ends = simulate_typical(
        ImmuneParams(b0=b0), dose_per_kg=0.0, lymphodepletion=False, sample_days=DAYS
    )
    assert np.allclose(samples["b_cells"], b0, rtol=1e-9)
    assert np.allclose(samples["car_t"], 0.0)
    assert np.allclose(samples["autoantibody"], 1.0, rtol=1e-9)
    assert np.isnan(ends["day_b_clear"])


def test_zero_dose_with_lymphodepletion_recovers_with_turnover():
    # documented behaviour: LD removes f_ld of B, which returns with time constant 1/k_B
    p = ImmuneParams()
    samples, _ = simulate_typical(p, dose_per_kg=0.0, sample_days=(0.0, 365.0, 730.0))
    assert samples.loc[0.0, "b_cells"] < 0.3 * p.b0
    assert samples.loc[730.0, "b_cells"] == pytest.approx(p.b0, rel=0.05)


def _stein_run(sp: SteinParams, days: np.ndarray, method: str = "dop853") -> np.ndarray:
    n_par = len(sp.to_array())
    add = np.zeros((1, 2, N_STATES))
    add[0, 0, 0] = sp.r0
    samples, _, _ = integrate_batch(
        flavour=FLAVOURS["stein"],
        params=sp.to_array().reshape(1, n_par),
        y0=np.zeros((1, N_STATES)),
        t0=-1.0,
        t_end=float(days[-1]),
        event_times=np.array([[0.0, sp.tmax]]),
        event_mult=np.ones((1, 2, N_STATES)),
        event_add=add,
        sample_days=days,
        rtol=1e-10,
        atol=1e-12,
        method=method,
    )
    return samples[0, :, 1]


@pytest.mark.parametrize(
    "sp",
    [
        SteinParams(),
        SteinParams(tmax=5.0, alpha=0.3, beta=0.01, fb=0.05),
        SteinParams(rho=0.5, tmax=12.0, r0=1.0),
    ],
)
@pytest.mark.parametrize("method", ["dop853", "auto", "rodas4"])
def test_stein_solver_equals_analytical(sp, method):
    days = np.array([0.0, 1.0, 4.0, 5.0, 9.3, 12.0, 20.0, 60.0, 200.0, 365.0])
    got = _stein_run(sp, days, method)
    want = stein_analytical(days, sp)
    assert np.allclose(got, want, rtol=1e-7)


def test_stein_analytical_published_values():
    # Stein 2019: Cmax 24,000 copies/µg at Tmax 9.3 d; initial decline t½ 4.3 d
    sp = SteinParams()
    assert float(stein_analytical(9.3)) == pytest.approx(24000.0, rel=1e-9)
    assert float(stein_analytical(0.0)) == pytest.approx(24000.0 / 3900.0, rel=1e-9)
    assert np.log(2) / sp.alpha == pytest.approx(4.3, abs=0.05)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"b0": 0.0}, "b0"),
        ({"b0": -1.0}, "b0"),
        ({"phi": 1.0}, "phi"),
        ({"f_dep": 1.01}, "f_dep"),
        ({"k_b": "x"}, "k_b"),
        ({"hill": float("nan")}, "hill"),
        ({"f_dist": True}, "f_dist"),
    ],
)
def test_immune_params_validation(kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        ImmuneParams(**kwargs)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"fb": 1.0}, "fb"), ({"tmax": 0.0}, "tmax"), ({"beta": 0.2}, "beta")],
)
def test_stein_params_validation(kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        SteinParams(**kwargs)
    assert exc.value.field == field


def test_stein_analytical_refuses_negative_time():
    with pytest.raises(InvalidInput):
        stein_analytical(-1.0)
