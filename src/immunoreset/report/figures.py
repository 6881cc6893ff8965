"""Figures of the case series: matplotlib for the report, plotly JSON for the web app.

Every figure is built from a :class:`~immunoreset.report.tables.CohortAnalysis` (or a list of
courses, analysed on the fly) in two steps: the data are reduced once to *series* (one line per
patient, or — for cohorts larger than ``AnalysisSettings.max_lines`` — the median and the 5th to
95th percentile band per diagnosis and time bin, computed in one vectorised ``groupby``), then
drawn by either backend. So the report's PNG and the web app's interactive plot always show the
same numbers.

* Spaghetti plots over study days (day 0 = infusion), coloured by diagnosis: CAR T cells (log y;
  results below the LLOQ are not drawn, the LLOQ is a dashed line), CD19⁺ B cells (symmetric-log
  y, linear below 1 cell/µL, with the clearance and reconstitution thresholds), autoantibodies as
  % of each patient's baseline (log y) and disease scores (one panel per instrument).
* Swimmer plot: each patient's follow-up in months with the infusion, CRS and ICANS episodes,
  B-cell reconstitution and the day from which no immunosuppressant or glucocorticoid was given;
  at most ``AnalysisSettings.max_swimmers`` patients, chosen evenly across the follow-up
  distribution (the caption says so).
* Kaplan–Meier estimate of time to B-cell reconstitution with its pointwise 95 % CI
  (log(−log) Greenwood; Kaplan EL, Meier P. *J Am Stat Assoc* 1958;53:457–481).

Colours are the Okabe–Ito colour-blind-safe palette (Okabe M, Ito K. *Color Universal Design*,
2008).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from immunoreset import vocab
from immunoreset.course import Course
from immunoreset.errors import InvalidInput, check_choice
from immunoreset.report.labels import label
from immunoreset.report.tables import (
    DAYS_PER_MONTH,
    TITRE_ANALYTES,
    CohortAnalysis,
    _as_analysis,
)

__all__ = [
    "DIAGNOSIS_COLOURS",
    "SCORE_INSTRUMENTS",
    "Plot",
    "autoantibodies_plotly",
    "bcells_plotly",
    "car_t_plotly",
    "disease_scores_plotly",
    "km_plotly",
    "plot_autoantibodies",
    "plot_bcells",
    "plot_car_t",
    "plot_disease_scores",
    "plot_km",
    "plot_patient",
    "plot_swimmer",
    "swimmer_plotly",
]

#: Diagnosis -> colour (Okabe–Ito).
DIAGNOSIS_COLOURS: dict[str, str] = {
    "SLE": "#0072B2",
    "JDM": "#D55E00",
    "DM": "#E69F00",
    "SSc": "#009E73",
    "ASyS": "#CC79A7",
    "other": "#7F7F7F",
}
#: Instruments drawn in the disease-score figure (those present), with their axis label.
SCORE_INSTRUMENTS: dict[str, str] = {
    "sledai2k": "SLEDAI-2K",
    "cmas": "CMAS (0–52)",
    "mmt8": "MMT8 (0–80)",
    "mrss": "mRSS (0–51)",
    "md_global": "Physician global (0–10)",
}
#: Analyte -> its unit as a reader writes it.
ANALYTE_UNITS: dict[str, str] = {
    k: v[0].replace("uL", "µL").replace("ug", "µg") for k, v in vocab.ANALYTES.items()
}
_ASSAYS = {
    "flow": ("car_t_flow", "CAR T cells (cells/µL)"),
    "qpcr": ("car_t_qpcr", "CAR transgene (copies/µg DNA)"),
}


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class Plot:
    """A matplotlib figure and its caption.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
    caption : str
        What is drawn, including how a large cohort was reduced.
    """

    figure: Any
    caption: str

    def png(self, dpi: int = 300) -> bytes:
        """The figure as PNG bytes (300 dpi by default, a journal's minimum for raster)."""
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return buf.getvalue()

    def svg(self) -> bytes:
        """The figure as SVG (vector; text as outlines so it renders the same everywhere)."""
        buf = io.BytesIO()
        self.figure.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        return buf.getvalue()

    def data_uri(self, dpi: int | None = None) -> str:
        """The figure as a ``data:`` URI for a self-contained page: SVG (vector, for the HTML
        and — through WeasyPrint — the PDF), or a PNG at ``dpi`` when one is given."""
        if dpi is not None:
            return "data:image/png;base64," + base64.b64encode(self.png(dpi)).decode("ascii")
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg()).decode("ascii")


