"""Compiled DP5 solver against SciPy (tight tolerance), events, endpoints, non-negativity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from immunoreset.errors import InvalidInput
from immunoreset.model.equations import FLAVOURS, N_STATES, ImmuneParams, rhs
from immunoreset.model.population import DEFAULT_SAMPLE_DAYS, DIAGNOSIS_MIX, make_patient_batch
from immunoreset.model.solver import ENDPOINTS, integrate_batch
from tests.model.reference import reference_samples

SD = np.array(DEFAULT_SAMPLE_DAYS, dtype=float)
END = {name: j for j, (name, _u) in enumerate(ENDPOINTS)}


def _batch(n: int, seed: int):
    return make_patient_batch(
        start=0,
        n=n,
        seed=seed,
        dose_per_kg=1e6,
        typical=ImmuneParams(),
        age_range=(2.0, 40.0),
        diagnosis_mix=DIAGNOSIS_MIX,
        lymphodepletion=True,
    )


def _run(batch, sample_days=SD, t_end=730.0, **kw):
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


def _agreement(n: int, seed: int) -> None:
    batch = _batch(n, seed)
    samples, _ends, _stats = _run(batch)
    _cov, p, y0, et, em, ea = batch
    for i in range(n):
        ref = reference_samples(
            flavour=0, p=p[i], y0=y0[i], t0=-6.0, t_end=730.0, ev_t=et[i], ev_mult=em[i],
            ev_add=ea[i], sample_days=SD,
        )  # fmt: skip
        err = np.abs(samples[i] - ref)
        ok = (err <= 1e-4 * np.abs(ref)) | (err <= 1e-6)
        assert ok.all(), (i, np.argwhere(~ok), samples[i][~ok], ref[~ok])


def test_agreement_with_scipy_dop853_100_patients():
    _agreement(100, seed=11)


@pytest.mark.slow
def test_agreement_with_scipy_dop853_1000_patients():
    _agreement(1000, seed=12)


def test_agreement_with_scipy_radau_typical():
    batch = _batch(5, seed=2)
    samples, _, _ = _run(batch)
    _cov, p, y0, et, em, ea = batch
    for i in range(5):
        ref = reference_samples(
            flavour=0, p=p[i], y0=y0[i], t0=-6.0, t_end=730.0, ev_t=et[i], ev_mult=em[i],
            ev_add=ea[i], sample_days=SD, method="Radau", rtol=1e-11, atol=1e-14,
        )  # fmt: skip
        err = np.abs(samples[i] - ref)
        assert ((err <= 1e-4 * np.abs(ref)) | (err <= 1e-6)).all()


def _scipy_endpoints(p, y0, et, em, ea):
    """Tmax, Cmax, clearance and reconstitution days with SciPy events (post-infusion segment)."""
    y = y0.copy()
    bounds = [-6.0, *et, 730.0]
    for seg in range(len(et)):

        def f(t, yy, seg=seg):
            dy = np.empty(N_STATES)
            rhs(0, t, yy, p, seg, dy)
            return dy

        y = solve_ivp(f, (bounds[seg], bounds[seg + 1]), y, method="DOP853", rtol=1e-11,
                      atol=1e-14).y[:, -1]  # fmt: skip
        y = y * em[seg] + ea[seg]

    def f(t, yy):
        dy = np.empty(N_STATES)
        rhs(0, t, yy, p, len(et), dy)
        return dy

    def dc(t, yy):
        d = f(t, yy)
        return d[0] + d[1]

    def clear(t, yy):
        return yy[2] + yy[3] - 1.0

    dc.direction = -1
    clear.direction = -1
    sol = solve_ivp(f, (0.0, 730.0), y, method="DOP853", rtol=1e-11, atol=1e-14,
                    events=[dc, clear], dense_output=True)  # fmt: skip
    tmax = sol.t_events[0][0]
    tclear = sol.t_events[1][0]

    def recon(t, yy):
        return yy[2] + yy[3] - 10.0

    recon.direction = 1
    sol2 = solve_ivp(f, (tclear, 730.0), sol.sol(tclear), method="DOP853", rtol=1e-11,
                     atol=1e-14, events=[recon])  # fmt: skip
    trecon = sol2.t_events[0][0] if len(sol2.t_events[0]) else np.nan
    return tmax, float(np.sum(sol.sol(tmax)[:2])), tclear, trecon


@pytest.mark.parametrize("i", range(6))
def test_endpoints_match_scipy_events(i):
    batch = _batch(6, seed=5)
    _samples, ends, _ = _run(batch)
    _cov, p, y0, et, em, ea = batch
    tmax, cmax, tclear, trecon = _scipy_endpoints(p[i], y0[i], et[i], em[i], ea[i])
    assert ends[i, END["tmax"]] == pytest.approx(tmax, abs=1e-4)
    assert ends[i, END["cmax"]] == pytest.approx(cmax, rel=1e-6)
    assert ends[i, END["day_b_clear"]] == pytest.approx(tclear, abs=1e-4)
    assert ends[i, END["day_b_recon"]] == pytest.approx(trecon, abs=1e-3, nan_ok=True)


def test_auc_matches_trapezoid_of_reference():
    batch = _batch(3, seed=9)
    days = np.linspace(0.0, 28.0, 2801)
    samples, ends, _ = _run(batch, sample_days=days, t_end=60.0)
    auc = np.trapezoid(samples[:, :, 0], days, axis=1)
    assert np.allclose(ends[:, END["auc_0_28"]], auc, rtol=1e-4)


def test_states_stay_non_negative():
    batch = _batch(200, seed=4)
    days = np.arange(0.0, 731.0, 1.0)
    samples, _, _ = _run(batch, sample_days=days)
    assert np.nanmin(samples) >= -1e-9


def test_events_jump_at_the_right_times():
    # B cells drop by the LD fraction exactly at days −5, −4, −3; CAR T appears exactly at 0
    batch = _batch(1, seed=0)
    _cov, _p, _y0, _et, em, ea = batch
    days = np.array([-5.0, -4.0 - 1e-9, -4.0, 0.0 - 1e-9, 0.0])
    samples, _, _ = _run(batch, sample_days=days, t_end=10.0)
    b = samples[0, :, 2]
    c = samples[0, :, 0]
    per_day = em[0, 1, 2]
    assert b[2] == pytest.approx(b[1] * per_day, rel=1e-6)
    assert c[3] == 0.0
    assert c[4] == pytest.approx(ea[0, 3, 0], rel=1e-12)


@pytest.mark.parametrize(("method", "per_step", "per_dense"), [("dp5", 6, 0), ("dop853", 12, 3)])
def test_not_stiff_few_rejected_steps(method, per_step, per_dense):
    # an explicit method on a stiff problem rejects many steps (step size pinned by stability);
    # here rejections stay a small fraction of accepted steps on random patients
    batch = _batch(200, seed=8)
    _s, _e, stats = _run(batch, method=method)
    assert stats[:, 2].sum() < 0.2 * stats[:, 1].sum()
    assert (stats[:, 4] == 0).all()
    # RHS evaluations are counted exactly: per attempted step, per dense output, 1 per segment
    # (first stage; 5 segments for 4 events) and 1 for Hairer's starting step
    steps = stats[:, 1] + stats[:, 2]
    assert (stats[:, 0] == per_step * steps + per_dense * stats[:, 3] + 6).all()


def test_dop853_tableau_is_scipys():
    from scipy.integrate._ivp import dop853_coefficients as ref

    from immunoreset.model import dop853_tableau as tab

    for name in ("A", "B", "C", "D", "E3", "E5"):
        assert np.array_equal(getattr(tab, name), getattr(ref, name)), name


@pytest.mark.parametrize("method", ["dp5", "dop853"])
def test_unrolled_step_matches_tableau(method):
    # one step of the generated kernel equals a direct NumPy evaluation of the tableau
    from immunoreset.model import dop853_tableau as tab
    from immunoreset.model.equations import N_DERIVED, derived_constants, rhs_fast
    from immunoreset.model.rk_kernels import dop853_step, dp5_step
    from immunoreset.model.solver import _DP5_A

    a_mat, n_st = (tab.A, 12) if method == "dop853" else (_DP5_A, 6)
    step = dop853_step if method == "dop853" else dp5_step
    p = ImmuneParams().to_array()
    c = np.empty(N_DERIVED)
    derived_constants(0, p, c)
    y = np.array([3.0, 0.1, 300.0, 20.0, 0.8, 1.0, 0.9, 10.0, 2.0, 0.6, 5.0])
    h = 0.37
    k = np.zeros((16, N_STATES))
    rhs_fast(0, y, p, c, 4, k, 0)
    ynew = np.empty(N_STATES)
    step(0, p, c, 4, h, y, k, ynew, np.empty(N_STATES), 1e-8, 1e-10)
    kk = np.zeros((n_st + 1, N_STATES))
    rhs_fast(0, y, p, c, 4, kk, 0)
    for r in range(1, n_st + 1):
        rhs_fast(0, y + h * (a_mat[r, :r] @ kk[:r]), p, c, 4, kk, r)
    want = y + h * (a_mat[n_st, :n_st] @ kk[:n_st])
    assert np.allclose(ynew, want, rtol=1e-14, atol=0.0)
    assert np.allclose(k[: n_st + 1], kk, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("method", ["dp5", "dop853"])
def test_both_methods_agree_with_scipy(method):
    batch = _batch(20, seed=21)
    samples, _, _ = _run(batch, method=method)
    _cov, p, y0, et, em, ea = batch
    for i in range(20):
        ref = reference_samples(
            flavour=0, p=p[i], y0=y0[i], t0=-6.0, t_end=730.0, ev_t=et[i], ev_mult=em[i],
            ev_add=ea[i], sample_days=SD,
        )  # fmt: skip
        err = np.abs(samples[i] - ref)
        assert ((err <= 1e-4 * np.abs(ref)) | (err <= 1e-6)).all()


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"rtol": 0.5}, "rtol"),
        ({"method": "rk4"}, "method"),
        ({"atol": 0.0}, "atol"),
        ({"h_max": -1.0}, "h_max"),
        ({"sample_days": np.array([1.0, 1.0])}, "sample_days"),
        ({"sample_days": np.array([900.0])}, "sample_days"),
    ],
)
def test_integrate_batch_validation(kw, field):
    batch = _batch(1, seed=0)
    with pytest.raises(InvalidInput) as exc:
        _run(batch, **kw)
    assert exc.value.field == field
