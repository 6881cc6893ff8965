"""SciPy reference integration of the same right-hand side (segment by segment, exact events)."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from immunoreset.model.equations import N_OBSERVABLES, N_STATES, observables, rhs


def reference_samples(
    *,
    flavour: int,
    p: np.ndarray,
    y0: np.ndarray,
    t0: float,
    t_end: float,
    ev_t: np.ndarray,
    ev_mult: np.ndarray,
    ev_add: np.ndarray,
    sample_days: np.ndarray,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> np.ndarray:
    """Observables at ``sample_days`` (after the jump when a sample coincides with an event)."""
    out = np.full((len(sample_days), N_OBSERVABLES), np.nan)
    y = np.array(y0, dtype=np.float64)
    bounds = [t0, *[t for t in ev_t if t < t_end], t_end]
    obs = np.empty(N_OBSERVABLES)
    for seg in range(len(bounds) - 1):
        a, b = bounds[seg], bounds[seg + 1]

        def f(t, yy, seg=seg):
            dy = np.empty(N_STATES)
            rhs(flavour, t, yy, p, seg, dy)
            return dy

        inside = [(i, d) for i, d in enumerate(sample_days) if a <= d < b or (d == b == t_end)]
        sol = solve_ivp(f, (a, b), y, method=method, rtol=rtol, atol=atol, dense_output=True)
        for i, d in inside:
            yy = y if d == a else sol.sol(d)
            observables(flavour, np.ascontiguousarray(yy), p, obs)
            out[i] = obs
        y = sol.y[:, -1].copy()
        if seg < len(ev_t) and b == ev_t[seg]:
            y = y * ev_mult[seg] + ev_add[seg]
    return out
