"""Simulated NONMEM-style data sets from known parameters (for simulation–estimation checks).

``simulate_dataset`` draws log-normal individual parameters around the typical values, runs
the named structural model (batched), adds residual error per compartment and censors values
below the LLOQ (``BLQ = 1``, ``DV = LLOQ``), returning a table that ``validate_nonmem`` and
the estimator accept like any other data set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput, check_choice
from immunoreset.model.fit.data import prepare_data
from immunoreset.model.fit.foce import ERROR_KINDS
from immunoreset.model.fit.models import get_model

__all__ = ["immune_simest_dataset", "simulate_dataset"]


def simulate_dataset(
    model: str,
    *,
    times: Sequence[float] | np.ndarray,
    cmts: Sequence[int],
    theta: Mapping[str, float],
    omega: Mapping[str, float],
    errors: Mapping[int, tuple[str, float, float]],
    n: int | None = None,
    covariates: pd.DataFrame | None = None,
    dose: float | Sequence[float] = 1.0,
    dose_time: float = 0.0,
    lloq: Mapping[int, float] | None = None,
    sampling_fraction: float = 1.0,
    predose_times: Sequence[float] = (),
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate a data set.

    Parameters
    ----------
    model : name from :data:`~immunoreset.model.fit.models.MODELS`
    times : nominal observation times (after the dose)
    cmts : observation compartments sampled at every time
    theta : typical values (other parameters at the model's defaults)
    omega : SD of the log-normal BSV per parameter
    errors : cmt -> (kind, add_sd, prop_sd)
    n : number of individuals (or ``len(covariates)``)
    covariates : per-individual covariate columns (AGE, SEX, WT, LD, …)
    dose : AMT of the dose record (CMT 1), one value or one per individual
    lloq : cmt -> LLOQ (values below are censored)
    sampling_fraction : keep each post-dose sample with this probability (sparse designs)
    predose_times : extra observation times before the dose (baselines)
    seed : random seed
    """
    m = get_model(model)
    rng = np.random.default_rng(seed)
    if n is None:
        if covariates is None:
            raise InvalidInput("n", None, "a number of individuals or a covariate table")
        n = len(covariates)
    cov = covariates.reset_index(drop=True) if covariates is not None else pd.DataFrame()
    doses = np.broadcast_to(np.asarray(dose, dtype=float), (n,))
    rows = []
    pre = sorted(float(t) for t in predose_times)
    post = [float(t) for t in times]
    for i in range(n):
        extra = {c: cov[c].iloc[i] for c in cov.columns}
        for t in pre:
            for c in cmts:
                rows.append({"ID": i + 1, "TIME": t, "DV": 1.0, "AMT": 0.0, "EVID": 0,
                             "MDV": 0, "CMT": c, **extra})  # fmt: skip
        rows.append({"ID": i + 1, "TIME": dose_time, "DV": math.nan, "AMT": doses[i],
                     "EVID": 1, "MDV": 1, "CMT": 1, **extra})  # fmt: skip
        for t in post:
            for c in cmts:
                if sampling_fraction < 1.0 and rng.random() > sampling_fraction:
                    continue
                rows.append({"ID": i + 1, "TIME": t, "DV": 1.0, "AMT": 0.0, "EVID": 0,
                             "MDV": 0, "CMT": c, **extra})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["LLOQ"] = math.nan
    frame["BLQ"] = 0
    frame["ID"] = frame["ID"].astype(str)
    data = prepare_data(frame)
    phi = np.tile(m.default_vector(), (data.n, 1))
    for name, value in theta.items():
        phi[:, m.index(name)] = value
    for name, sd in omega.items():
        phi[:, m.index(name)] *= np.exp(sd * rng.standard_normal(data.n))
    for name, hi in m.upper.items():
        phi[:, m.index(name)] = np.minimum(phi[:, m.index(name)], hi)
    f = m.bind(data)(phi, np.arange(data.n))
    y = f.copy()
    for c, (kind, add, prop) in errors.items():
        check_choice("error model", kind, ERROR_KINDS)
        sel = data.mask & (data.cmt == c)
        e = rng.standard_normal(sel.sum())
        if kind == "log":
            y[sel] = np.maximum(f[sel], 1e-8) * np.exp(add * e)
        else:
            a2 = add**2 if kind != "proportional" else 0.0
            b2 = prop**2 if kind != "additive" else 0.0
            sd = np.sqrt(a2 + b2 * f[sel] ** 2)
            y[sel] = f[sel] + sd * e
    out = frame.copy()
    obs_rows = data.row[data.mask]
    out.loc[obs_rows, "DV"] = y[data.mask]
    out["TRUE"] = math.nan
    out.loc[obs_rows, "TRUE"] = f[data.mask]
    for c, value in (lloq or {}).items():
        sel = (out.EVID == 0) & out.CMT.eq(c)
        out.loc[sel, "LLOQ"] = value
        below = sel & out.DV.lt(value)
        out.loc[below, "BLQ"] = 1
        out.loc[below, "DV"] = value
    return out.drop(columns=["TRUE"]).assign(ID=lambda d: d.ID.astype(int))


def immune_simest_dataset(n: int, seed: int = 5) -> tuple[pd.DataFrame, dict, dict]:
    """The immune-model simulation–estimation design of issue 11 (test and benchmark alike).

    ``n`` virtual children aged 6–17 y, lymphodepleted, log-normal BSV on f_dist, c50, b0
    (SD 0.4, 0.4, 0.3) around :class:`~immunoreset.model.equations.ImmuneParams`; CAR T by
    flow (CMT 2) and B cells (CMT 4) at 12 nominal days to 365, each kept with probability
    0.6 (sparse), a pre-infusion baseline at day −7, log residual SD 0.25, LLOQ 0.05 and
    1 cells/µL (BLQ). Returns ``(data set, typical values, BSV SDs)``.
    """
    from immunoreset.model.equations import ImmuneParams

    rng = np.random.default_rng(seed)
    cov = pd.DataFrame(
        {"AGE": rng.uniform(6, 17, n).round(1), "SEX": rng.integers(0, 2, n), "LD": 1}
    )
    ip = ImmuneParams()
    truth = {"f_dist": ip.f_dist, "c50": ip.c50, "b0": ip.b0}
    omega = {"f_dist": 0.4, "c50": 0.4, "b0": 0.3}
    df = simulate_dataset(
        "immune_reset",
        covariates=cov,
        times=[3, 7, 10, 14, 21, 28, 56, 91, 120, 182, 270, 365],
        cmts=[2, 4],
        theta=truth,
        omega=omega,
        errors={2: ("log", 0.25, 0.0), 4: ("log", 0.25, 0.0)},
        lloq={2: 0.05, 4: 1.0},
        sampling_fraction=0.6,
        predose_times=[-7],
        seed=seed,
    )
    return df, truth, omega