def _figure(ncols: int = 1, nrows: int = 1, *, width: float = 7.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg canvas

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


# ------------------------------------------------------------------------------ series
def _bins(day: np.ndarray) -> np.ndarray:
    """Time bins for the band plot: each day to day 28, weekly to day 98, then 4-weekly."""
    return np.where(
        day <= 28,
        day,
        np.where(day <= 98, 28 + 7 * np.ceil((day - 28) / 7), 98 + 28 * np.ceil((day - 98) / 28)),
    )


def _series(a: CohortAnalysis, long: pd.DataFrame, y: str) -> list[dict[str, Any]]:
    """Lines per patient (small cohort) or median/5–95 % bands per diagnosis (large)."""
    if long.empty:
        return []
    diag = a.patients["diagnosis"]
    df = long.assign(diagnosis=diag.reindex(long["study_id"]).to_numpy())
    out: list[dict[str, Any]] = []
    if df["study_id"].nunique() <= a.settings.max_lines:
        for sid, g in df.sort_values(["study_id", "day"]).groupby("study_id", sort=True):
            out.append(
                {
                    "kind": "line",
                    "label": str(sid),
                    "diagnosis": g["diagnosis"].iloc[0],
                    "x": g["day"].to_numpy(),
                    "y": g[y].to_numpy(),
                }
            )
        return out
    df = df.assign(bin=_bins(df["day"].to_numpy()))
    grouped = df.groupby(["diagnosis", "bin"], sort=True)[y]
    q = grouped.quantile([0.05, 0.5, 0.95]).unstack()
    counts = grouped.size()
    q = q[counts.reindex(q.index) >= 3]  # a band needs a few patients
    for dx, g in q.groupby(level=0, sort=True):
        out.append(
            {
                "kind": "band",
                "label": f"{dx} (n = {df.loc[df['diagnosis'] == dx, 'study_id'].nunique():,})",
                "diagnosis": dx,
                "x": g.index.get_level_values(1).to_numpy(dtype=float),
                "lo": g[0.05].to_numpy(),
                "y": g[0.5].to_numpy(),
                "hi": g[0.95].to_numpy(),
            }
        )
    return out


def _how(a: CohortAnalysis, series: list[dict[str, Any]]) -> str:
    if any(s["kind"] == "band" for s in series):
        return (
            f"Median (line) and 5th–95th percentile (band) per diagnosis and time bin (daily to "
            f"day 28, weekly to day 98, then every 4 weeks) — {a.n:,} patients, more than "
            f"{a.settings.max_lines} lines would be unreadable."
        )
    n = len({s["label"] for s in series})
    return f"One line per patient (n = {n:,}), coloured by diagnosis."


def _draw(ax: Any, series: list[dict[str, Any]]) -> None:
    if not series:
        ax.text(0.5, 0.5, "no data recorded", ha="center", va="center", transform=ax.transAxes)
        return
    seen: set[str] = set()
    for s in series:
        colour = DIAGNOSIS_COLOURS.get(s["diagnosis"], "#333333")
        label = s["diagnosis"] if s["kind"] == "line" else s["label"]
        first = label not in seen
        seen.add(label)
        if s["kind"] == "band":
            ax.fill_between(s["x"], s["lo"], s["hi"], color=colour, alpha=0.2, linewidth=0)
            ax.plot(s["x"], s["y"], color=colour, linewidth=1.8, label=label)
        else:
            ax.plot(
                s["x"],
                s["y"],
                color=colour,
                linewidth=1.0,
                marker="o",
                markersize=2.5,
                alpha=0.85,
                label=label if first else None,
            )
    if series:
        ax.legend(fontsize=7, frameon=False, loc="best")
    ax.axvline(0, color="#999999", linewidth=0.8, linestyle=":")
    ax.grid(alpha=0.25, linewidth=0.5)


def _lab_long(a: CohortAnalysis, analyte: str) -> pd.DataFrame:
    return a.labs[a.labs["analyte"] == analyte]


def _car_t_series(a: CohortAnalysis, assay: str) -> tuple[list[dict[str, Any]], float | None]:
    check_choice("assay", assay, _ASSAYS)
    sub = _lab_long(a, _ASSAYS[assay][0])
    sub = sub[(sub["day"] >= 0) & ~sub["below_lloq"] & (sub["value"] > 0)]
    lloq = sub["lloq"].dropna()
    return _series(a, sub, "value"), (float(lloq.median()) if len(lloq) else None)


def _bcell_series(a: CohortAnalysis) -> list[dict[str, Any]]:
    return _series(a, _lab_long(a, "cd19_b_cells"), "value")


def _titre_series(a: CohortAnalysis) -> list[dict[str, Any]]:
    parts = []
    for analyte in TITRE_ANALYTES:
        base = a.titres.get(analyte)
        if base is None:
            continue
        sub = _lab_long(a, analyte)
        b = base["baseline_value"].reindex(sub["study_id"]).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = 100.0 * sub["value"].to_numpy() / b
        keep = np.isfinite(pct) & (pct > 0) & (sub["day"].to_numpy() >= -30)
        parts.append(sub.loc[keep].assign(pct=pct[keep]))
    if not parts:
        return []
    return _series(a, pd.concat(parts, ignore_index=True), "pct")


def _score_series(a: CohortAnalysis) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for inst in SCORE_INSTRUMENTS:
        sub = a.scores[a.scores["instrument"] == inst]
        if not sub.empty:
            out[inst] = _series(a, sub, "score")
    return out


# ------------------------------------------------------------------------------ matplotlib
def plot_car_t(cohort: CohortAnalysis | Sequence[Course], *, assay: str = "flow") -> Plot:
    """CAR T cells in blood over study days (log y), one line per patient or bands.

    Parameters
    ----------
    cohort : CohortAnalysis or sequence of Course
    assay : {"flow", "qpcr"}
        Flow cytometry (cells/µL) or qPCR (copies/µg genomic DNA).
    """
    a = _as_analysis(cohort)
    series, lloq = _car_t_series(a, assay)
    fig, (ax,) = _figure()
    _draw(ax, series)
    if series:
        ax.set_yscale("log")
    if lloq is not None:
        ax.axhline(lloq, color="#555555", linestyle="--", linewidth=0.8)
    ax.set_xlabel("Days after infusion")
    ax.set_ylabel(_ASSAYS[assay][1])
    ax.set_title(f"CAR T cell kinetics ({'flow cytometry' if assay == 'flow' else 'qPCR'})")
    caption = (
        f"{_how(a, series)} Log scale; values below the assay's LLOQ are not drawn "
        f"(dashed line: LLOQ {lloq:g})."
        if lloq
        else f"{_how(a, series)} Log scale."
    )
    return Plot(fig, caption)


def plot_bcells(cohort: CohortAnalysis | Sequence[Course]) -> Plot:
    """CD19⁺ B cells over study days (symmetric-log y) with the clearance and reconstitution
    thresholds."""
    a = _as_analysis(cohort)
    series = _bcell_series(a)
    fig, (ax,) = _figure()
    _draw(ax, series)
    if series:
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(bottom=0)
    s = a.settings
    ax.axhline(s.clearance_threshold, color="#555555", linestyle="--", linewidth=0.8)
    ax.axhline(s.reconstitution_threshold, color="#555555", linestyle="-.", linewidth=0.8)
    ax.set_xlabel("Days after infusion")
    ax.set_ylabel("CD19⁺ B cells (cells/µL)")
    ax.set_title("B-cell aplasia and reconstitution")
    caption = (
        f"{_how(a, series)} Symmetric-log scale (linear below 1 cell/µL, so 0 is shown). "
        f"Dashed: clearance threshold < {s.clearance_threshold:g} cells/µL; dash-dot: "
        f"reconstitution ≥ {s.reconstitution_threshold:g} cells/µL."
    )
    return Plot(fig, caption)


def plot_autoantibodies(cohort: CohortAnalysis | Sequence[Course]) -> Plot:
    """Autoantibody titres as % of each patient's baseline (log y)."""
    a = _as_analysis(cohort)
    series = _titre_series(a)
    fig, (ax,) = _figure()
    _draw(ax, series)
    if series:
        ax.set_yscale("log")
        ax.axhline(100, color="#555555", linestyle="--", linewidth=0.8)
    ax.set_xlabel("Days after infusion")
    ax.set_ylabel("Titre, % of baseline")
    ax.set_title("Autoantibodies")
    names = ", ".join(label(x) for x in a.titres) or "none recorded"
    caption = (
        f"{_how(a, series)} Each titre ({names}) divided by the patient's baseline (last value "
        f"on or before day 0); log scale; dashed line 100 %."
    )
    return Plot(fig, caption)


def plot_disease_scores(cohort: CohortAnalysis | Sequence[Course]) -> Plot:
    """Disease-activity scores over study days, one panel per instrument present."""
    a = _as_analysis(cohort)
    per = _score_series(a)
    n = max(len(per), 1)
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig, axes = _figure(ncols, nrows, width=7.0, height=2.6 * nrows + 0.4)
    for ax, (inst, series) in zip(axes, per.items(), strict=False):
        _draw(ax, series)
        lo, hi, _ = vocab.INSTRUMENTS[inst]
        ax.set_ylim(lo, hi + (hi - lo) * 0.04 if inst != "sledai2k" else None)
        ax.set_title(SCORE_INSTRUMENTS[inst], fontsize=9)
        ax.set_xlabel("Days after infusion", fontsize=8)
        ax.set_ylabel("Score (points)", fontsize=8)
    for ax in axes[len(per) :]:
        ax.set_axis_off()
    if not per:
        axes[0].text(0.5, 0.5, "no disease assessments", ha="center", va="center")
        return Plot(fig, "No disease assessments recorded.")
    _letter(axes[: len(per)])
    how = _how(a, next(iter(per.values())))
    panels = []
    for i, inst in enumerate(per):
        lo, hi, _ = vocab.INSTRUMENTS[inst]
        n = a.scores.loc[a.scores["instrument"] == inst, "study_id"].nunique()
        name = SCORE_INSTRUMENTS[inst].split(" (")[0]
        panels.append(f"{chr(ord('A') + i)}, {name} (range {lo:g}–{hi:g}; n = {n})")
    return Plot(
        fig,
        f"{how} Each instrument on its own scale, in points; higher is more active disease "
        f"except CMAS and MMT8 (higher is stronger). {'; '.join(panels)}.",
    )


def _swimmer_rows(a: CohortAnalysis) -> tuple[pd.DataFrame, str]:
    p = a.patients[a.patients["infused"] & a.patients["followup_days"].notna()]
    p = p.sort_values(["followup_days"], ascending=False, kind="stable")
    total = len(p)
    cap = a.settings.max_swimmers
    note = f"All {total} patients."
    if total > cap:
        idx = np.unique(np.linspace(0, total - 1, cap).round().astype(int))
        p = p.iloc[idx]
        note = (
            f"{len(p)} of {total:,} patients shown, chosen evenly across the follow-up "
            f"distribution (longest at the top)."
        )
    rec = a.bcells["reconstitution_day"].reindex(p.index)
    df = pd.DataFrame(
        {
            "diagnosis": p["diagnosis"],
            "months": p["followup_days"] / DAYS_PER_MONTH,
            "recon_months": rec / DAYS_PER_MONTH,
            "off_months": p["off_from_day"] / DAYS_PER_MONTH,
            "status": p["followup_status"],
        }
    )
    return df, note


def plot_swimmer(cohort: CohortAnalysis | Sequence[Course]) -> Plot:
    """Swimmer plot: follow-up with infusion, CRS/ICANS, reconstitution and therapy stop."""
    a = _as_analysis(cohort)
    rows, note = _swimmer_rows(a)
    n = len(rows)
    fig, (ax,) = _figure(width=7.0, height=max(2.4, 0.22 * n + 1.2))
    ypos = np.arange(n)[::-1]
    colours = [DIAGNOSIS_COLOURS.get(d, "#333333") for d in rows["diagnosis"]]
    ax.barh(ypos, rows["months"], height=0.6, color=colours, alpha=0.55)
    ax.set_yticks(ypos, rows.index.tolist(), fontsize=6 if n > 20 else 8)
    y_of = dict(zip(rows.index, ypos, strict=True))
    ep = a.episodes[a.episodes["study_id"].isin(rows.index)]
    for kind, colour, marker in (("crs", "#C00000", "*"), ("icans", "#6A3D9A", "P")):
        e = ep[ep["kind"] == kind]
        if len(e):
            ax.scatter(
                e["onset_day"] / DAYS_PER_MONTH,
                e["study_id"].map(y_of),
                marker=marker,
                s=40,
                color=colour,
                zorder=3,
                label=kind.upper(),
            )
    r = rows[rows["recon_months"].notna()]
    ax.scatter(
        r["recon_months"],
        [y_of[i] for i in r.index],
        marker="^",
        s=28,
        color="#000000",
        zorder=3,
        label="B-cell reconstitution",
    )
    o = rows[rows["off_months"].notna()]
    ax.scatter(
        o["off_months"],
        [y_of[i] for i in o.index],
        marker="D",
        s=18,
        color="#009E73",
        edgecolor="#004D38",
        zorder=3,
        label="off immunosuppressants",
    )
    ax.axvline(0, color="#333333", linewidth=1.0, label="infusion")
    from matplotlib.patches import Patch

    ax.set_xlabel("Months after infusion")
    ax.set_title("Follow-up per patient")
    ax.set_ylim(-0.7, n - 0.3)
    handles, _labels = ax.get_legend_handles_labels()
    handles += [
        Patch(color=DIAGNOSIS_COLOURS.get(d, "#333333"), alpha=0.55, label=d)
        for d in sorted(set(rows["diagnosis"]))
    ]
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="lower right")
    ax.grid(axis="x", alpha=0.25, linewidth=0.5)
    caption = (
        f"{note} Bar: follow-up to last contact (months = days / 30.4375), coloured by "
        f"diagnosis; stars: CRS onset; crosses: ICANS onset; triangles: B-cell reconstitution; "
        f"diamonds: first day free of immunosuppressants and glucocorticoids (negative when "
        f"stopped before infusion)."
    )
    return Plot(fig, caption)


