"""RODAS4 and the "auto" DOP853/RODAS4 switching: Jacobian, structured solve, order, accuracy.

Oracles: central differences of the right-hand side (Jacobian), ``numpy.linalg.solve`` (the
structured solve of ``W = fac·I − J``), SciPy ``solve_ivp`` (DOP853/Radau at rtol 1e-11,
``tests/model/reference.py``) for the trajectories, and the method's own convergence under
halved fixed steps (order 4, Hairer & Wanner II, Sec. IV.7).
"""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.model.equations import (
    FLAVOURS,
    N_DERIVED,
    N_STATES,
    ImmuneParams,
    SteinParams,
    derived_constants,
    jac_fast,
    rhs_fast,
)
from immunoreset.model.population import DIAGNOSIS_MIX, make_patient_batch
from immunoreset.model.rosenbrock import JAC_PATTERN, N_FACTORS, factor, jac_matvec, solve
from immunoreset.model.solver import ENDPOINTS, integrate_batch
from tests.model.reference import reference_samples

SD = np.array([0.0, 1.0, 2.5, 4.0, 7.0, 10.0, 14.0, 28.0, 41.3, 91.0, 182.0, 365.0])


def _states(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random positive states spanning the model's range (CAR T 0–60, B 0–600, A 0–1 …)."""
    y = np.empty((n, N_STATES))
    y[:, 0] = rng.uniform(0.0, 60.0, n)
    y[:, 1] = rng.uniform(0.0, 5.0, n)
    y[:, 2] = rng.uniform(0.0, 600.0, n)
    y[:, 3] = rng.uniform(0.0, 60.0, n)
    y[:, 4:7] = rng.uniform(0.0, 2.0, (n, 3))
    y[:, 7] = rng.uniform(0.0, 25.0, n)
    y[:, 8] = rng.uniform(0.0, 8.0, n)
    y[:, 9] = rng.uniform(0.0, 1.0, n)
    y[:, 10] = rng.uniform(0.0, 500.0, n)
    return y


def _cases():
    rng = np.random.default_rng(3)
    immune = ImmuneParams().to_array()
    hill3 = ImmuneParams(hill=3.0).to_array()
    stein = SteinParams().to_array()
    for i, y in enumerate(_states(rng, 40)):
        yield FLAVOURS["immune"], (immune if i % 2 else hill3), y, 4
    for i, y in enumerate(_states(rng, 6)):
        yield FLAVOURS["stein"], stein, y, 0 if i % 2 else 2


def _jac(flavour, p, y, n_done):
    c = np.empty(N_DERIVED)
    derived_constants(flavour, p, c)
    jac = np.empty((N_STATES, N_STATES))
    jac_fast(flavour, y, p, c, n_done, jac)
    return c, jac


def test_jacobian_matches_central_differences():
    for flavour, p, y, n_done in _cases():
        c, jac = _jac(flavour, p, y, n_done)
        f = np.empty((2, N_STATES))
        num = np.empty((N_STATES, N_STATES))
        for j in range(N_STATES):
            h = 1e-5 * max(1.0, abs(y[j]))
            yp, ym = y.copy(), y.copy()
            yp[j] += h
            ym[j] -= h
            rhs_fast(flavour, yp, p, c, n_done, f, 0)
            rhs_fast(flavour, ym, p, c, n_done, f, 1)
            num[:, j] = (f[0] - f[1]) / (2.0 * h)
        scale = np.abs(num).max(axis=1, keepdims=True) + 1e-12
        assert np.all(np.abs(jac - num) <= 1e-6 * scale), (flavour, y)


def test_jacobian_lies_inside_the_structured_pattern():
    mask = np.zeros((N_STATES, N_STATES), dtype=bool)
    for row, cols in enumerate(JAC_PATTERN):
        mask[row, list(cols)] = True
    for flavour, p, y, n_done in _cases():
        _c, jac = _jac(flavour, p, y, n_done)
        assert not np.any(jac[~mask]), np.argwhere(jac * ~mask)
        v = np.arange(1.0, N_STATES + 1.0)
        out = np.empty(N_STATES)
        jac_matvec(jac, v, out)
        np.testing.assert_allclose(out, jac @ v, rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("h", [1e-3, 0.05, 0.7, 25.0])
def test_structured_solve_matches_numpy(h):
    rng = np.random.default_rng(5)
    fac = 1.0 / (0.25 * h)
    for flavour, p, y, n_done in _cases():
        _c, jac = _jac(flavour, p, y, n_done)
        fct = np.empty(N_FACTORS)
        assert factor(jac, fac, fct)
        rhs = rng.normal(size=N_STATES) * rng.uniform(0.1, 100.0)
        k = np.zeros((3, N_STATES))
        k[1] = rhs
        solve(jac, fct, k, 1)
        want = np.linalg.solve(fac * np.eye(N_STATES) - jac, rhs)
        np.testing.assert_allclose(k[1], want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
        assert not k[0].any() and not k[2].any()  # only the given row is touched


def _batch(n: int, seed: int, lymphodepletion: bool = True, dose: float = 1e6):
    return make_patient_batch(
        start=0,
        n=n,
        seed=seed,
        dose_per_kg=dose,
        typical=ImmuneParams(),
        age_range=(2.0, 40.0),
        diagnosis_mix=DIAGNOSIS_MIX,
        lymphodepletion=lymphodepletion,
    )


def _run(batch, t_end=365.0, sample_days=SD, **kw):
    _cov, p, y0, et, em, ea = batch
    return integrate_batch(
        flavour=FLAVOURS["immune"],
        params=p,
        y0=y0,
        t0=-6.0,
        t_end=t_end,
        event_times=et,
        event_mult=em,
        event_add=ea,
        sample_days=sample_days,
        **kw,
    )


def test_rodas4_converges_with_order_four():
    # fixed steps: a loose tolerance never rejects, so every step is h_max (events and
    # landing days do not shorten steps; segment ends do, identically for both runs)
    batch = _batch(3, seed=4)
    days = np.array([3.0, 7.0, 20.0, 28.0, 56.0])
    _cov, p, y0, et, em, ea = batch
    errs = []
    for h in (0.04, 0.02):
        samples, _e, stats = _run(
            batch, t_end=56.0, sample_days=days, method="rodas4", rtol=1e-2, atol=1.0, h_max=h
        )
        assert stats[:, 2].sum() == 0
        err = 0.0
        for i in range(3):
            ref = reference_samples(
                flavour=0, p=p[i], y0=y0[i], t0=-6.0, t_end=56.0, ev_t=et[i], ev_mult=em[i],
                ev_add=ea[i], sample_days=days,
            )  # fmt: skip
            err = max(err, float(np.max(np.abs(samples[i] - ref) / (np.abs(ref) + 1e-3))))
        errs.append(err)
    order = np.log2(errs[0] / errs[1])
    assert 3.5 < order < 4.6, errs


@pytest.mark.parametrize("method", ["rodas4", "auto"])
def test_agrees_with_scipy(method):
    batch = _batch(20, seed=21)
    samples, _e, stats = _run(batch, method=method, rtol=1e-8, atol=1e-10)
    assert not stats[:, 4].any()
    assert (stats[:, 5] > 0).all()  # Jacobians were used
    _cov, p, y0, et, em, ea = batch
    for i in range(20):
        ref = reference_samples(
            flavour=0, p=p[i], y0=y0[i], t0=-6.0, t_end=365.0, ev_t=et[i], ev_mult=em[i],
            ev_add=ea[i], sample_days=SD,
        )  # fmt: skip
        err = np.abs(samples[i] - ref)
        assert ((err <= 1e-4 * np.abs(ref)) | (err <= 1e-6)).all(), (i, err.max())


@pytest.mark.parametrize(("lymphodepletion", "dose"), [(True, 1e6), (False, 1e6), (True, 1e7)])
def test_auto_switches_both_ways_and_saves_work(lymphodepletion, dose):
    batch = _batch(200, seed=9, lymphodepletion=lymphodepletion, dose=dose)
    _s, e_dop, st_dop = _run(batch, method="dop853", rtol=1e-6, atol=1e-8)
    _s, e_auto, st_auto = _run(batch, method="auto", rtol=1e-6, atol=1e-8)
    assert not st_auto[:, 4].any()
    assert (st_dop[:, 5:] == 0).all()
    # every child goes implicit once the killing or programme A makes DOP853 stability-bound
    assert (st_auto[:, 6] >= 1).all()
    if lymphodepletion:  # ... and some back to explicit where accuracy bounds the step again
        assert (st_auto[:, 6] >= 2).mean() > 0.3
    assert st_auto[:, 0].sum() < 0.75 * st_dop[:, 0].sum()
    names = [n for n, _u in ENDPOINTS]
    np.testing.assert_array_equal(np.isnan(e_dop), np.isnan(e_auto))
    for j, name in enumerate(names):
        ok = ~np.isnan(e_dop[:, j])
        if name in ("day_b_aplasia_end", "aplasia_days"):
            continue  # ill-conditioned at the 50/µL plateau (tests/model/trial/test_tolerance.py)
        err = np.abs(e_dop[ok, j] - e_auto[ok, j])
        assert np.all(err <= 0.05 + 1e-3 * np.abs(e_dop[ok, j])), (name, float(err.max()))
