"""Outputs of a virtual trial: ``summary.csv``, plots and a self-contained ``trial.html``.

``summary.csv`` (tidy; columns ``section, arm, endpoint, statistic, value, ci_low, ci_high,
n``):

* ``probability_of_success`` — the share of replicate trials meeting the success rule, per
  trial size (``statistic = patients_per_arm=<m>``), with its exact 95 % Clopper–Pearson
  interval (Monte Carlo error; parameter uncertainty is inside each replicate); one row per
  condition too (``endpoint = condition_<j>``).
* ``patients`` — per arm and endpoint over virtual patients: binary endpoints as the
  proportion over all replicates (95 % Clopper–Pearson); continuous ones as mean and 5/25/50/
  75/95th percentiles over the patients of the first replicates (``n`` = how many).
* ``trials`` — per arm and endpoint, the distribution over replicates of the trial-level
  statistic (responder proportion or median): 5/50/95th percentiles.
* ``run`` — seed, replicates, patients simulated, parameter source.

Numbers are written with 10 significant digits and every aggregate is taken in replicate
order, so the file is byte-identical for a seed whatever the workers or chunk size.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from immunoreset.model.equations import OBSERVABLES
from immunoreset.model.trial.design import ENDPOINTS, dump_design
from immunoreset.model.trial.rules import clopper_pearson

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from immunoreset.model.trial.run import TrialResult

__all__ = [
    "plot_endpoints",
    "plot_prediction_intervals",
    "plot_probability_of_success",
    "summary_table",
    "write_report",
]

_COLS = ["section", "arm", "endpoint", "statistic", "value", "ci_low", "ci_high", "n"]
_Q = (5.0, 25.0, 50.0, 75.0, 95.0)


def _condition_label(res: TrialResult, j: int) -> str:
    c = res.design.success.conditions[j]
    if c.statistic is not None:
        ((op, thr),) = c.compare.items()
        return f"{c.statistic} {c.endpoint} {op} {thr:g} in arm {c.arm}"
    what = c.endpoint
    if c.responder:
        ((op, thr),) = c.responder.items()
        what += f" {op} {thr:g}"
    parts = []
    if c.min_proportion is not None:
        parts.append(f"≥ {100 * c.min_proportion:g} %")
    if c.ci is not None:
        parts.append(
            f"lower {100 * c.ci.level:g} % {c.ci.method} bound > {100 * c.ci.lower_above:g} %"
        )
    return f"{what} in arm {c.arm}: " + ", ".join(parts)


def summary_table(res: TrialResult) -> pd.DataFrame:
    """The rows of ``summary.csv`` (see the module docstring)."""
    rows: list[list[object]] = []
    n_rep = res.success.shape[0]
    for si, m in enumerate(res.sizes):
        x = int(res.success[:, si].sum())
        lo, hi = clopper_pearson(np.array([x]), np.array([n_rep]), 0.95)
        rows.append(
            ["probability_of_success", "", "rule", f"patients_per_arm={m}", x / n_rep,
             lo[0], hi[0], n_rep]
        )  # fmt: skip
        for j in range(res.cond_pass.shape[2]):
            xj = int(res.cond_pass[:, si, j].sum())
            lo, hi = clopper_pearson(np.array([xj]), np.array([n_rep]), 0.95)
            rows.append(
                ["probability_of_success", res.design.success.conditions[j].arm,
                 f"condition_{j}", f"patients_per_arm={m}", xj / n_rep, lo[0], hi[0], n_rep]
            )  # fmt: skip
    reps = res.replicates
    for arm in res.design.arms:
        sub = reps[reps["arm"] == arm.name]
        for name, (kind, _unit, _d) in ENDPOINTS.items():
            if kind == "binary":
                x = int(sub[f"{name}_count"].sum())
                n = int(sub["patients"].sum())
                lo, hi = clopper_pearson(np.array([x]), np.array([n]), 0.95)
                rows.append(["patients", arm.name, name, "proportion", x / n, lo[0], hi[0], n])
                tv = sub[f"{name}_prop"].to_numpy()
            else:
                v = res.patients.get(arm.name, {}).get(name, np.empty(0))
                fin = v[np.isfinite(v)]
                if fin.size:
                    qs = np.percentile(fin, _Q)
                    rows.append(["patients", arm.name, name, "mean", float(fin.mean()),
                                 np.nan, np.nan, fin.size])  # fmt: skip
                    for q, val in zip(_Q, qs, strict=True):
                        rows.append(
                            ["patients", arm.name, name, f"p{q:g}", val, np.nan, np.nan, fin.size]
                        )
                else:
                    rows.append(["patients", arm.name, name, "mean", np.nan, np.nan, np.nan, 0])
                tv = sub[f"{name}_median"].to_numpy()
            tv = tv[np.isfinite(tv)]
            stat = "proportion" if kind == "binary" else "median"
            if tv.size:
                for q, val in zip((5.0, 50.0, 95.0), np.percentile(tv, (5.0, 50.0, 95.0)),
                                  strict=True):  # fmt: skip
                    rows.append(["trials", arm.name, name, f"{stat} p{q:g}", val, np.nan, np.nan,
                                 tv.size])  # fmt: skip
    d = res.design
    meta = [
        ("seed", res.seed),
        ("replicates", d.replicates),
        ("patients_per_arm", d.patients_per_arm),
        ("patients_simulated", res.patients_simulated),
        ("patient_distribution_replicates", res.patient_reps),
        ("prediction_interval_replicates", res.sample_reps),
    ]
    for k, v in meta:
        rows.append(["run", "", "", k, v, np.nan, np.nan, np.nan])
    rows.append(["run", "", res.estimates_source, "parameters", np.nan, np.nan, np.nan, np.nan])
    return pd.DataFrame(rows, columns=_COLS)


def _png(fig: Figure, path: Path) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def _figure(w: float, h: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def plot_prediction_intervals(res: TrialResult) -> Figure:
    """Median and 5–95 % band of CAR T, B cells, autoantibody and disease over time, per arm."""
    obs = [o for o, _u in OBSERVABLES if o != "transgene"]
    units = dict(OBSERVABLES)
    idx = {o: k for k, (o, _u) in enumerate(OBSERVABLES)}
    days = np.asarray(res.design.sample_days, dtype=np.float64)
    order = np.argsort(days)
    fig = _figure(4.0 * len(obs), 3.6)
    axes = fig.subplots(1, len(obs), squeeze=False)[0]
    for ax, o in zip(axes, obs, strict=True):
        for arm in res.design.arms:
            s = res.samples.get(arm.name)
            if s is None or not len(s):
                continue
            v = s[:, order, idx[o]].astype(np.float64)
            lo, med, hi = np.nanpercentile(v, (5.0, 50.0, 95.0), axis=0)
            (line,) = ax.plot(days[order], med, lw=1.8, label=arm.name)
            ax.fill_between(days[order], lo, hi, alpha=0.18, color=line.get_color())
        ax.set_title(o)
        ax.set_xlabel("day after infusion")
        ax.set_ylabel(units[o])
        if o in ("car_t", "b_cells"):
            ax.set_yscale("symlog", linthresh=0.1)
        ax.legend(fontsize=7, title="arm (median, 5–95 %)", title_fontsize=7)
    fig.suptitle(
        f"Prediction intervals, patients of the first {res.sample_reps} replicate(s) per arm"
    )
    return fig


def plot_endpoints(res: TrialResult) -> Figure:
    """Per-arm distributions: box plots of continuous endpoints, proportions of binary ones."""
    cont = [k for k, (kind, _u, _d) in ENDPOINTS.items() if kind == "continuous"]
    binary = [k for k, (kind, _u, _d) in ENDPOINTS.items() if kind == "binary"]
    arms = [a.name for a in res.design.arms]
    ncol = 4
    nrow = (len(cont) + 1 + ncol - 1) // ncol
    fig = _figure(4.0 * ncol, 3.2 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, name in zip(axes, cont, strict=False):
        data = []
        for a in arms:
            v = res.patients.get(a, {}).get(name, np.empty(0))
            data.append(v[np.isfinite(v)])
        if any(len(x) for x in data):
            ax.boxplot([x if len(x) else [np.nan] for x in data], tick_labels=arms,
                       showfliers=False)  # fmt: skip
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(ENDPOINTS[name][1], fontsize=8)
    ax = axes[len(cont)]
    reps = res.replicates
    width = 0.8 / max(1, len(arms))
    for i, a in enumerate(arms):
        sub = reps[reps["arm"] == a]
        props = [sub[f"{b}_count"].sum() / sub["patients"].sum() for b in binary]
        ax.bar(np.arange(len(binary)) + i * width, props, width, label=a)
    ax.set_xticks(np.arange(len(binary)) + 0.4 - width / 2)
    ax.set_xticklabels(binary, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_title("binary endpoints (all replicates)", fontsize=9)
    ax.legend(fontsize=7)
    for extra in axes[len(cont) + 1 :]:
        extra.set_visible(False)
    fig.suptitle("Endpoint distributions per arm")
    return fig


def plot_probability_of_success(res: TrialResult) -> Figure:
    """Probability of success vs patients per arm, with 95 % Clopper–Pearson intervals."""
    n_rep = res.success.shape[0]
    x = np.asarray(res.sizes)
    k = res.success.sum(axis=0)
    lo, hi = clopper_pearson(k, np.full(len(k), n_rep), 0.95)
    p = k / n_rep
    fig = _figure(5.5, 3.8)
    ax = fig.subplots()
    ax.errorbar(x, p, yerr=[p - lo, hi - p], marker="o", capsize=3)
    ax.axvline(res.design.patients_per_arm, ls=":", color="grey", label="design size")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("patients per arm")
    ax.set_ylabel("probability of success")
    ax.set_title(f"{n_rep} replicate trials per size")
    ax.legend(fontsize=8)
    return fig


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;font-size:0.85em}"
    "td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
    "img{max-width:100%} .pos{font-size:1.4em}"
    "pre{background:#f6f6f6;padding:1em;overflow:auto}"
)


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)


def write_report(res: TrialResult, out: str | Path) -> dict[str, Path]:
    """Write summary.csv, the three PNG plots and trial.html into ``out``; return the paths."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summary_table(res)
    paths = {"summary": out_dir / "summary.csv"}
    summary.to_csv(paths["summary"], index=False, float_format="%.10g", lineterminator="\n")
    images = {}
    for key, fn, fname in (
        ("prediction_intervals", plot_prediction_intervals, "prediction_intervals.png"),
        ("endpoints", plot_endpoints, "endpoints.png"),
        ("probability_of_success", plot_probability_of_success, "probability_of_success.png"),
    ):
        paths[key] = out_dir / fname
        images[key] = base64.b64encode(_png(fn(res), paths[key])).decode("ascii")
    if res.parquet is not None:
        paths["replicates"] = res.parquet
    d = res.design
    pos = summary[
        (summary["section"] == "probability_of_success") & (summary["endpoint"] == "rule")
    ]
    arms = pd.DataFrame(
        [
            {
                "arm": a.name,
                "dose": f"{a.dose_per_kg:g} /kg" if a.dose_per_kg else f"{a.flat_dose:g} flat",
                "lymphodepletion": a.lymphodepletion.regimen
                + (
                    f" × {a.lymphodepletion.effective_intensity:g}"
                    if a.lymphodepletion.regimen != "none"
                    else ""
                ),
                "redose": "" if a.redose is None else a.redose.trigger,
                "description": a.description,
            }
            for a in d.arms
        ]
    )
    conds = "".join(
        f"<li>{html.escape(_condition_label(res, j))}</li>"
        for j in range(len(d.success.conditions))
    )
    head = pos[pos["statistic"] == f"patients_per_arm={d.patients_per_arm}"].iloc[0]
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(d.name)}</title>
<style>{_CSS}</style>
</head><body>
<h1>{html.escape(d.name)}</h1>
<p>{html.escape(d.description)}</p>
<p class="pos">Probability of success with {d.patients_per_arm} patients per arm:
<strong>{100 * head["value"]:.1f} %</strong>
(95 % CI {100 * head["ci_low"]:.1f}–{100 * head["ci_high"]:.1f} %,
{d.replicates} replicate trials, seed {res.seed}).</p>
<p>Success rule ({d.success.combine} of):</p><ul>{conds}</ul>
<p>Parameters: {html.escape(res.estimates_source)}. Virtual patients simulated:
{res.patients_simulated:,}. SIMULATED — a model is a hypothesis; see docs/model.md for its
calibration and UNCONFIRMED settings.</p>
<h2>Arms</h2>{_table_html(arms)}
<h2>Probability of success vs patients per arm</h2>
<img alt="probability of success" src="data:image/png;base64,{images["probability_of_success"]}">
{_table_html(pos.drop(columns=["section", "arm", "endpoint"]))}
<h2>Prediction intervals over time</h2>
<img alt="prediction intervals" src="data:image/png;base64,{images["prediction_intervals"]}">
<h2>Endpoint distributions</h2>
<img alt="endpoint distributions" src="data:image/png;base64,{images["endpoints"]}">
{_table_html(summary[summary["section"] == "patients"].drop(columns=["section"]))}
<h2>Trial-level statistics across replicates</h2>
{_table_html(summary[summary["section"] == "trials"].drop(columns=["section"]))}
<h2>Design</h2><pre>{html.escape(dump_design(d))}</pre>
</body></html>
"""
    paths["html"] = out_dir / "trial.html"
    paths["html"].write_text(body, encoding="utf-8")
    return paths
