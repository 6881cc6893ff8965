"""Individual forecast from a population fit: MAP estimate from the data so far, prediction bands.

Given a saved fit (``fit.json``) and one patient's NONMEM-style records:

1. the maximum a-posteriori random effects ``η̂`` given the patient's observations (the same
   inner problem as the estimator: prior ``N(0, Ω)``, the fit's residual error, M3 for BLQ)
   and their approximate posterior covariance ``Σ = (JᵀWJ/2 + Ω⁻¹)⁻¹`` (Laplace);
2. ``n_samples`` draws ``η ~ N(η̂, Σ)`` (uncertainty of the individual parameters) and, by
   default (``include_residual=True``), one draw of the fit's residual error per prediction,
   from the compartment's own error model on its own scale (additive/proportional/combined on
   the data scale; ``log`` on the log scale, i.e. multiplicative): a **prediction interval**
   for a new measurement. ``include_residual=False`` gives the **confidence band** of the
   individual prediction (parameter uncertainty only), narrower;
3. the median and the central ``level`` interval (default 90 %) of the predictions on a day
   grid, per observation compartment of the fit (B cells, CAR T, autoantibody …), labelled
   ``interval = "prediction"`` or ``"confidence"``.

A new measurement below the assay's LLOQ would be reported as BLQ (M3); the prediction
interval is of the measurement before censoring (additive errors can reach below zero).

Without any usable observation the forecast is the population prediction (``η̂ = 0``,
``Σ = Ω``). Typical ODE forecasts take well under a second (one batched solver call).
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput, check_range
from immunoreset.model.fit.data import prepare_data
from immunoreset.model.fit.foce import Problem
from immunoreset.model.fit.results import exp_where
from immunoreset.model.fit.workflow import SavedFit

__all__ = ["INTERVALS", "Forecast", "ForecastBand", "forecast_band", "forecast_patient"]

#: Band kinds: parameter + residual uncertainty (a new measurement) or parameters only.
INTERVALS: tuple[str, ...] = ("prediction", "confidence")


@dataclass(frozen=True)
class ForecastBand:
    """Median and central ``level`` interval of one compartment on a day grid.

    ``interval`` is ``"prediction"`` (parameter uncertainty + residual error: where a new
    measurement falls) or ``"confidence"`` (parameter uncertainty only).
    """

    cmt: int
    output: str
    days: np.ndarray
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    interval: str = "prediction"


@dataclass(frozen=True)
class Forecast:
    """A patient's forecast: MAP random effects, individual parameters, bands per compartment."""

    patient: str
    eta: np.ndarray
    eta_cov: np.ndarray
    parameters: dict[str, float]
    bands: dict[int, ForecastBand]
    n_observations: int
    seconds: float

    def table(self) -> pd.DataFrame:
        """Long table: cmt, output, day, median, low, high, level, interval."""
        parts = [
            pd.DataFrame(
                {
                    "cmt": b.cmt,
                    "output": b.output,
                    "day": b.days,
                    "median": b.median,
                    "low": b.low,
                    "high": b.high,
                    "level": b.level,
                    "interval": b.interval,
                }
            )
            for b in self.bands.values()
        ]
        return pd.concat(parts, ignore_index=True)


def _grid_frame(frame: pd.DataFrame, days: np.ndarray, cmts: tuple[int, ...]) -> pd.DataFrame:
    """The patient's records as non-observations plus dummy observations on the grid."""
    pid = frame["ID"].iloc[0]
    keep = frame.copy()
    keep["MDV"] = 1  # real records stay (doses, baselines read by the models) but are not fitted
    first = keep.iloc[0]
    cov_cols = [c for c in keep.columns if c not in ("ID", "TIME", "DV", "AMT", "EVID", "MDV",
                                                      "CMT", "LLOQ", "BLQ", "LINE")]  # fmt: skip
    rows = []
    for c in cmts:
        for t in days:
            row = {"ID": pid, "TIME": float(t), "DV": math.nan, "AMT": 0.0, "EVID": 0, "MDV": 0,
                   "CMT": c, "LLOQ": math.nan, "BLQ": 0}  # fmt: skip
            row.update({k: first[k] for k in cov_cols})
            rows.append(row)
    grid = pd.concat([keep, pd.DataFrame(rows)], ignore_index=True)
    return grid.sort_values(["TIME", "EVID"], kind="stable").reset_index(drop=True)


