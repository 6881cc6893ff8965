"""Fit workflow: estimate, then write ``parameters.csv``, ``individual.csv``,
``predictions.csv``, ``fit.json`` (everything, machine-readable) and ``fit.html``
(self-contained; plots embedded as SVG) into an output folder; and read a fit back.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput
from immunoreset.model.fit.data import FitData
from immunoreset.model.fit.foce import FitResult, FitSpec, fit_foce
from immunoreset.model.fit.results import (
    individual_table,
    npde,
    parameter_table,
    prediction_table,
    simulate_design,
    vpc,
)

__all__ = ["FIT_FILES", "SavedFit", "load_fit", "run_fit", "write_fit"]

#: Files written by :func:`write_fit`.
FIT_FILES: tuple[str, ...] = (
    "parameters.csv",
    "individual.csv",
    "predictions.csv",
    "fit.json",
    "fit.html",
)


def run_fit(
    spec: FitSpec,
    data: FitData,
    out: str | Path,
    *,
    vpc_reps: int = 200,
    progress: Callable[[int, float], None] | None = None,
    max_iter: int = 200,
    covariance: bool = True,
) -> FitResult:
    """Fit ``spec`` to ``data`` (FOCE-I) and write every output file into ``out``
    (``covariance=False`` skips the covariance step: no SE, RSE or CI)."""
    fit = fit_foce(spec, data, progress=progress, max_iter=max_iter, covariance=covariance)
    write_fit(fit, out, vpc_reps=vpc_reps)
    return fit


def _clean(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return [_clean(x) for x in v.tolist()]
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    return v


def fit_document(fit: FitResult, vpc_result: dict | None = None) -> dict[str, Any]:
    """The content of ``fit.json``."""
    pr = fit.problem
    params = parameter_table(fit)
    return _clean(
        {
            "format": "immunoreset-fit/1",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "method": "FOCE-I (Laplacian, first-order Hessian, M3 for BLQ)",
            "model": pr.model.name,
            "spec": pr.resolved_spec().to_dict(),
            "x": fit.x,
            "x_layout": {
                "theta": [pr.sl_theta.start, pr.sl_theta.stop],
                "beta": [pr.sl_beta.start, pr.sl_beta.stop],
                "omega": [pr.sl_omega.start, pr.sl_omega.stop],
                "sigma": [pr.sl_sigma.start, pr.sl_sigma.stop],
            },
            "cov_x": fit.cov_x if fit.cov_x is not None else None,
            "theta": {n: math.exp(fit.x[pr.sl_theta][j]) for j, n in enumerate(pr.est_names)},
            "fixed": {
                n: float(pr.base[i])
                for i, n in enumerate(pr.model.parameters)
                if n not in pr.est_names
            },
            "omega": pr.omega(fit.x),
            "omega_names": list(pr.bsv_names),
            "sigma": dict(zip(pr.sigma_labels, pr.sigmas(fit.x).tolist(), strict=True)),
            "covariates": pr.cov_info,
            "parameters": params.to_dict(orient="records"),
            "minus2ll": fit.minus2ll,
            "ofv": fit.ofv,
            "aic": fit.aic,
            "bic": fit.bic,
            "n_individuals": pr.data.n,
            "n_observations": pr.n_obs,
            "n_blq": int(pr.blq.sum()),
            "n_parameters": fit.n_parameters,
            "converged": fit.converged,
            "message": fit.message,
            "covariance": fit.covariance_message,
            "iterations": fit.n_iterations,
            "evaluations": fit.n_evaluations,
            "seconds": fit.seconds,
            "ebe": {
                "ids": list(pr.data.ids),
                "eta": fit.eta,
                "eta_cov": fit.eta_cov,
            },
            "vpc": vpc_result,
        }
    )


def write_fit(fit: FitResult, out: str | Path, *, vpc_reps: int = 200) -> dict[str, Path]:
    """Write the fit's files (see :data:`FIT_FILES`) into ``out`` (created if needed)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidInput("out", str(out), f"a writable folder ({err.strerror})") from None
    params = parameter_table(fit)
    ind = individual_table(fit)
    pred = prediction_table(fit)
    vpc_result = None
    if vpc_reps > 0:
        # one simulation of the design serves the VPC and the NPDE (K = vpc_reps)
        sims = simulate_design(fit, vpc_reps, 0)
        vpc_result = vpc(fit, n_rep=vpc_reps, sims=sims)
        pred["NPDE"] = npde(fit, sims=sims)[fit.problem.mask]
    else:
        pred["NPDE"] = np.nan
    paths = {name: out / name for name in FIT_FILES}
    params.to_csv(paths["parameters.csv"], index=False, float_format="%.6g")
    ind.to_csv(paths["individual.csv"], index=False, float_format="%.6g")
    pred.to_csv(paths["predictions.csv"], index=False, float_format="%.6g")
    doc = fit_document(fit, vpc_result)
    paths["fit.json"].write_text(json.dumps(doc, indent=1), encoding="utf-8")
    paths["fit.html"].write_text(render_html(fit, params, pred, vpc_result), encoding="utf-8")
    return paths


