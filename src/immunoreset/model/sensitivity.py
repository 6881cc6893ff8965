"""Global sensitivity (Sobol indices, SALib) of the immune-reset model's observable endpoints.

Which parameters can the registry's data inform? Each parameter is varied log-uniformly over
``[value/spread, value·spread]`` around the typical patient (fractions on the logit scale),
the model is run for every Saltelli sample (Sobol' sequence; Saltelli A. *Comput Phys Commun*
2002;145:280-297; Saltelli A, et al. *Comput Phys Commun* 2010;181:259-270) on the compiled
batched solver, and first-order ``S1`` and total ``ST`` indices are estimated for each
observable endpoint with SALib (Herman J, Usher W. *J Open Source Softw* 2017;2(9):97).

A parameter with ``ST`` below ``threshold`` on every observable cannot be estimated from such
data (it must be fixed from the literature); two parameters that act only through the same
single endpoint are confounded unless another data type separates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput, check_range
from immunoreset.model.equations import FLAVOURS, IDX_A, N_STATES, ImmuneParams
from immunoreset.model.equations import activation_baseline as _activation
from immunoreset.model.population import LD_DAYS, typical_events
from immunoreset.model.solver import ENDPOINTS, integrate_batch

__all__ = ["OBSERVED_ENDPOINTS", "SOBOL_PARAMETERS", "identifiability", "sobol_indices"]

#: Parameters varied by default (the fixed ones are unit conversions or LD-template constants).
SOBOL_PARAMETERS: tuple[str, ...] = (
    "k_b",
    "phi",
    "r_net",
    "k_kill",
    "rho",
    "k_s",
    "delta_e",
    "mu",
    "beta",
    "c50",
    "hill",
    "i_ld",
    "k_i",
    "f_ld",
    "k_p",
    "f_dep",
    "k_ab",
    "k_d",
    "w_b",
    "f_dist",
    "k_off",
    "a0",
    "theta_a",
    "c_cap",
)
#: Endpoints that a registry measures (flow/qPCR CAR T, CD19 B cells, autoantibody, score).
OBSERVED_ENDPOINTS: tuple[str, ...] = (
    "cmax",
    "tmax",
    "transgene_d28",
    "transgene_d182",
    "day_b_clear",
    "day_b_recon",
    "ab_pct_d91",
    "ab_pct_d365",
    "disease_d365",
)
_FRACTIONS = frozenset({"phi", "f_ld", "f_dep", "w_b", "f_dist"})
_SAMPLE_DAYS = np.array([28.0, 182.0, 365.0])


def _problem(names: Sequence[str], typical: ImmuneParams, spread: float) -> dict:
    base = {f.name: getattr(typical, f.name) for f in fields(typical)}
    bounds = []
    for name in names:
        v = base[name]
        if name in _FRACTIONS:
            lg = np.log(v / (1.0 - v))
            bounds.append([lg - np.log(spread), lg + np.log(spread)])
        else:
            bounds.append([np.log(v / spread), np.log(v * spread)])
    return {"num_vars": len(names), "names": list(names), "bounds": bounds}


def _run(x: np.ndarray, names: Sequence[str], typical: ImmuneParams, dose: float) -> pd.DataFrame:
    order = ImmuneParams.names()
    n = x.shape[0]
    params = np.tile(typical.to_array(), (n, 1))
    for j, name in enumerate(names):
        k = order.index(name)
        params[:, k] = 1.0 / (1.0 + np.exp(-x[:, j])) if name in _FRACTIONS else np.exp(x[:, j])
    i_rnet, i_kb, i_th = order.index("r_net"), order.index("k_b"), order.index("theta_a")
    params[:, i_rnet] = np.maximum(params[:, i_rnet], 1.5 * params[:, i_kb] * params[:, i_th])
    ev_t = np.tile(np.array([*LD_DAYS, 0.0]), (n, 1))
    mult = np.ones((n, 4, N_STATES))
    add = np.zeros((n, 4, N_STATES))
    y0 = np.zeros((n, N_STATES))
    i_b0, i_fa0, i_d0 = order.index("b0"), order.index("f_a0"), order.index("d0")
    i_fd = order.index("f_dist")
    for i in range(n):
        e0 = dose * params[i, i_fd] / 75.0 / 1000.0
        t, m, a = typical_events(params[i], e0)
        ev_t[i], mult[i], add[i] = t[0], m[0], a[0]
    y0[:, 2] = (1.0 - params[:, i_fa0]) * params[:, i_b0]
    y0[:, 3] = params[:, i_fa0] * params[:, i_b0]
    y0[:, 4:7] = 1.0
    y0[:, 7] = params[:, i_d0]
    y0[:, IDX_A] = _activation(params)
    samples, ends, _stats = integrate_batch(
        flavour=FLAVOURS["immune"],
        params=params,
        y0=y0,
        t0=-6.0,
        t_end=730.0,
        event_times=ev_t,
        event_mult=mult,
        event_add=add,
        sample_days=_SAMPLE_DAYS,
    )
    out = pd.DataFrame({name: ends[:, j] for j, (name, _u) in enumerate(ENDPOINTS)})
    out["transgene_d28"] = samples[:, 0, 1]
    out["transgene_d182"] = samples[:, 1, 1]
    out["disease_d365"] = samples[:, 2, 4]
    return out


def sobol_indices(
    *,
    n_base: int = 512,
    spread: float = 2.0,
    parameters: Sequence[str] = SOBOL_PARAMETERS,
    outputs: Sequence[str] = OBSERVED_ENDPOINTS,
    typical: ImmuneParams | None = None,
    dose_per_kg: float = 1e6,
    seed: int = 0,
) -> pd.DataFrame:
    """Sobol S1/ST (with 95 % bootstrap half-widths) of ``outputs`` for ``parameters``.

    ``n_base`` is Saltelli's N (a power of 2; ``N·(D + 2)`` model runs). Endpoints that are
    NaN for some runs (e.g. never reconstituted within 2 y) are replaced by the horizon (730 d,
    a censored value) so every run counts. Returns one row per (output, parameter).
    """
    from SALib.analyze import sobol
    from SALib.sample import sobol as sobol_sample

    check_range("n_base", n_base, 16, 1 << 16, integer=True)
    if n_base & (n_base - 1):
        raise InvalidInput("n_base", n_base, "a power of 2")
    check_range("spread", spread, 1.0, 100.0, lo_open=True)
    check_range("seed", seed, 0, 2**31 - 1, integer=True)
    order = ImmuneParams.names()
    for name in parameters:
        if name not in order:
            raise InvalidInput("parameters", name, "ImmuneParams field names")
    typical = typical or ImmuneParams()
    problem = _problem(parameters, typical, spread)
    x = sobol_sample.sample(problem, n_base, calc_second_order=False, seed=seed)
    runs = _run(x, parameters, typical, dose_per_kg)
    rows = []
    for out in outputs:
        if out not in runs.columns:
            raise InvalidInput("outputs", out, f"one of {tuple(runs.columns)}")
        y = runs[out].to_numpy(dtype=np.float64)
        y = np.where(np.isfinite(y), y, 730.0 if out.startswith("day_") else 0.0)
        res = sobol.analyze(problem, y, calc_second_order=False, seed=seed)
        for j, name in enumerate(parameters):
            rows.append(
                (out, name, res["S1"][j], res["S1_conf"][j], res["ST"][j], res["ST_conf"][j])
            )
    return pd.DataFrame(rows, columns=["output", "parameter", "S1", "S1_conf", "ST", "ST_conf"])


def identifiability(indices: pd.DataFrame, *, threshold: float = 0.05) -> pd.DataFrame:
    """Per parameter: the outputs with ``ST ≥ threshold`` and a verdict.

    Verdicts: "not informed" (no output), "one output" (only one endpoint informs it: confounded
    with any other parameter acting only there), "informed" (two or more endpoints).
    """
    check_range("threshold", threshold, 0.0, 1.0, lo_open=True)
    rows = []
    for name, grp in indices.groupby("parameter", sort=False):
        hit = grp.loc[grp["ST"] >= threshold].sort_values("ST", ascending=False)
        outs = list(hit["output"])
        verdict = "not informed" if not outs else ("one output" if len(outs) == 1 else "informed")
        rows.append((name, float(grp["ST"].max()), ", ".join(outs), verdict))
    return pd.DataFrame(rows, columns=["parameter", "max_ST", "outputs", "verdict"])