def forecast_patient(
    saved: SavedFit,
    frame: pd.DataFrame,
    *,
    days: np.ndarray | None = None,
    n_samples: int = 500,
    level: float = 0.9,
    include_residual: bool = True,
    seed: int = 0,
) -> Forecast:
    """Forecast one patient (all records of ``frame`` must belong to one ID).

    Parameters
    ----------
    saved : the population fit (:func:`~immunoreset.model.fit.workflow.load_fit`)
    frame : validated NONMEM-style records of the patient (``validate_nonmem``)
    days : forecast grid (default: day 0 to max(365, last observation + 180), 121 points)
    n_samples : draws of η from the MAP posterior (50–20,000)
    level : central interval probability (0.5–0.99)
    include_residual : add the fitted residual error to each draw (prediction interval,
        the default); False gives the parameter-only confidence band
    seed : random seed of the draws

    Raises
    ------
    InvalidInput
        Records of more than one patient, bad settings.
    """
    t_start = _time.perf_counter()
    check_range("n_samples", n_samples, 50, 20_000, integer=True)
    check_range("level", level, 0.5, 0.99)
    ids = frame["ID"].astype(str).unique()
    if len(ids) != 1:
        raise InvalidInput("frame", len(ids), "the records of exactly one patient")
    spec = saved.spec
    x = saved.x
    fit_cmts = tuple(sorted(e.cmt for e in spec.errors))
    obs = frame[(frame.EVID == 0) & (frame.MDV == 0) & frame.CMT.isin(fit_cmts)]
    if days is None:
        last = float(obs.TIME.max()) if len(obs) else 0.0
        days = np.linspace(0.0, max(365.0, last + 180.0), 121)
    days = np.asarray(days, dtype=np.float64)
    if days.ndim != 1 or days.size == 0 or not np.all(np.isfinite(days)):
        raise InvalidInput("days", days, "a non-empty list of finite days")
    days = np.unique(days)
    grid = prepare_data(_grid_frame(frame, days, fit_cmts))
    gp = Problem(spec, grid)
    omega = gp.omega(x)
    if len(obs) and gp.k:
        pp = Problem(spec, prepare_data(frame, cmts=fit_cmts))
        modes = pp.conditional_modes(x, np.zeros((1, pp.k)))
        eta = modes["eta"][0]
        cov = np.linalg.inv(modes["hess"][0])
    else:
        eta = np.zeros(gp.k)
        cov = omega
    rng = np.random.default_rng(seed)
    draws = (
        rng.multivariate_normal(eta, (cov + cov.T) / 2.0, size=n_samples)
        if gp.k
        else np.zeros((n_samples, 0))
    )
    ind = np.zeros(n_samples, dtype=np.int64)
    f = gp._transform(gp.predict(x, draws, ind), ind)
    if include_residual:
        r, _ = gp.variance(x, f, ind)
        f = f + rng.standard_normal(f.shape) * np.sqrt(r)
    pred = exp_where(gp.is_log[ind], f)
    lo_q, hi_q = 50.0 * (1.0 - level), 50.0 * (1.0 + level)
    bands: dict[int, ForecastBand] = {}
    for c in fit_cmts:
        sel = grid.mask[0] & (grid.cmt[0] == c)
        t = grid.time[0][sel]
        p = pred[:, sel]
        if not np.isfinite(p).any():
            continue
        med, lo, hi = np.nanpercentile(p, [50.0, lo_q, hi_q], axis=0)
        kind = INTERVALS[0] if include_residual else INTERVALS[1]
        bands[c] = ForecastBand(c, gp.model.outputs.get(c, str(c)), t, med, lo, hi, level, kind)
    lp = gp.log_phi_pop(x)[0].copy()
    if gp.k:
        lp[gp.bsv_pos] += eta
    params = {
        n: float(min(math.exp(v), u)) for n, v, u in zip(gp.est_names, lp, gp.upper, strict=True)
    }
    return Forecast(
        patient=str(ids[0]),
        eta=eta,
        eta_cov=cov,
        parameters=params,
        bands=bands,
        n_observations=len(obs),
        seconds=_time.perf_counter() - t_start,
    )


def forecast_band(
    saved: SavedFit, frame: pd.DataFrame, cmt: int, days: np.ndarray | None = None, **kw: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(days, median, low, high)`` arrays of one compartment (for the patient-page plot)."""
    fc = forecast_patient(saved, frame, days=days, **kw)  # type: ignore[arg-type]
    if cmt not in fc.bands:
        known = ", ".join(map(str, fc.bands))
        raise InvalidInput("cmt", cmt, f"a compartment of the fit ({known})")
    b = fc.bands[cmt]
    return b.days, b.median, b.low, b.high