# --------------------------------------------------------------------------- HTML report
def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]


def _figures(fit: FitResult, pred: pd.DataFrame, vpc_result: dict | None) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pr = fit.problem
    names = pr.model.outputs
    figs: list[tuple[str, str]] = []
    q = pred[pred.BLQ == 0]
    log_cmts = {int(c) for c in np.unique(pr.data.cmt[pr.is_log & pr.mask])}
    for cmt in sorted(q.CMT.unique()):
        d = q[q.CMT.eq(cmt)]
        fig, axes = plt.subplots(1, 5, figsize=(17, 3.4))
        for ax, col in zip(axes[:2], ("PRED", "IPRED"), strict=True):
            ax.scatter(d[col], d.DV, s=8, alpha=0.6)
            lo = float(np.nanmin([d[col].min(), d.DV.min()]))
            hi = float(np.nanmax([d[col].max(), d.DV.max()]))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            if cmt in log_cmts and lo > 0:
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.set_xlabel(col)
            ax.set_ylabel("DV")
        axes[2].scatter(d.TIME, d.CWRES, s=8, alpha=0.6)
        axes[2].axhline(0, color="k", lw=0.8)
        axes[2].set_xlabel(f"TIME ({pr.model.time_unit})")
        axes[2].set_ylabel("CWRES")
        axes[3].scatter(d.PRED, d.CWRES, s=8, alpha=0.6)
        axes[3].axhline(0, color="k", lw=0.8)
        axes[3].set_xlabel("PRED")
        axes[3].set_ylabel("CWRES")
        if cmt in log_cmts:
            axes[3].set_xscale("log")
        if "NPDE" in d and d.NPDE.notna().any():
            axes[4].scatter(d.TIME, d.NPDE, s=8, alpha=0.6)
        for lvl in (-1.96, 0.0, 1.96):
            axes[4].axhline(lvl, color="k", lw=0.8, ls="-" if lvl == 0 else ":")
        axes[4].set_xlabel(f"TIME ({pr.model.time_unit})")
        axes[4].set_ylabel("NPDE")
        fig.suptitle(f"CMT {cmt} ({names.get(int(cmt), '')}): goodness of fit")
        figs.append((f"Goodness of fit, CMT {cmt}", _svg(fig)))
    ids = list(dict.fromkeys(pred.ID))[:12]
    cols = 4
    rows = math.ceil(len(ids) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(14, 2.8 * rows), squeeze=False)
    for ax, pid in zip(axes.flat, ids, strict=False):
        d = pred[pred.ID.eq(pid)]
        for cmt in sorted(d.CMT.unique()):
            e = d[d.CMT.eq(cmt)].sort_values("TIME")
            (line,) = ax.plot(e.TIME, e.IPRED, lw=1.2, label=f"IPRED {cmt}")
            ax.plot(e.TIME, e.PRED, "--", lw=0.8, color=line.get_color())
            ax.scatter(e.TIME, e.DV, s=10, color=line.get_color())
            blq = e[e.BLQ == 1]
            ax.scatter(blq.TIME, blq.DV, s=14, marker="v", color="grey")
        if any(int(c) in log_cmts for c in d.CMT.unique()):
            ax.set_yscale("log")
        ax.set_title(f"ID {pid}", fontsize=9)
    for ax in list(axes.flat)[len(ids) :]:
        ax.axis("off")
    fig.suptitle("Individual fits: DV (points; ▼ BLQ), IPRED (line), PRED (dashed)")
    figs.append(("Individual fits", _svg(fig)))
    if vpc_result:
        for cmt, v in vpc_result.items():
            if not v["time"]:
                continue
            fig, ax = plt.subplots(figsize=(7, 4))
            t = v["time"]
            for qn, colr in (("p05", "tab:blue"), ("p50", "tab:red"), ("p95", "tab:blue")):
                ax.fill_between(t, v[f"sim_{qn}_lo"], v[f"sim_{qn}_hi"], color=colr, alpha=0.2)
                ax.plot(t, v[f"obs_{qn}"], color=colr, lw=1.5)
            sel = pr.data.mask & (pr.data.cmt == int(cmt))
            ax.scatter(pr.data.time[sel], pr.data.dv[sel], s=5, color="grey", alpha=0.5)
            if int(cmt) in log_cmts:
                ax.set_yscale("log")
            ax.set_xlabel(f"TIME ({pr.model.time_unit})")
            ax.set_ylabel("DV")
            ax.set_title(
                f"VPC CMT {cmt}: observed 5/50/95th percentiles (lines), simulated 90 % CI (bands)",
                fontsize=9,
            )
            figs.append((f"Visual predictive check, CMT {cmt}", _svg(fig)))
    return figs


