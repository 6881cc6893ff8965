"""Compiled, batched Dormand–Prince 5(4) integrator: exact dosing events, on-the-fly endpoints.

Method: explicit Runge–Kutta 5(4) of Dormand & Prince (Dormand JR, Prince PJ. *J Comput Appl
Math* 1980;6:19–26), local extrapolation, error controlled on the 4th-order embedded estimate in
the RMS norm ``sc = atol + rtol·max(|y|, |y_new|)`` (as SciPy's ``RK45``), with the quartic
continuous extension of Shampine (*Math Comp* 1986;46:135–150; coefficients as in SciPy) used
only to locate the CAR T peak and the B-cell threshold crossings inside a step.

Why explicit: the immune model is not stiff. The fastest rate is CD19⁺ killing
``k_kill·E`` (≤ ~3 d⁻¹ at a CAR T peak of 50 cells/µL) during the first weeks, when accuracy
already limits the step to ≪ 1 d; afterwards the fastest rate is the plasmablast turnover
(0.2 d⁻¹), so the DP5 stability limit (|hλ| ≲ 3.3) allows steps of > 15 d, longer than the
accuracy-limited steps. ``tests/model`` checks this (the stiffness ratio max|hλ| stays inside
the stability region on random patients).

Events: integration stops at each event time, the state jumps (``y ← y·mult + add``) and the
integration restarts there (new first stage). Sampling times and the endpoint days 0/28/91/182/365
are reached by shortening the step to land on them exactly (no interpolation error). Samples at
an event time are taken *after* the jump (e.g. day 0 = just after infusion).

Endpoints per patient (no dense trajectory is stored):
``cmax`` (cells/µL), ``tmax`` (d), ``auc_0_28`` (cells·d/µL), ``day_b_clear`` (first time
B < 1 cells/µL at or after day 0), ``day_b_recon`` (first time B ≥ 10 cells/µL after clearance),
``ab_pct_d91``/``d182``/``d365`` (autoantibody change from baseline, %), ``disease_d182``
(points). Missing (not reached within the horizon) is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from immunoreset.model.equations import N_OBSERVABLES, N_STATES, observables, rhs

__all__ = [
    "ENDPOINTS",
    "ENDPOINT_DAYS",
    "LAND_AB91",
    "LAND_AB182",
    "LAND_AB365",
    "LAND_AUC0",
    "LAND_AUC28",
    "N_ENDPOINTS",
    "integrate_batch",
]

#: Endpoint names, in output column order, with units.
ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("cmax", "cells/uL"),
    ("tmax", "d"),
    ("auc_0_28", "cells*d/uL"),
    ("day_b_clear", "d"),
    ("day_b_recon", "d"),
    ("ab_pct_d91", "%"),
    ("ab_pct_d182", "%"),
    ("ab_pct_d365", "%"),
    ("disease_d182", "points"),
)
N_ENDPOINTS = len(ENDPOINTS)

#: Landing codes for endpoint days (bit flags).
LAND_AUC0, LAND_AUC28, LAND_AB91, LAND_AB182, LAND_AB365 = 1, 2, 4, 8, 16
#: Days at which endpoints are read (the solver lands on them exactly).
ENDPOINT_DAYS: tuple[tuple[float, int], ...] = (
    (0.0, LAND_AUC0),
    (28.0, LAND_AUC28),
    (91.0, LAND_AB91),
    (182.0, LAND_AB182),
    (365.0, LAND_AB365),
)

B_CLEAR = 1.0
B_RECON = 10.0

# Dormand–Prince 5(4) tableau
_C2, _C3, _C4, _C5 = 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0
_A21 = 1.0 / 5.0
_A31, _A32 = 3.0 / 40.0, 9.0 / 40.0
_A41, _A42, _A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
_A51, _A52, _A53, _A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
_A61, _A62, _A63 = 9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0
_A64, _A65 = 49.0 / 176.0, -5103.0 / 18656.0
_B1, _B3, _B4, _B5, _B6 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0
_E1, _E3, _E4 = -71.0 / 57600.0, 71.0 / 16695.0, -71.0 / 1920.0
_E5, _E6, _E7 = 17253.0 / 339200.0, -22.0 / 525.0, 1.0 / 40.0

_P = np.array(
    [
        [1.0, -8048581381.0 / 2820520608.0, 8663915743.0 / 2820520608.0,
         -12715105075.0 / 11282082432.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0,
         87487479700.0 / 32700410799.0],
        [0.0, -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0,
         -10690763975.0 / 1880347072.0],
        [0.0, 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0,
         701980252875.0 / 199316789632.0],
        [0.0, -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0,
         -1453857185.0 / 822651844.0],
        [0.0, 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0],
    ]
)  # fmt: skip


@njit(cache=True)
def _dense_coeffs(k: np.ndarray, h: float, i0: int, i1: int, q: np.ndarray) -> None:
    """Quartic coefficients q[0..3] of (y[i0] + y[i1])(x) − y_old, x in [0, 1]."""
    for j in range(4):
        s = 0.0
        for st in range(7):
            s += (k[st, i0] + k[st, i1]) * _P[st, j]
        q[j] = h * s


@njit(cache=True)
def _poly(q: np.ndarray, x: float) -> float:
    return x * (q[0] + x * (q[1] + x * (q[2] + x * q[3])))


@njit(cache=True)
def _dpoly(q: np.ndarray, x: float) -> float:
    return q[0] + x * (2.0 * q[1] + x * (3.0 * q[2] + x * 4.0 * q[3]))


@njit(cache=True)
def _cross(q: np.ndarray, base: float, level: float) -> float:
    """x in [0, 1] where base + poly(x) crosses level (sign change assumed at the ends)."""
    lo = 0.0
    hi = 1.0
    flo = base + _poly(q, lo) - level
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        fm = base + _poly(q, mid) - level
        if (fm < 0.0) == (flo < 0.0):
            lo = mid
            flo = fm
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return 0.5 * (lo + hi)


@njit(cache=True)
def _argmax_root(q: np.ndarray) -> float:
    """x in [0, 1] where d/dx poly changes sign from + to −."""
    lo = 0.0
    hi = 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _dpoly(q, mid) > 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return 0.5 * (lo + hi)


@njit(cache=True)
def _integrate_one(
    flavour,
    p,
    y0,
    t0,
    t_end,
    ev_t,
    ev_mult,
    ev_add,
    land_t,
    land_sample,
    land_code,
    rtol,
    atol,
    h_max,
    samples_out,
    end_out,
    stats_out,
):
    ns = N_STATES
    y = y0.copy()
    ynew = np.empty(ns)
    ytmp = np.empty(ns)
    k = np.empty((7, ns))
    obs = np.empty(N_OBSERVABLES)
    q = np.empty(4)
    n_ev = ev_t.shape[0]
    n_land = land_t.shape[0]
    for j in range(end_out.shape[0]):
        end_out[j] = math.nan
    for a in range(samples_out.shape[0]):
        for b in range(samples_out.shape[1]):
            samples_out[a, b] = math.nan
    nfev = 0
    nacc = 0
    nrej = 0
    cmax = -1.0
    tmax = math.nan
    auc0 = 0.0
    cleared = False
    recon = False
    t = t0
    n_done = 0
    li = 0
    while li < n_land and land_t[li] < t0:
        li += 1
    h = 0.0
    while True:
        seg_end = t_end
        if n_done < n_ev and ev_t[n_done] < t_end:
            seg_end = ev_t[n_done]
        # fresh first stage at the segment start
        rhs(flavour, t, y, p, n_done, k[0])
        nfev += 1
        if h <= 0.0:
            # Hairer's starting-step heuristic
            d0 = 0.0
            d1 = 0.0
            for s in range(ns):
                sc = atol + rtol * abs(y[s])
                d0 += (y[s] / sc) ** 2
                d1 += (k[0, s] / sc) ** 2
            d0 = math.sqrt(d0 / ns)
            d1 = math.sqrt(d1 / ns)
            if d0 < 1e-5 or d1 < 1e-5:
                h = 1e-6
            else:
                h = 0.01 * d0 / d1
            h = min(h, 0.1)
        while t < seg_end:
            target = seg_end
            landing = False
            if li < n_land and land_t[li] < seg_end:
                target = land_t[li]
                landing = True
            hit = False
            if h > h_max:
                h = h_max
            if t + h >= target - 1e-12 * max(1.0, abs(target)):
                h = target - t
                hit = True
            # stages
            for s in range(ns):
                ytmp[s] = y[s] + h * _A21 * k[0, s]
            rhs(flavour, t + _C2 * h, ytmp, p, n_done, k[1])
            for s in range(ns):
                ytmp[s] = y[s] + h * (_A31 * k[0, s] + _A32 * k[1, s])
            rhs(flavour, t + _C3 * h, ytmp, p, n_done, k[2])
            for s in range(ns):
                ytmp[s] = y[s] + h * (_A41 * k[0, s] + _A42 * k[1, s] + _A43 * k[2, s])
            rhs(flavour, t + _C4 * h, ytmp, p, n_done, k[3])
            for s in range(ns):
                ytmp[s] = y[s] + h * (
                    _A51 * k[0, s] + _A52 * k[1, s] + _A53 * k[2, s] + _A54 * k[3, s]
                )
            rhs(flavour, t + _C5 * h, ytmp, p, n_done, k[4])
            for s in range(ns):
                ytmp[s] = y[s] + h * (
                    _A61 * k[0, s]
                    + _A62 * k[1, s]
                    + _A63 * k[2, s]
                    + _A64 * k[3, s]
                    + _A65 * k[4, s]
                )
            rhs(flavour, t + h, ytmp, p, n_done, k[5])
            for s in range(ns):
                ynew[s] = y[s] + h * (
                    _B1 * k[0, s] + _B3 * k[2, s] + _B4 * k[3, s] + _B5 * k[4, s] + _B6 * k[5, s]
                )
            t_new = target if hit else t + h
            rhs(flavour, t_new, ynew, p, n_done, k[6])
            nfev += 6
            err = 0.0
            for s in range(ns):
                e = h * (
                    _E1 * k[0, s]
                    + _E3 * k[2, s]
                    + _E4 * k[3, s]
                    + _E5 * k[4, s]
                    + _E6 * k[5, s]
                    + _E7 * k[6, s]
                )
                sc = atol + rtol * max(abs(y[s]), abs(ynew[s]))
                err += (e / sc) ** 2
            err = math.sqrt(err / ns)
            if err > 1.0 or not math.isfinite(err):
                nrej += 1
                fac = 0.9 * err ** (-0.2) if math.isfinite(err) else 0.1
                h *= max(0.1, fac)
                continue
            nacc += 1
            # endpoints inside the accepted step (only after infusion, t >= 0)
            if t >= 0.0:
                c_old = y[0] + y[1]
                c_new = ynew[0] + ynew[1]
                dc_old = k[0, 0] + k[0, 1]
                dc_new = k[6, 0] + k[6, 1]
                if dc_old > 0.0 and dc_new < 0.0:
                    _dense_coeffs(k, h, 0, 1, q)
                    xs = _argmax_root(q)
                    cx = c_old + _poly(q, xs)
                    if cx > cmax:
                        cmax = cx
                        tmax = t + xs * h
                if c_new > cmax:
                    cmax = c_new
                    tmax = t_new
                if flavour == 0:
                    b_old = y[2] + y[3]
                    b_new = ynew[2] + ynew[3]
                    if not cleared and b_new < B_CLEAR:
                        _dense_coeffs(k, h, 2, 3, q)
                        xs = _cross(q, b_old, B_CLEAR)
                        end_out[3] = t + xs * h
                        cleared = True
                    elif cleared and not recon and b_new >= B_RECON:
                        _dense_coeffs(k, h, 2, 3, q)
                        xs = _cross(q, b_old, B_RECON)
                        end_out[4] = t + xs * h
                        recon = True
            # accept
            t = t_new
            for s in range(ns):
                y[s] = ynew[s]
                k[0, s] = k[6, s]
            fac = 0.9 * err ** (-0.2) if err > 0.0 else 10.0
            h_next = h * min(10.0, max(0.2, fac))
            if landing and hit and t < seg_end:
                _land(flavour, p, y, obs, land_sample[li], land_code[li], samples_out, end_out)
                if land_code[li] & LAND_AUC0:
                    auc0 = y[ns - 1]
                li += 1
            if hit:
                # keep the step the controller proposed, not the shortened landing step
                h = max(h_next, h)
            else:
                h = h_next
        # reached seg_end: apply the event (if any), then land on a coinciding sample
        if n_done < n_ev and seg_end == ev_t[n_done]:
            for s in range(ns):
                y[s] = y[s] * ev_mult[n_done, s] + ev_add[n_done, s]
            n_done += 1
            if t >= 0.0:
                c_now = y[0] + y[1]
                if c_now > cmax:
                    cmax = c_now
                    tmax = t
        while li < n_land and land_t[li] <= t:
            if land_t[li] == t:
                _land(flavour, p, y, obs, land_sample[li], land_code[li], samples_out, end_out)
                if land_code[li] & LAND_AUC0:
                    auc0 = y[ns - 1]
            li += 1
        if flavour == 0 and t >= 0.0 and not cleared and y[2] + y[3] < B_CLEAR:
            end_out[3] = t
            cleared = True
        if seg_end >= t_end:
            break
    if cmax >= 0.0:
        end_out[0] = cmax
        end_out[1] = tmax
    if not math.isnan(end_out[2]):
        end_out[2] = end_out[2] - auc0
    stats_out[0] = nfev
    stats_out[1] = nacc
    stats_out[2] = nrej


@njit(cache=True)
def _land(flavour, p, y, obs, sample_idx, code, samples_out, end_out):
    if sample_idx >= 0:
        observables(flavour, y, p, obs)
        for j in range(N_OBSERVABLES):
            samples_out[sample_idx, j] = obs[j]
    if code & LAND_AUC28:
        end_out[2] = y[N_STATES - 1]
    if flavour == 0:
        if code & LAND_AB91:
            end_out[5] = 100.0 * (y[6] - 1.0)
        if code & LAND_AB182:
            end_out[6] = 100.0 * (y[6] - 1.0)
            end_out[8] = y[7]
        if code & LAND_AB365:
            end_out[7] = 100.0 * (y[6] - 1.0)


@njit(parallel=True, cache=True)
def _integrate_all(
    flavour,
    params,
    y0,
    t0,
    t_end,
    ev_t,
    ev_mult,
    ev_add,
    land_t,
    land_sample,
    land_code,
    rtol,
    atol,
    h_max,
    samples_out,
    end_out,
    stats_out,
):
    n = params.shape[0]
    for i in prange(n):
        _integrate_one(
            flavour,
            params[i],
            y0[i],
            t0,
            t_end,
            ev_t[i],
            ev_mult[i],
            ev_add[i],
            land_t,
            land_sample,
            land_code,
            rtol,
            atol,
            h_max,
            samples_out[i],
            end_out[i],
            stats_out[i],
        )


def _landing_points(sample_days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge sampling days and endpoint days into sorted unique landing points."""
    days: dict[float, list[int]] = {}
    for i, d in enumerate(sample_days):
        days.setdefault(float(d), [-1, 0])[0] = i
    for d, code in ENDPOINT_DAYS:
        days.setdefault(d, [-1, 0])[1] |= code
    keys = sorted(days)
    land_t = np.array(keys, dtype=np.float64)
    land_sample = np.array([days[k][0] for k in keys], dtype=np.int64)
    land_code = np.array([days[k][1] for k in keys], dtype=np.int64)
    return land_t, land_sample, land_code