def _km_curve(a: CohortAnalysis) -> dict[str, np.ndarray] | None:
    if a.km is None:
        return None
    t = a.km.table
    x = np.concatenate([[0.0], t["time"].to_numpy()])
    y = np.concatenate([[1.0], t["survival"].to_numpy()])
    # where Ŝ = 0 the log(−log) bounds are undefined: draw the band down to 0 under the last
    # defined upper bound
    lo = np.concatenate([[1.0], np.nan_to_num(t["ci_lower"].to_numpy(), nan=0.0)])
    hi = pd.Series(np.concatenate([[1.0], t["ci_upper"].to_numpy()])).ffill().to_numpy()
    cens = t[t["censored"] > 0]
    return {
        "x": x,
        "y": y,
        "lo": lo,
        "hi": hi,
        "cx": cens["time"].to_numpy(),
        "cy": cens["survival"].to_numpy(),
    }


def _risk_times(t_max: float) -> np.ndarray:
    """Round time points (days) for the number-at-risk table: 6–10 columns to ``t_max``."""
    for step in (7, 14, 28, 30, 60, 90, 180, 365, 730):
        if t_max / step <= 9:
            break
    return np.arange(0, t_max + 1e-9, step, dtype=float)


def plot_km(cohort: CohortAnalysis | Sequence[Course]) -> Plot:
    """Kaplan–Meier estimate of the proportion still B-cell aplastic after infusion, with the
    number at risk under it."""
    a = _as_analysis(cohort)
    c = _km_curve(a)
    if c is None:
        fig, (ax,) = _figure(height=3.2)
        ax.text(0.5, 0.5, "no patient cleared B cells", ha="center", va="center")
        ax.set_axis_off()
        return Plot(fig, "No Kaplan–Meier estimate: no patient cleared B cells.")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 3.9), layout="constrained")
    ax, risk = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    ax.fill_between(c["x"], c["lo"], c["hi"], step="post", color="#0072B2", alpha=0.2, lw=0)
    ax.step(c["x"], c["y"], where="post", color="#0072B2", linewidth=1.6)
    ax.scatter(c["cx"], c["cy"], marker="|", s=60, color="#0072B2")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("Proportion still B-cell aplastic")
    km = a.km
    med = "not reached" if km.median is None else f"{km.median:g} days"
    ax.set_title(f"Time to B-cell reconstitution (median {med})", fontsize=10)
    ax.grid(alpha=0.25, linewidth=0.5)
    t_max = float(km.table["time"].max())
    times = _risk_times(t_max)
    for x, n in zip(times, km.at_risk(times), strict=True):
        risk.text(x, 0.5, f"{n}", ha="center", va="center", fontsize=8)
    risk.set_ylim(0, 1)
    risk.set_yticks([0.5], ["At risk"], fontsize=8)
    risk.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        risk.spines[side].set_visible(False)
    risk.set_xticks(times)
    risk.set_xlim(-0.03 * t_max, t_max * 1.05 if t_max else 1)
    risk.set_xlabel("Days after infusion")
    s = a.settings
    ci = "not reached" if km.median_ci[1] is None else f"{km.median_ci[1]:g}"
    lo = "not reached" if km.median_ci[0] is None else f"{km.median_ci[0]:g}"
    caption = (
        f"Kaplan–Meier estimate among the {km.n:,} patients who cleared B cells "
        f"(< {s.clearance_threshold:g} cells/µL), {km.n_events:,} reconstitution events; event: "
        f"first value ≥ {s.reconstitution_threshold:g} cells/µL; patients still aplastic are "
        f"censored at their last B-cell sample (ticks). Band: pointwise {s.confidence:.0%} "
        f"confidence interval (log(−log) transform, Greenwood variance). Median {med} "
        f"({s.confidence:.0%} CI {lo} to {ci}). Below: number still at risk (neither "
        f"reconstituted nor censored) at each time."
    )
    return Plot(fig, caption)