def render_html(
    fit: FitResult, params: pd.DataFrame, pred: pd.DataFrame, vpc_result: dict | None
) -> str:
    """A self-contained HTML report of the fit (tables and inline SVG plots)."""
    pr = fit.problem
    summary = [
        ("Model", pr.model.name),
        ("Method", "FOCE-I (Laplacian), M3 for BLQ"),
        ("Individuals / observations / BLQ", f"{pr.data.n} / {pr.n_obs} / {int(pr.blq.sum())}"),
        ("−2LL / OFV (NONMEM)", f"{fit.minus2ll:.3f} / {fit.ofv:.3f}"),
        ("AIC / BIC", f"{fit.aic:.2f} / {fit.bic:.2f}"),
        ("Minimisation", f"{'converged' if fit.converged else 'NOT converged'}: {fit.message}"),
        ("Covariance step", fit.covariance_message),
        ("Time", f"{fit.seconds:.1f} s ({fit.n_evaluations} objective evaluations)"),
    ]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in summary
    )
    table = params.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
    figs = "".join(
        f"<h2>{html.escape(title)}</h2><figure>{svg}</figure>"
        for title, svg in _figures(fit, pred, vpc_result)
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Population fit: {html.escape(pr.model.name)}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}th{text-align:left}figure{margin:0}svg{max-width:100%;height:auto}"
        "</style></head><body>"
        f"<h1>Population fit: {html.escape(pr.model.name)}</h1>"
        f"<table>{rows}</table><h2>Parameters</h2>{table}"
        "<p>CI: 95 % on the estimation scale (log for typical values, ω², residual SDs). "
        "BSV CV % = 100·√(exp(ω²) − 1); shrinkage = 100·(1 − SD(η̂)/ω).</p>"
        f"{figs}</body></html>"
    )


# --------------------------------------------------------------------------- reading back
@dataclass(frozen=True)
class SavedFit:
    """A fit read from ``fit.json``: its spec and estimates (enough to forecast)."""

    spec: FitSpec
    x: np.ndarray
    document: dict[str, Any]
    path: Path


def load_fit(folder: str | Path) -> SavedFit:
    """Read ``folder/fit.json`` written by :func:`write_fit`."""
    path = Path(folder)
    path = path / "fit.json" if path.is_dir() else path
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInput(
            "fit", str(path), f"a fit.json written by `immunoreset fit` ({err})"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != "immunoreset-fit/1":
        raise InvalidInput("fit", str(path), "a fit.json of format immunoreset-fit/1")
    # an edited or truncated file: name what is wrong instead of a KeyError/TypeError
    try:
        spec = FitSpec.from_dict(doc["spec"])
        x = np.asarray(doc["x"], dtype=np.float64)
    except KeyError as err:
        raise InvalidInput(
            "fit", str(path), f"a complete fit.json (missing key {err}); re-run `immunoreset fit`"
        ) from None
    except (TypeError, ValueError) as err:
        raise InvalidInput(
            "fit", str(path), f"a fit.json written by `immunoreset fit` ({err})"
        ) from None
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise InvalidInput("fit", str(path), "a fit.json whose 'x' is a list of finite numbers")
    return SavedFit(spec=spec, x=x, document=doc, path=path)
