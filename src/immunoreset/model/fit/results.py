"""Tables and diagnostics of a FOCE-I fit: parameters, individual estimates, residuals, VPC.

* Parameters on the natural scale with SE (delta method from the covariance step), RSE %,
  95 % CI (on the estimation scale: log for θ, ω², σ — so asymmetric; linear for β), BSV as
  CV % (``100·√(exp(ω²) − 1)``) and η-shrinkage (``100·(1 − SD(η̂)/ω)``; Savic RM, Karlsson MO.
  *AAPS J* 2009;11:558–569).
* Residuals: PRED (η = 0), IPRED (η̂), IWRES, and CWRES — the FOCE conditional weighted
  residuals, ``L⁻¹(y − f(η̂) + J·η̂)`` with ``LLᵀ = JΩJᵀ + R`` (Hooker AC, Staatz CE,
  Karlsson MO. *Pharm Res* 2007;24:2187–2197). Working scale (log for the log error model);
  BLQ observations have no residual.
* NPDE (normalised prediction distribution errors; Brendel K, Comets E, Laffont C, et al.
  *Pharm Res* 2006;23:2036–2049; Comets E, Brendel K, Mentré F. *Comput Methods Programs
  Biomed* 2008;90:154–166): per individual, the observed and ``n_rep`` simulated vectors
  (η ~ N(0, Ω), residual error, working scale) are decorrelated with the Cholesky factor of the
  simulated covariance, ``pde`` is the fraction of decorrelated simulations below the
  decorrelated observation (0 → 1/K, 1 → 1 − 1/K) and ``npde = Φ⁻¹(pde)``. BLQ observations
  are omitted (the R package's ``cens.method = "omit"``); individuals with at least as many
  quantified observations as replicates get none.
* Visual predictive check: ``n_rep`` replicates of the design simulated from the final
  estimates (η ~ N(0, Ω), residual error); observed 5/50/95th percentiles per time bin against
  the simulated percentiles' median and 90 % interval (Holford N. *PAGE* 14 (2005) Abstr 738;
  Bergstrand M et al. *AAPS J* 2011;13:143–151). Censoring is kept, not imputed (Bergstrand M,
  Karlsson MO. *AAPS J* 2009;11:371–380): observed BLQ records and simulated values below the
  LLOQ count as "below" in the ranks, a percentile that falls below the bin's LLOQ is reported
  as missing (NaN) for data and simulations alike, and the fraction below the LLOQ is compared
  per bin (observed vs the simulated median and 90 % interval).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.model.fit.foce import FitResult, Problem

__all__ = [
    "PARAMETER_COLUMNS",
    "individual_table",
    "npde",
    "npde_values",
    "parameter_table",
    "prediction_table",
    "simulate_design",
    "vpc",
]

#: Columns of ``parameters.csv``, in order.
PARAMETER_COLUMNS: tuple[str, ...] = (
    "name",
    "estimate",
    "se",
    "rse_percent",
    "ci_low",
    "ci_high",
    "bsv_cv_percent",
    "shrinkage_percent",
)
_Z95 = 1.959963984540054


def _se(fit: FitResult) -> np.ndarray:
    if fit.cov_x is None:
        return np.full(fit.problem.n_x, math.nan)
    return np.sqrt(np.maximum(np.diag(fit.cov_x), 0.0))


def shrinkage(fit: FitResult) -> np.ndarray:
    """η-shrinkage (%) per random effect."""
    om = np.sqrt(np.diag(fit.problem.omega(fit.x)))
    if fit.eta.shape[0] < 2:
        return np.full(len(om), math.nan)
    return 100.0 * (1.0 - fit.eta.std(axis=0, ddof=1) / om)


def parameter_table(fit: FitResult) -> pd.DataFrame:
    """``parameters.csv``: typical values, covariate effects, Ω, residual SDs (natural scale)."""
    pr: Problem = fit.problem
    x, se = fit.x, _se(fit)
    omega = pr.omega(x)
    shr = shrinkage(fit)
    rows: list[dict[str, Any]] = []

    def log_row(name: str, i: int, scale: float = 1.0, **extra: Any) -> dict[str, Any]:
        est = math.exp(scale * x[i])
        s = est * scale * se[i]
        return {
            "name": name,
            "estimate": est,
            "se": s,
            "rse_percent": 100.0 * s / est,
            "ci_low": math.exp(scale * (x[i] - _Z95 * se[i])),
            "ci_high": math.exp(scale * (x[i] + _Z95 * se[i])),
            **extra,
        }

    for j, name in enumerate(pr.est_names):
        extra: dict[str, Any] = {"bsv_cv_percent": math.nan, "shrinkage_percent": math.nan}
        if name in pr.bsv_names:
            b = pr.bsv_names.index(name)
            extra = {
                "bsv_cv_percent": 100.0 * math.sqrt(math.expm1(omega[b, b])),
                "shrinkage_percent": float(shr[b]),
            }
        rows.append(log_row(name, pr.sl_theta.start + j, **extra))
    for j, label in enumerate(pr.cov_labels):
        i = pr.sl_beta.start + j
        rows.append(
            {
                "name": label,
                "estimate": x[i],
                "se": se[i],
                "rse_percent": 100.0 * se[i] / abs(x[i]) if x[i] != 0 else math.nan,
                "ci_low": x[i] - _Z95 * se[i],
                "ci_high": x[i] + _Z95 * se[i],
            }
        )
    if pr.spec.omega_block and pr.k:
        # Ω entries from the Cholesky factor: delta method with a numerical Jacobian
        tri = np.tril_indices(pr.k)
        sl = pr.sl_omega

        def vech(v: np.ndarray) -> np.ndarray:
            z = x.copy()
            z[sl] = v
            return pr.omega(z)[tri]

        v0 = x[sl]
        jac = np.empty((len(v0), len(v0)))
        for c in range(len(v0)):
            d = np.zeros(len(v0))
            d[c] = 1e-6
            jac[:, c] = (vech(v0 + d) - vech(v0 - d)) / 2e-6
        cov = fit.cov_x[sl, sl] if fit.cov_x is not None else np.full((len(v0),) * 2, math.nan)
        s_om = np.sqrt(np.maximum(np.diag(jac @ cov @ jac.T), 0.0))
        for q, (r, c) in enumerate(zip(*tri, strict=True)):
            a, b = pr.bsv_names[r], pr.bsv_names[c]
            est = omega[r, c]
            rows.append(
                {
                    "name": f"omega2_{a}" if r == c else f"omega_{a}_{b}",
                    "estimate": est,
                    "se": s_om[q],
                    "rse_percent": 100.0 * s_om[q] / abs(est) if est else math.nan,
                    "ci_low": est - _Z95 * s_om[q],
                    "ci_high": est + _Z95 * s_om[q],
                    "bsv_cv_percent": 100.0 * math.sqrt(math.expm1(est)) if r == c else math.nan,
                    "shrinkage_percent": float(shr[r]) if r == c else math.nan,
                }
            )
    else:
        for b, name in enumerate(pr.bsv_names):
            rows.append(
                log_row(
                    f"omega2_{name}",
                    pr.sl_omega.start + b,
                    2.0,
                    bsv_cv_percent=100.0 * math.sqrt(math.expm1(omega[b, b])),
                    shrinkage_percent=float(shr[b]),
                )
            )
    for j, label in enumerate(pr.sigma_labels):
        rows.append(log_row(label, pr.sl_sigma.start + j))
    table = pd.DataFrame(rows)
    for col in PARAMETER_COLUMNS:
        if col not in table:
            table[col] = math.nan
    return table[list(PARAMETER_COLUMNS)]


def individual_parameters(fit: FitResult) -> np.ndarray:
    """Individual (EBE) values of the estimated parameters, natural scale (n, n_est)."""
    pr = fit.problem
    lp = pr.log_phi_pop(fit.x)
    if pr.k:
        lp[:, pr.bsv_pos] += fit.eta
    return np.minimum(np.exp(lp), pr.upper)


def individual_table(fit: FitResult) -> pd.DataFrame:
    """``individual.csv``: ID, η̂ per random effect, individual parameter values."""
    pr = fit.problem
    out = {"ID": list(pr.data.ids)}
    for b, name in enumerate(pr.bsv_names):
        out[f"ETA_{name}"] = fit.eta[:, b]
        out[f"ETA_SD_{name}"] = np.sqrt(fit.eta_cov[:, b, b])
    vals = individual_parameters(fit)
    for j, name in enumerate(pr.est_names):
        out[name] = vals[:, j]
    return pd.DataFrame(out)


def _working_to_data(pr: Problem, f: np.ndarray) -> np.ndarray:
    return exp_where(pr.is_log, f)


def exp_where(is_log: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``exp(f)`` where ``is_log`` (log-error compartments), ``f`` elsewhere; exp is only
    evaluated on the log entries (a data-scale B-cell count of 10³ would overflow it)."""
    return np.where(is_log, np.exp(np.where(is_log, f, 0.0)), f)