def _letter(axes: Sequence[Any]) -> None:
    """Panel letters A, B, … at the top left of each panel (journal style)."""
    for i, ax in enumerate(axes):
        ax.text(
            -0.02,
            1.04,
            chr(ord("A") + i),
            transform=ax.transAxes,
            fontsize=10,
            fontweight="bold",
            ha="right",
            va="bottom",
        )


def plot_patient(course: Course, cohort: CohortAnalysis | None = None) -> Plot:
    """One patient's CAR T cells, B cells, autoantibodies (when measured) and disease scores
    (one panel per instrument, each on its own scale)."""
    if not isinstance(course, Course):
        raise InvalidInput("course", course, "a Course")
    a = cohort if isinstance(cohort, CohortAnalysis) else _as_analysis([course])
    if course.study_id not in a.patients.index:
        raise InvalidInput("course", course.study_id, "a course of the analysed cohort")
    labs = a.labs[a.labs["study_id"] == course.study_id]
    sc = a.scores[a.scores["study_id"] == course.study_id]
    colour = DIAGNOSIS_COLOURS.get(course.patient.diagnosis, "#333333")
    titres = [x for x in TITRE_ANALYTES if (labs["analyte"] == x).any()]
    instruments = [i for i in SCORE_INSTRUMENTS if (sc["instrument"] == i).any()]
    panels: list[tuple[str, str]] = [("car_t_flow", "lab"), ("cd19_b_cells", "lab")]
    panels += [("titres", "titres")] if titres else []
    panels += [(inst, "score") for inst in instruments]
    ncols = 2 if len(panels) <= 4 else 3
    nrows = -(-len(panels) // ncols)
    fig, axes = _figure(ncols, nrows, width=7.0, height=1.7 * nrows + 0.2)
    used = axes[: len(panels)]
    for ax, (key, kind) in zip(used, panels, strict=True):
        if kind == "lab":
            sub = labs[(labs["analyte"] == key) & ~labs["below_lloq"]]
            if key == "car_t_flow":
                sub = sub[sub["value"] > 0]
                ylabel, title = "cells/µL (log)", "CAR T cells (flow cytometry)"
            else:
                ylabel, title = "cells/µL (symlog)", "CD19⁺ B cells"
            ax.plot(sub["day"], sub["value"], marker="o", markersize=3, color=colour)
            if len(sub):
                if key == "car_t_flow":
                    ax.set_yscale("log")
                else:
                    ax.set_yscale("symlog", linthresh=1.0)
            else:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        elif kind == "titres":
            units = set()
            for analyte in titres:
                sub = labs[labs["analyte"] == analyte]
                ax.plot(sub["day"], sub["value"], marker="o", markersize=3, label=label(analyte))
                units.add(ANALYTE_UNITS.get(analyte, ""))
            ax.set_yscale("log")
            ax.legend(fontsize=7, frameon=False)
            ylabel = " / ".join(sorted(u for u in units if u)) + " (log)"
            title = "Autoantibodies"
        else:
            g = sc[sc["instrument"] == key]
            ax.plot(g["day"], g["score"], marker="o", markersize=3, color=colour)
            lo, hi, _ = vocab.INSTRUMENTS[key]
            ax.set_ylim(lo, hi + (hi - lo) * 0.04)
            ylabel, title = "points", SCORE_INSTRUMENTS[key]
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    for ax in used:
        ax.axvline(0, color="#999999", linewidth=0.8, linestyle=":")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("Days after infusion", fontsize=8)
        ax.grid(alpha=0.25, linewidth=0.5)
    _letter(used)
    letters = [chr(ord("A") + i) for i in range(len(panels))]
    parts = [f"{letters[0]}, CAR T cells by flow cytometry (cells/µL, log scale)"]
    parts.append(f"{letters[1]}, CD19⁺ B cells (cells/µL, symmetric-log scale: linear below 1)")
    k = 2
    if titres:
        parts.append(f"{letters[k]}, autoantibodies in their assays' units (log scale)")
        k += 1
    for inst in instruments:
        lo, hi, _ = vocab.INSTRUMENTS[inst]
        name = SCORE_INSTRUMENTS[inst].split(" (")[0]
        parts.append(f"{letters[k]}, {name} (points, {lo:g}–{hi:g})")
        k += 1
    caption = (
        f"Patient {course.study_id}, study days from infusion (day 0, dotted line). "
        + "; ".join(parts)
        + ". Values below the assay's LLOQ are not drawn."
    )
    return Plot(fig, caption)


# ------------------------------------------------------------------------------ plotly
def _plotly_json(fig: Any) -> dict[str, Any]:
    return json.loads(fig.to_json())


def _plotly_series(series: list[dict[str, Any]], *, ytitle: str, log: bool, title: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    seen: set[str] = set()
    for s in series:
        colour = DIAGNOSIS_COLOURS.get(s["diagnosis"], "#333333")
        x = np.asarray(s["x"], dtype=float).tolist()
        if s["kind"] == "band":
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=list(s["hi"]) + list(s["lo"])[::-1],
                    fill="toself",
                    fillcolor=colour,
                    opacity=0.2,
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=list(s["y"]),
                    mode="lines",
                    name=s["label"],
                    line={"color": colour, "width": 2},
                )
            )
        else:
            first = s["diagnosis"] not in seen
            seen.add(s["diagnosis"])
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=list(s["y"]),
                    mode="lines+markers",
                    name=s["label"],
                    legendgroup=s["diagnosis"],
                    showlegend=first,
                    legendgrouptitle_text=s["diagnosis"] if first else None,
                    line={"color": colour, "width": 1},
                    marker={"size": 4},
                )
            )
    fig.update_layout(
        title=title, xaxis_title="Days after infusion", yaxis_title=ytitle, template="plotly_white"
    )
    if log:
        fig.update_yaxes(type="log")
    return fig