def integrate_batch(
    *,
    flavour: int,
    params: np.ndarray,
    y0: np.ndarray,
    t0: float,
    t_end: float,
    event_times: np.ndarray,
    event_mult: np.ndarray,
    event_add: np.ndarray,
    sample_days: np.ndarray,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    h_max: float = 30.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate ``n`` patients in parallel (numba ``prange``); return samples, endpoints, stats.

    Parameters
    ----------
    flavour : int
        Model code from :data:`immunoreset.model.equations.FLAVOURS`.
    params : ndarray, shape (n, n_par)
        Per-patient parameter vectors (float64).
    y0 : ndarray, shape (n, N_STATES)
        States at ``t0``.
    t0, t_end : float
        Start and end day (``t0 < t_end``).
    event_times : ndarray, shape (n, n_ev)
        Event days per patient, increasing, each in (t0, t_end].
    event_mult, event_add : ndarray, shape (n, n_ev, N_STATES)
        At event ``j``: ``y ← y·mult[j] + add[j]``.
    sample_days : ndarray, shape (n_samples,)
        Days (distinct, within [t0, t_end]) at which observables are recorded.
    rtol, atol : float
        Relative (1e-13–1e-2) and absolute (> 0) tolerances of the RMS error norm.
    h_max : float
        Largest step, d (> 0).

    Returns
    -------
    samples : ndarray, shape (n, n_samples, N_OBSERVABLES)
    endpoints : ndarray, shape (n, N_ENDPOINTS)
    stats : ndarray of int64, shape (n, 3)
        RHS evaluations, accepted steps, rejected steps.

    Raises
    ------
    InvalidInput
        On inconsistent shapes or out-of-range tolerances/times.
    """
    from immunoreset.errors import InvalidInput, check_range

    check_range("rtol", rtol, 1e-13, 1e-2)
    check_range("atol", atol, 0.0, 1.0, lo_open=True)
    check_range("h_max", h_max, 0.0, None, lo_open=True)
    check_range("t0", t0, -1e4, 1e5)
    check_range("t_end", t_end, t0, 1e5, lo_open=True)
    params = np.ascontiguousarray(params, dtype=np.float64)
    y0 = np.ascontiguousarray(y0, dtype=np.float64)
    n = params.shape[0]
    if params.ndim != 2 or y0.shape != (n, N_STATES):
        raise InvalidInput("y0", y0.shape, f"shape ({n}, {N_STATES})")
    event_times = np.ascontiguousarray(event_times, dtype=np.float64)
    if event_times.ndim != 2 or event_times.shape[0] != n:
        raise InvalidInput("event_times", event_times.shape, f"shape ({n}, n_events)")
    n_ev = event_times.shape[1]
    event_mult = np.ascontiguousarray(event_mult, dtype=np.float64)
    event_add = np.ascontiguousarray(event_add, dtype=np.float64)
    for name, arr in (("event_mult", event_mult), ("event_add", event_add)):
        if arr.shape != (n, n_ev, N_STATES):
            raise InvalidInput(name, arr.shape, f"shape ({n}, {n_ev}, {N_STATES})")
    if n_ev and (np.any(np.diff(event_times, axis=1) <= 0) or np.any(event_times <= t0)):
        raise InvalidInput("event_times", "…", "strictly increasing days after t0")
    sd = np.asarray(sample_days, dtype=np.float64)
    if sd.ndim != 1 or np.any(~np.isfinite(sd)) or np.any(sd < t0) or np.any(sd > t_end):
        raise InvalidInput("sample_days", sample_days, f"finite days within {t0:g}–{t_end:g}")
    if len(np.unique(sd)) != len(sd):
        raise InvalidInput("sample_days", sample_days, "distinct days")
    land_t, land_sample, land_code = _landing_points(sd)
    samples = np.empty((n, len(sd), N_OBSERVABLES))
    endpoints = np.empty((n, N_ENDPOINTS))
    stats = np.zeros((n, 3), dtype=np.int64)
    _integrate_all(
        int(flavour),
        params,
        y0,
        float(t0),
        float(t_end),
        event_times,
        event_mult,
        event_add,
        land_t,
        land_sample,
        land_code,
        float(rtol),
        float(atol),
        float(h_max),
        samples,
        endpoints,
        stats,
    )
    return samples, endpoints, stats