def prediction_table(fit: FitResult) -> pd.DataFrame:
    """``predictions.csv``: ID, TIME, CMT, DV, BLQ, PRED, IPRED, RES, IWRES, CWRES."""
    pr = fit.problem
    n = pr.data.n
    ind = np.arange(n)
    modes = pr.conditional_modes(fit.x, fit.eta)
    f_i = modes["f"]
    jac = modes["jac"]
    f_p = pr._transform(pr.predict(fit.x, np.zeros((n, pr.k))), ind)
    r_i, _ = pr.variance(fit.x, f_i, ind)
    omega = pr.omega(fit.x)
    iwres = np.where(pr.quant, (pr.y - f_i) / np.sqrt(r_i), np.nan)
    cwres = np.full(f_i.shape, np.nan)
    for i in range(n):
        q = pr.quant[i]
        if not q.any():
            continue
        ji = jac[i][q]
        c = ji @ omega @ ji.T + np.diag(r_i[i][q])
        res = pr.y[i][q] - (f_i[i][q] - ji @ fit.eta[i])
        try:
            chol = np.linalg.cholesky(c)
            cwres[i, q] = np.linalg.solve(chol, res)
        except np.linalg.LinAlgError:
            pass
    m = pr.mask
    data = pr.data
    table = pd.DataFrame(
        {
            "ID": np.repeat(np.array(data.ids, dtype=object), m.sum(axis=1)),
            "TIME": data.time[m],
            "CMT": data.cmt[m],
            "DV": data.dv[m],
            "BLQ": pr.blq[m].astype(int),
            "PRED": _working_to_data(pr, f_p)[m],
            "IPRED": _working_to_data(pr, f_i)[m],
        }
    )
    table["RES"] = np.where(table.BLQ == 1, np.nan, table.DV - table.PRED)
    table["IWRES"] = iwres[m]
    table["CWRES"] = cwres[m]
    return table