def car_t_plotly(cohort: CohortAnalysis | Sequence[Course], *, assay: str = "flow") -> dict:
    """Plotly JSON of :func:`plot_car_t`."""
    a = _as_analysis(cohort)
    series, _ = _car_t_series(a, assay)
    fig = _plotly_series(series, ytitle=_ASSAYS[assay][1], log=True, title="CAR T cell kinetics")
    return _plotly_json(fig)


def bcells_plotly(cohort: CohortAnalysis | Sequence[Course]) -> dict:
    """Plotly JSON of :func:`plot_bcells` (log y with values below 0.1 cells/µL drawn at 0.1)."""
    a = _as_analysis(cohort)
    series = [
        {
            **s,
            **{
                k: np.maximum(np.asarray(s[k], dtype=float), 0.1)
                for k in ("y", "lo", "hi")
                if k in s
            },
        }
        for s in _bcell_series(a)
    ]
    fig = _plotly_series(series, ytitle="CD19+ B cells (cells/µL)", log=True, title="B cells")
    return _plotly_json(fig)


def autoantibodies_plotly(cohort: CohortAnalysis | Sequence[Course]) -> dict:
    """Plotly JSON of :func:`plot_autoantibodies`."""
    a = _as_analysis(cohort)
    fig = _plotly_series(_titre_series(a), ytitle="% of baseline", log=True, title="Autoantibodies")
    return _plotly_json(fig)