def simulate_design(
    fit: FitResult, n_rep: int, seed: int = 0, *, residual: bool = True
) -> np.ndarray:
    """Simulated observations (n_rep, n, n_max) on the data scale at the observed design."""
    pr = fit.problem
    rng = np.random.default_rng(seed)
    n = pr.data.n
    omega = pr.omega(fit.x)
    eta = (
        rng.multivariate_normal(np.zeros(pr.k), omega, size=(n_rep, n)).reshape(-1, pr.k)
        if pr.k
        else np.zeros((n_rep * n, 0))
    )
    ind = np.tile(np.arange(n), n_rep)
    f = pr._transform(pr.predict(fit.x, eta, ind), ind)
    if residual:
        r, _ = pr.variance(fit.x, f, ind)
        f = f + rng.standard_normal(f.shape) * np.sqrt(r)
    sim = exp_where(pr.is_log[ind], f)
    return sim.reshape(n_rep, n, -1)


def npde_values(y: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """NPDE of one individual's observations ``y`` (n,) from simulations ``sims`` (K, n).

    Comets 2008 (module docstring): decorrelation by ``L⁻¹`` with ``LLᵀ`` the empirical
    covariance of the simulations, ``pde`` with 0 → 1/K and 1 → 1 − 1/K, ``npde = Φ⁻¹(pde)``.
    NaN when the covariance is singular (K ≤ n or constant simulations).
    """
    from scipy.special import ndtri

    y = np.asarray(y, dtype=np.float64)
    sims = np.asarray(sims, dtype=np.float64)
    k, n = sims.shape
    if n == 0:
        return np.zeros(0)
    if k <= n:
        return np.full(n, np.nan)
    mean = sims.mean(axis=0)
    dev = sims - mean
    cov = dev.T @ dev / (k - 1)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return np.full(n, np.nan)
    from scipy.linalg import solve_triangular

    y_dec = solve_triangular(chol, y - mean, lower=True)
    s_dec = solve_triangular(chol, dev.T, lower=True).T
    pde = (s_dec < y_dec[None, :]).mean(axis=0)
    pde = np.where(pde == 0.0, 1.0 / k, np.where(pde == 1.0, 1.0 - 1.0 / k, pde))
    return ndtri(pde)


def npde(
    fit: FitResult, n_rep: int = 500, seed: int = 0, *, sims: np.ndarray | None = None
) -> np.ndarray:
    """NPDE (n, n_max) of every quantified observation (NaN for BLQ and padding).

    ``sims`` (K, n, n_max, data scale, e.g. from :func:`simulate_design`) is reused when given.
    """
    pr = fit.problem
    if sims is None:
        sims = simulate_design(fit, n_rep, seed)
    work = np.where(pr.is_log[None], np.log(np.maximum(sims, 1e-300)), sims)
    out = np.full(pr.y.shape, np.nan)
    for i in range(pr.data.n):
        q = pr.quant[i]
        if q.any():
            out[i, q] = npde_values(pr.y[i, q], work[:, i, q])
    return out


def vpc(
    fit: FitResult,
    n_rep: int = 200,
    seed: int = 0,
    n_bins: int = 8,
    *,
    sims: np.ndarray | None = None,
) -> dict[int, dict[str, list[float]]]:
    """Percentile VPC per observation compartment (see module docstring).

    Returns ``{cmt: {"time", "obs_p05", "obs_p50", "obs_p95", "sim_<p>_lo/mid/hi",
    "lloq", "obs_blq_frac", "sim_blq_frac_lo/mid/hi"}}`` (percentiles below the bin's LLOQ are
    NaN; ``lloq`` NaN and BLQ fractions 0 where the bin has no LLOQ).
    """
    pr = fit.problem
    data = pr.data
    sim = simulate_design(fit, n_rep, seed) if sims is None else sims
    lloq_all = np.where(np.isfinite(data.lloq), data.lloq, -np.inf)
    out: dict[int, dict[str, list[float]]] = {}
    for cmt in data.cmts():
        sel = data.mask & (data.cmt == cmt)
        t = data.time[sel]
        lq = lloq_all[sel]
        obs_blq = pr.blq[sel]
        # censored values rank below every quantified one: −inf keeps the order
        y = np.where(obs_blq, -np.inf, data.dv[sel])
        s = sim[:, sel]
        sim_blq = s < lq[None, :]
        s = np.where(sim_blq, -np.inf, s)
        edges = np.unique(np.quantile(t, np.linspace(0, 1, n_bins + 1)))
        if len(edges) < 2:
            edges = np.array([t.min(), t.max() + 1e-9])
        b = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)
        res: dict[str, list[float]] = {"time": [], "lloq": [], "obs_blq_frac": []}
        for part in ("lo", "mid", "hi"):
            res[f"sim_blq_frac_{part}"] = []
        for q in ("p05", "p50", "p95"):
            res[f"obs_{q}"] = []
            for part in ("lo", "mid", "hi"):
                res[f"sim_{q}_{part}"] = []
        for k in range(len(edges) - 1):
            inb = b == k
            if not inb.any():
                continue
            finite = lq[inb][np.isfinite(lq[inb])]
            bin_lloq = float(finite.max()) if finite.size else -math.inf
            res["time"].append(float(np.median(t[inb])))
            res["lloq"].append(bin_lloq if finite.size else math.nan)
            res["obs_blq_frac"].append(float(obs_blq[inb].mean()))
            frac = sim_blq[:, inb].mean(axis=1)
            for part, v in zip(("lo", "mid", "hi"), np.percentile(frac, [5, 50, 95]), strict=True):
                res[f"sim_blq_frac_{part}"].append(float(v))

            def cens(v: float, lim: float = bin_lloq) -> float:
                return float(v) if np.isfinite(v) and v >= lim else math.nan

            for q, pct in (("p05", 5), ("p50", 50), ("p95", 95)):
                res[f"obs_{q}"].append(cens(np.percentile(y[inb], pct, method="inverted_cdf")))
                per_rep = np.percentile(s[:, inb], pct, axis=1, method="inverted_cdf")
                per_rep = np.where(per_rep >= bin_lloq, per_rep, -np.inf)
                lo, mid, hi = np.percentile(per_rep, [5, 50, 95], method="inverted_cdf")
                res[f"sim_{q}_lo"].append(cens(lo))
                res[f"sim_{q}_mid"].append(cens(mid))
                res[f"sim_{q}_hi"].append(cens(hi))
        out[int(cmt)] = res
    return out