def disease_scores_plotly(cohort: CohortAnalysis | Sequence[Course]) -> dict[str, dict]:
    """Plotly JSON of :func:`plot_disease_scores`: one figure per instrument present."""
    a = _as_analysis(cohort)
    return {
        inst: _plotly_json(
            _plotly_series(
                series, ytitle=SCORE_INSTRUMENTS[inst], log=False, title=SCORE_INSTRUMENTS[inst]
            )
        )
        for inst, series in _score_series(a).items()
    }


def swimmer_plotly(cohort: CohortAnalysis | Sequence[Course]) -> dict:
    """Plotly JSON of :func:`plot_swimmer`."""
    import plotly.graph_objects as go

    a = _as_analysis(cohort)
    rows, note = _swimmer_rows(a)
    fig = go.Figure()
    ids = rows.index.tolist()
    fig.add_trace(
        go.Bar(
            y=ids,
            x=rows["months"].tolist(),
            orientation="h",
            name="follow-up",
            marker_color=[DIAGNOSIS_COLOURS.get(d, "#333") for d in rows["diagnosis"]],
            opacity=0.55,
            customdata=rows["diagnosis"].tolist(),
            hovertemplate="%{y}: %{x:.1f} months (%{customdata})",
        )
    )
    ep = a.episodes[a.episodes["study_id"].isin(ids)]
    for kind, colour, symbol in (("crs", "#C00000", "star"), ("icans", "#6A3D9A", "cross")):
        e = ep[ep["kind"] == kind]
        fig.add_trace(
            go.Scatter(
                y=e["study_id"].tolist(),
                x=(e["onset_day"] / DAYS_PER_MONTH).tolist(),
                mode="markers",
                name=kind.upper(),
                marker={"color": colour, "symbol": symbol, "size": 10},
            )
        )
    for col, name, symbol in (
        ("recon_months", "B-cell reconstitution", "triangle-up"),
        ("off_months", "off immunosuppressants", "diamond"),
    ):
        r = rows[rows[col].notna()]
        fig.add_trace(
            go.Scatter(
                y=r.index.tolist(),
                x=r[col].tolist(),
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 8},
            )
        )
    fig.update_layout(
        title="Follow-up per patient",
        xaxis_title="Months after infusion",
        template="plotly_white",
        barmode="overlay",
        yaxis={"autorange": "reversed"},
        annotations=[
            {"text": note, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0, "y": -0.15}
        ],
    )
    return _plotly_json(fig)


def km_plotly(cohort: CohortAnalysis | Sequence[Course]) -> dict:
    """Plotly JSON of :func:`plot_km`."""
    import plotly.graph_objects as go

    a = _as_analysis(cohort)
    c = _km_curve(a)
    fig = go.Figure()
    if c is not None:
        x = c["x"].tolist()
        fig.add_trace(
            go.Scatter(
                x=x,
                y=c["hi"].tolist(),
                line={"shape": "hv", "width": 0},
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=c["lo"].tolist(),
                line={"shape": "hv", "width": 0},
                fill="tonexty",
                fillcolor="rgba(0,114,178,0.2)",
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=c["y"].tolist(),
                name="Kaplan–Meier",
                line={"shape": "hv", "color": "#0072B2"},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=c["cx"].tolist(),
                y=c["cy"].tolist(),
                mode="markers",
                name="censored",
                marker={"symbol": "line-ns-open", "size": 10, "color": "#0072B2"},
            )
        )
    fig.update_layout(
        title="Time to B-cell reconstitution",
        xaxis_title="Days after infusion",
        yaxis_title="Still B-cell aplastic",
        yaxis_range=[0, 1.02],
        template="plotly_white",
    )
    return _plotly_json(fig)
