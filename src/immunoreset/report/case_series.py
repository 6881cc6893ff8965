"""The case-series report: one self-contained HTML file and the same as PDF (WeasyPrint).

:func:`build_report` loads the courses (from a registry, under the actor's site and role rules,
or from a list), runs :func:`~immunoreset.report.tables.analyse_cohort` once, draws the figures
(:mod:`~immunoreset.report.figures`, embedded as base64 PNG), renders the Jinja2 templates in
``report/templates`` with the stylesheet inlined (no network, no external file) and prints the
page to PDF with WeasyPrint. With ``patient="RM-003"`` it writes a one-page summary of that
patient instead.

The report shows study IDs and ages in years only: no names, no birth dates, no calendar dates
of care (all times are study days from the infusion). A report built from any synthetic course
carries a "SYNTHETIC DATA" banner on its title and on every PDF page.

Sections follow what a published case series reports (Becilli, Metzler, Bracaglia et al.,
*Nature Medicine* 2026, abstract; project spec ``peer-data.md`` §1–2): cohort, manufacturing and
dosing, safety, CAR T kinetics, B cells, autoantibodies and disease activity, follow-up, and a
methods section that states every definition and threshold used (:func:`methods_items`).
"""

from __future__ import annotations

import datetime as dt
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from immunoreset import __version__, vocab
from immunoreset.course import STUDY_ID_PATTERN, Course
from immunoreset.errors import InvalidInput, NotFound, check_choice
from immunoreset.report.labels import describe_setting, label
from immunoreset.report.tables import (
    DAYS_PER_MONTH,
    DEFAULT_ANALYSIS,
    PREDNISONE_EQUIVALENT,
    AnalysisSettings,
    CohortAnalysis,
    analyse_cohort,
    display_table,
    table_efficacy,
    table_followup,
    table_manufacturing,
    table_one,
    table_safety,
)

__all__ = [
    "SECTION_HEADINGS",
    "ReportPaths",
    "build_report",
    "data_cutoff",
    "methods_items",
    "settings_items",
    "sources",
]

#: Section id -> heading, in report order (the title comes first, methods last).
SECTION_HEADINGS: dict[str, str] = {
    "cohort": "Cohort",
    "patients": "Patients",
    "manufacturing": "Manufacturing and dosing",
    "safety": "Safety",
    "kinetics": "CAR T kinetics",
    "bcells": "B cells",
    "autoantibodies": "Autoantibodies and disease activity",
    "followup": "Follow-up",
    "methods": "Methods",
}


@dataclass(frozen=True)
class ReportPaths:
    """Where the report was written, and how long each step took.

    Attributes
    ----------
    html : Path
        The self-contained HTML file.
    pdf : Path | None
        The PDF (``None`` when ``pdf=False``).
    n_patients : int
        Courses in the report.
    timings : Mapping[str, float]
        Seconds per step: ``load``, ``analysis``, ``figures``, ``html``, ``pdf``.
    analysis : CohortAnalysis | None
        The analysis the report was built from (reused by callers that also print it).
    """

    html: Path
    pdf: Path | None
    n_patients: int
    timings: Any = field(default_factory=dict)
    analysis: Any = None


# ------------------------------------------------------------------------------ methods
def sources() -> tuple[str, ...]:
    """The references the report's definitions come from."""
    return (
        "Lee DW, et al. ASTCT consensus grading for cytokine release syndrome and neurologic "
        "toxicity associated with immune effector cells. Biol Blood Marrow Transplant "
        "2019;25(4):625–638.",
        "Rejeski K, et al. Immune effector cell-associated hematotoxicity (ICAHT): EHA/EBMT "
        "consensus grading. Blood 2023;142(10):865–877.",
        "National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE).",
        "Denney W, Duvvuri S, Buckeridge C. Simple, automatic noncompartmental analysis: the "
        "PKNCA R package. J Pharmacokinet Pharmacodyn 2015;42(1):11–107.",
        "Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat "
        "Assoc 1958;53(282):457–481.",
        "Brookmeyer R, Crowley J. A confidence interval for the median survival time. "
        "Biometrics 1982;38(1):29–41; median and its CI computed as R survival 3.5 "
        "(Therneau T) quantile.survfit.",
        "Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case "
        "of the binomial. Biometrika 1934;26:404–413.",
        "van Vollenhoven RF, et al. 2021 DORIS definition of remission in SLE. Lupus Sci Med "
        "2021;8:e000538.",
        "Franklyn K, et al. Definition and initial validation of a Lupus Low Disease Activity "
        "State (LLDAS). Ann Rheum Dis 2016;75(9):1615–1621.",
        "Rider LG, et al. 2016 ACR/EULAR criteria for minimal, moderate, and major clinical "
        "response in juvenile dermatomyositis. Arthritis Rheumatol 2017;69(5):911–923.",
        "Gladman DD, et al. Systemic lupus erythematosus disease activity index 2000. J Rheumatol "
        "2002;29(2):288–291.",
        "Becilli, Metzler, Bracaglia et al. Anti-CD19 CAR T cells for pediatric patients with "
        "treatment-refractory autoimmune diseases. Nature Medicine 2026 (the case series this "
        "report's layout follows).",
    )


def methods_items(settings: AnalysisSettings = DEFAULT_ANALYSIS) -> list[tuple[str, str]]:
    """Every definition and threshold the report uses, as (term, text) pairs.

    Examples
    --------
    >>> dict(methods_items())["Months"]
    'Months = days / 30.4375 (365.25 / 12).'
    """
    from immunoreset.kinetics.titres import DEFAULT_WINDOWS

    if not isinstance(settings, AnalysisSettings):
        raise InvalidInput("settings", settings, "an AnalysisSettings")
    s = settings
    tox = s.toxicity
    lloq = ", ".join(f"{k} {v:g}" for k, v in s.default_lloq.items())
    pred = ", ".join(f"{k} ×{v:.3g}" for k, v in PREDNISONE_EQUIVALENT.items())
    return [
        (
            "Study day",
            "Day 0 is the day of the (first) CAR T infusion; negative days are before it. "
            "No names or birth dates appear in this report and no calendar date but the data "
            "cut-off and the day it was generated; ages are in years at "
            "infusion (birth taken as the middle of the birth month).",
        ),
        ("Months", f"Months = days / {DAYS_PER_MONTH:g} (365.25 / 12)."),
        ("Follow-up", "From infusion to the last contact (or the last recorded observation)."),
        (
            "CRS",
            "ASTCT 2019 consensus grade (Lee et al.) computed daily from fever, hypotension, "
            "vasopressors and oxygen support; an episode is a run of consecutive days graded "
            "≥ 1; a patient's grade is the maximum over all episodes; onset is the first "
            "episode's first day and duration the total days graded ≥ 1.",
        ),
        (
            "ICANS",
            "ASTCT 2019 consensus grade from the ICE score from age "
            f"{tox.capd_age_cut:g} years and the CAPD score below it (a setting: "
            f"{describe_setting('capd_age_rule', tox.capd_age_rule)}), depressed consciousness, "
            "seizures, motor findings and "
            "cerebral oedema; episodes as for CRS.",
        ),
        (
            "ICAHT",
            f"EHA/EBMT consensus (Rejeski et al. 2023). Early (days 0–30): days with ANC "
            f"≤ 500 and ≤ 100/µL counted as "
            f"{describe_setting('icaht_duration_mode', s.icaht_duration_mode)}; gaps of at most "
            f"{tox.icaht_max_gap_days} days interpolated; late: day 31 to day "
            f"{tox.late_icaht_last_day}; "
            f"{describe_setting('late_icaht_single_value', tox.late_icaht_single_value)}.",
        ),
        (
            "Cytopenias and infections",
            f"CTCAE v{s.ctcae_version}; infections by the "
            "investigator-recorded CTCAE grade; each patient counted once at the maximum grade.",
        ),
        (
            "Proportions",
            f"n/N (%) with the exact (Clopper–Pearson) two-sided {s.confidence:.0%} "
            "confidence interval; percentages are whole numbers below 100 patients. "
            "Denominator: infused patients (or those assessable, stated in the row).",
        ),
        (
            "Continuous values",
            "Median (range), n: the median, minimum to maximum, and the number of patients "
            "with a value.",
        ),
        (
            "B-cell clearance",
            f"First day ≥ 0 with CD19⁺ B cells < {s.clearance_threshold:g} cells/µL.",
        ),
        (
            "B-cell reconstitution",
            f"First sample after clearance with CD19⁺ B cells ≥ "
            f"{s.reconstitution_threshold:g} cells/µL (absolute count; one sample suffices). "
            "Kaplan–Meier time from infusion among patients who cleared, censored at the last "
            f"B-cell sample; pointwise {s.confidence:.0%} CI by the log(−log) transform with "
            "Greenwood's variance. The median is the first day the estimate falls to 0.5 or "
            "below — on a plateau at exactly 0.5, the midpoint of the plateau — and its CI is "
            "read where the pointwise bounds cross 0.5 (Brookmeyer–Crowley); a bound that never "
            "crosses is 'not reached'. Same convention as R survival's quantile.survfit.",
        ),
        (
            "CAR T kinetics (NCA)",
            f"Per assay (flow cytometry, cells/µL; qPCR, copies/µg DNA), "
            f"samples from day 0: Cmax and Tmax (first day of Cmax), AUC0–{s.auc_end:g} by the "
            "linear-up/log-down trapezoid (PKNCA), never extrapolated (missing when the samples do "
            "not reach the window end); level 0 imputed at day 0; persistence = last day with a "
            f"quantifiable value. Below the LLOQ (a setting): "
            f"{describe_setting('blq_rule', s.blq_rule)}; results reported '< LLOQ' count as "
            "below it. LLOQ assumed when a result carries none — a setting, default "
            f"{lloq}, not confirmed by an assay specification. Same-day repeats: the lowest "
            "value.",
        ),
        (
            "Autoantibodies",
            "Percent change from baseline (the last value on or before day 0) at "
            f"months {', '.join(map(str, s.titre_months))}: the sample nearest to day "
            "round(30.4375·m) within ±"
            f"{DEFAULT_WINDOWS['month_1']:g} days (month 1) or ±{DEFAULT_WINDOWS['later']:g} days "
            "(later months).",
        ),
        (
            "Disease activity",
            "Scores (SLEDAI-2K, SLE PGA, CMAS, MMT8, mRSS, physician and patient "
            "global, CHAQ/HAQ-DI, extramuscular activity) at baseline and at months "
            f"{', '.join(map(str, s.score_months))} with the same windows as the titres.",
        ),
        (
            "DORIS and LLDAS (SLE)",
            "Evaluated at each SLE patient's last SLEDAI-2K after "
            "infusion, with the SLE PGA nearest to it (within 30 days) and the "
            "prednisone-equivalent daily dose that day. DORIS 2021: clinical SLEDAI = 0, "
            "PGA < 0.5, prednisone ≤ 5 mg/day; "
            "LLDAS: SLEDAI-2K ≤ 4 without major-organ activity or new activity since the previous "
            "SLEDAI-2K, PGA ≤ 1, prednisone ≤ 7.5 mg/day. Maintenance immunosuppression is assumed "
            f"stable. Prednisone equivalents (a project choice): {pred}.",
        ),
        (
            "Total Improvement Score (myositis)",
            "2016 ACR/EULAR TIS at months "
            f"{', '.join(map(str, s.score_months))} from absolute percent improvement of physician "
            "global, patient/parent global, CMAS (else MMT8), CHAQ (else HAQ-DI), creatine kinase "
            f"and extramuscular activity; JDM thresholds 30/45/70, adult 20/40/60. Muscle-enzyme "
            f"improvement — a setting, default "
            f"{describe_setting('enzyme_method', s.enzyme_method)} with an upper limit of normal "
            f"of {s.ck_uln:g} U/L, not confirmed by the source. Any measure missing: not "
            "assessable; a month not yet reached in follow-up: not yet reached.",
        ),
        (
            "Immunosuppressant-free",
            "No immunosuppressant or glucocorticoid running at the last "
            "contact; time off counted from the day after the last dose.",
        ),
        (
            "Figures",
            f"Cohorts over {s.max_lines} patients are drawn as medians with 5th–95th "
            f"percentile bands per diagnosis; the swimmer plot shows at most {s.max_swimmers} "
            "patients.",
        ),
    ]


def settings_items(settings: AnalysisSettings = DEFAULT_ANALYSIS) -> list[tuple[str, str]]:
    """Every setting the analysis ran with, as (name in words, value) pairs, defaults marked.

    Examples
    --------
    >>> dict(settings_items())["B-cell reconstitution threshold"]
    '10 cells/µL (default)'
    """
    from dataclasses import fields

    if not isinstance(settings, AnalysisSettings):
        raise InvalidInput("settings", settings, "an AnalysisSettings")
    default = AnalysisSettings()

    def mark(name: str, text: str, obj: Any = settings, ref: Any = default) -> str:
        return f"{text} (default)" if getattr(obj, name) == getattr(ref, name) else text

    s, tox = settings, settings.toxicity
    rows = [
        (
            "B-cell clearance threshold",
            mark("clearance_threshold", f"< {s.clearance_threshold:g} cells/µL"),
        ),
        (
            "B-cell reconstitution threshold",
            mark("reconstitution_threshold", f"{s.reconstitution_threshold:g} cells/µL"),
        ),
        ("Below-LLOQ rule (NCA)", mark("blq_rule", describe_setting("blq_rule", s.blq_rule))),
        ("AUC window", mark("auc_end", f"days 0–{s.auc_end:g}")),
        (
            "LLOQ when a CAR T result carries none",
            mark(
                "default_lloq",
                f"flow cytometry {s.default_lloq['flow']:g} cells/µL, "
                f"qPCR {s.default_lloq['qpcr']:g} copies/µg DNA",
            ),
        ),
        ("CTCAE version", mark("ctcae_version", s.ctcae_version)),
        (
            "Early-ICAHT duration",
            mark(
                "icaht_duration_mode",
                describe_setting("icaht_duration_mode", s.icaht_duration_mode),
            ),
        ),
        ("Confidence level", mark("confidence", f"{s.confidence:.0%}")),
        (
            "Titre time points",
            mark("titre_months", "months " + ", ".join(map(str, s.titre_months))),
        ),
        (
            "Disease-score time points",
            mark("score_months", "months " + ", ".join(map(str, s.score_months))),
        ),
        ("Creatine kinase upper limit of normal", mark("ck_uln", f"{s.ck_uln:g} U/L")),
        (
            "TIS muscle-enzyme improvement",
            mark("enzyme_method", describe_setting("enzyme_method", s.enzyme_method)),
        ),
        ("Lines per figure before bands", mark("max_lines", f"{s.max_lines} patients")),
        ("Patients in the swimmer plot", mark("max_swimmers", f"at most {s.max_swimmers}")),
    ]
    words = {
        "capd_age_rule": "Delirium score by age (ICANS)",
        "hypotension_under_1_year": "Hypotension under 1 year of age (CRS)",
        "icaht_max_gap_days": "Largest gap interpolated between ANC values (ICAHT)",
        "icaht_never_recovered": "Never-recovered ANC counts as grade 4 (ICAHT)",
        "late_icaht_single_value": "A single low value after day 30 (late ICAHT)",
        "late_icaht_last_day": "Last day of the late-ICAHT window",
        "hematotox_on_cutoff": "A value on a CAR-HEMATOTOX cut-off",
    }
    for f in fields(tox):
        value = getattr(tox, f.name)
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif f.name.endswith("_days") or f.name.endswith("_day"):
            text = f"day {value}" if f.name.endswith("_day") else f"{value} days"
        else:
            text = describe_setting(f.name, str(value))
        rows.append(
            (
                words.get(f.name, f.name.replace("_", " ").capitalize()),
                mark(f.name, text, tox, default.toxicity),
            )
        )
    return rows


def data_cutoff(courses: Sequence[Course]) -> dt.date | None:
    """The data cut-off: the latest last contact (or observation) of any course."""
    dates = [c.last_contact for c in courses if c.last_contact is not None]
    return max(dates) if dates else None


# ------------------------------------------------------------------------------ loading
def _load(
    source: Any,
    actor: Any,
    site: str | None,
    diagnosis: str | None,
    patient: str | None,
    progress: Callable[[int], None] | None,
) -> list[Course]:
    if hasattr(source, "iter_courses") and hasattr(source, "load_course"):
        if actor is None:
            from immunoreset.registry import system_actor

            actor = system_actor("report")
        if patient is not None:
            course = source.load_course(actor, patient)
            if progress:
                progress(1)
            return [course]
        return list(source.iter_courses(actor, site=site, diagnosis=diagnosis, progress=progress))
    if isinstance(source, str | bytes) or not isinstance(source, Sequence):
        raise InvalidInput(
            "registry_or_courses", type(source).__name__, "a Registry or a list of Course objects"
        )
    for co in source:
        if not isinstance(co, Course):
            raise InvalidInput("registry_or_courses", co, "a Registry or a list of Course objects")
    chosen = [
        co
        for co in source
        if (site is None or co.patient.site == site)
        and (diagnosis is None or co.patient.diagnosis == diagnosis)
        and (patient is None or co.study_id == patient)
    ]
    if patient is not None and not chosen:
        raise NotFound("patient", patient)
    if progress:
        progress(len(source))
    return chosen


def _check_args(out_dir: Any, site: Any, diagnosis: Any, patient: Any, pdf: Any) -> Path:
    if not isinstance(out_dir, str | Path) or not str(out_dir).strip():
        raise InvalidInput("out_dir", out_dir, "a folder path")
    if site is not None and (not isinstance(site, str) or not site.strip()):
        raise InvalidInput("site", site, "a site code")
    if diagnosis is not None:
        check_choice("diagnosis", diagnosis, vocab.DIAGNOSES)
    if patient is not None and (
        not isinstance(patient, str) or not STUDY_ID_PATTERN.match(patient)
    ):
        raise InvalidInput("patient", patient, "a study ID such as RM-003")
    if not isinstance(pdf, bool):
        raise InvalidInput("pdf", pdf, "true or false")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInput("out_dir", str(out_dir), "a folder (a file of that name exists)")
    return out


# ------------------------------------------------------------------------------ rendering
def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("immunoreset.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def _css() -> str:
    from importlib.resources import files

    return (files("immunoreset.report") / "templates" / "report.css").read_text(encoding="utf-8")


def _rows(table: pd.DataFrame, sections: Sequence[str] | None = None) -> list[dict[str, str]]:
    shown = display_table(table)
    if sections is not None:
        shown = shown[shown["section"].isin(list(sections))]
    return shown[["characteristic", "value"]].to_dict("records")


def _fig(plot: Any, title: str) -> dict[str, str]:
    return {
        "kind": "figure",
        "uri": plot.data_uri(),
        "caption": plot.caption,
        "title": title,
        "alt": title,
    }


_STATS_NOTE = (
    "Values are n/N (%; exact 95 % confidence interval) or median (range), n = patients "
    "with a value; units as stated in each row."
)


def _tbl(rows: list[dict[str, str]], title: str, caption: str = _STATS_NOTE) -> dict[str, Any]:
    return {"kind": "table", "rows": rows, "title": title, "caption": caption}


def _number(sections: list[dict[str, Any]]) -> None:
    """Number tables and figures in reading order (Table 1, Figure 1 …)."""
    counts = {"table": 0, "wide_table": 0, "figure": 0}
    for section in sections:
        for block in section["blocks"]:
            kind = block["kind"]
            if kind in ("table", "wide_table"):
                counts["table"] += 1
                block["number"] = f"Table {counts['table']}"
            elif kind == "figure":
                counts["figure"] += 1
                block["number"] = f"Figure {counts['figure']}"


def _add_release_testing(
    sections: list[dict[str, Any]],
    source: Any,
    actor: Any,
    site: str | None,
    diagnosis: str | None,
) -> None:
    """Add the program's release-testing record (QC distributions) to the manufacturing section.

    QC results live in the registry's GMP tables, not in courses, so this needs a registry; a
    report built from a list of courses says so instead. The QC table is for the whole visible
    program (it is not narrowed by site or diagnosis filters, which is stated).
    """
    block: dict[str, Any]
    if hasattr(source, "engine") and hasattr(source, "iter_courses"):
        from immunoreset.registry import system_actor
        from immunoreset.registry.gmp import Gmp

        metrics = Gmp(source).program_metrics(actor or system_actor("report"))
        rows = []
        for r in metrics.qc.itertuples(index=False):
            numeric = r.median == r.median  # NaN for categorical results
            value = (
                f"{r.median:.3g} ({r.min:.3g} to {r.max:.3g}) {r.unit}".strip()
                if numeric
                else "categorical"
            )
            rows.append(
                {
                    "characteristic": label(r.attribute),
                    "value": f"{value}; pass {r.n_pass}, fail {r.n_fail}, pending {r.n_pending}",
                }
            )
        note = (
            " (whole program, not narrowed by the site/diagnosis filter)"
            if (site or diagnosis)
            else ""
        )
        rows.append(
            {
                "characteristic": "Release decisions",
                "value": "; ".join(_humanise(x) for x in metrics.reasons),
            }
        )
        block = _tbl(
            rows,
            f"Release testing{note}",
            "Quality-control attributes of the manufactured batches: median (range) of "
            "numeric results with their unit, and the number of results passing, failing and "
            "pending against the release specification.",
        )
    else:
        block = {
            "kind": "text",
            "text": "Release-testing (QC) results are kept in the registry; this report was "
            "built from courses alone.",
        }
    for section in sections:
        if section["id"] == "manufacturing":
            section["blocks"].append(block)


def _humanise(text: str) -> str:
    """Registry keys inside a sentence, in words (``released_with_deviation 0``)."""
    import re

    return re.sub(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b", lambda m: label(m.group(0)), text)


def _safety_extras(a: CohortAnalysis) -> list[dict[str, Any]]:
    """Blocks that follow the safety table: the place for IgG/IVIG and infections by type
    (issue 12 adds those records; until then there is nothing more to show)."""
    del a
    return []


def _patients_block(a: CohortAnalysis) -> dict[str, Any]:
    from immunoreset.report.tables.patients import PATIENT_COLUMNS, table_patients

    df = table_patients(a)
    legend = "; ".join(f"{k}: {v}" for k, v in PATIENT_COLUMNS.items() if k != "Patient")
    return {
        "kind": "wide_table",
        "title": f"Characteristics, toxicity and outcome of each patient (n = {len(df)})",
        "columns": list(df.columns),
        "rows": df.values.tolist(),
        "caption": f"{legend}. n/a: not assessable; —: not measured.",
    }


def _cohort_sections(a: CohortAnalysis, timings: dict[str, float]) -> list[dict[str, Any]]:
    from immunoreset.report import figures as f

    t0 = time.perf_counter()
    eff = table_efficacy(a)
    tables = {
        "cohort": table_one(a),
        "manufacturing": table_manufacturing(a),
        "safety": table_safety(a),
        "followup": table_followup(a),
    }
    timings["tables"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    figs = {
        "car_t": [f.plot_car_t(a, assay=assay) for assay in a.nca],
        "bcells": f.plot_bcells(a),
        "km": f.plot_km(a),
        "titres": f.plot_autoantibodies(a),
        "scores": f.plot_disease_scores(a),
        "swimmer": f.plot_swimmer(a),
    }
    n = f"n = {a.n:,} infused patients"
    blocks: dict[str, list[dict[str, Any]]] = {
        "cohort": [_tbl(_rows(tables["cohort"]), f"Patient characteristics at infusion ({n})")],
        "patients": [_patients_block(a)],
        "manufacturing": [_tbl(_rows(tables["manufacturing"]), f"Manufacturing and dosing ({n})")],
        "safety": [
            _tbl(
                _rows(tables["safety"]),
                f"Adverse events of special interest, maximum grade per patient ({n})",
            ),
            *_safety_extras(a),
        ],
        "kinetics": [_tbl(_rows(eff, ["CAR T kinetics"]), f"CAR T-cell kinetics, NCA ({n})")]
        + [_fig(p, "CAR T cells in blood over study days") for p in figs["car_t"]],
        "bcells": [
            _tbl(_rows(eff, ["B cells"]), f"B-cell aplasia and reconstitution ({n})"),
            _fig(figs["bcells"], "CD19⁺ B cells in blood over study days"),
            _fig(figs["km"], "Time to B-cell reconstitution (Kaplan–Meier)"),
        ],
        "autoantibodies": [
            _tbl(_rows(eff, ["Autoantibodies"]), "Autoantibodies, % change from baseline"),
            _fig(figs["titres"], "Autoantibody titres as % of baseline"),
            _tbl(_rows(eff, ["Disease activity"]), "Disease activity and response"),
            _fig(figs["scores"], "Disease-activity scores over study days"),
            _tbl(_rows(eff, ["Therapy"]), f"Immunosuppressive therapy after infusion ({n})"),
        ],
        "followup": [
            _tbl(_rows(tables["followup"]), f"Follow-up ({n})"),
            _fig(figs["swimmer"], "Follow-up, events and therapy stop per patient"),
        ],
    }
    if not a.nca:
        blocks["kinetics"].append({"kind": "text", "text": "No CAR T measurements recorded."})
    for p in (figs["bcells"], figs["km"], figs["titres"], figs["scores"], figs["swimmer"]):
        p.figure.clear()
    timings["figures"] = time.perf_counter() - t0
    return [
        {"id": key, "heading": SECTION_HEADINGS[key], "blocks": blocks[key]}
        for key in SECTION_HEADINGS
        if key != "methods"
    ]


def _fmt(x: Any, unit: str = "", digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        text = f"{x:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:,.0f}"
    else:
        text = str(x)
    return f"{text} {unit}".strip()


def _patient_sections(a: CohortAnalysis, sid: str) -> list[dict[str, Any]]:
    p = a.patients.loc[sid]
    kv: dict[str, list[tuple[str, str]]] = {}
    kv["cohort"] = [
        ("Study ID", sid),
        ("Site", p["site"]),
        ("Sex", p["sex"]),
        (
            "Diagnosis",
            # the code as stored (M33.09), not the vocabulary's chapter (M33.0)
            f"{p['diagnosis']} — {vocab.DIAGNOSES[p['diagnosis']].split(' (')[0]}; "
            f"ICD-10 {p['icd10']}",
        ),
        ("Age at infusion", _fmt(p["age_years"], "years")),
        ("Disease duration", _fmt(p["disease_duration_years"], "years")),
        ("Prior therapy lines", _fmt(p["prior_therapy_lines"])),
    ]
    kv["manufacturing"] = [
        ("Dose", _fmt(p["dose_cells_per_kg"] / 1e6, "×10⁶ CAR+ T cells/kg", 2)),
        ("Weight at infusion", _fmt(p["weight_kg"], "kg")),
        ("Lymphodepletion", p["regimen"]),
    ]
    man = table_manufacturing(a)
    for item in ("Vein-to-vein time (apheresis to infusion)", "Bags per released batch"):
        r = man[man["item"] == item]
        if len(r) and r["n"].iloc[0]:
            kv["manufacturing"].append((item, _fmt(float(r["median"].iloc[0]), r["unit"].iloc[0])))
    tox = a.toxicity.loc[sid] if sid in a.toxicity.index else None
    kv["safety"] = []
    if tox is not None:
        for kind, name in (("crs", "CRS"), ("icans", "ICANS")):
            g = tox[f"{kind}_grade"]
            text = "not assessable" if g != g else f"grade {int(g)}"
            if g == g and g >= 1:
                text += (
                    f", onset day {int(tox[f'{kind}_onset_day'])}, {int(tox[f'{kind}_days'])} days"
                )
            kv["safety"].append((f"{name} (max, ASTCT)", text))
        for col, name in (
            ("early_icaht_grade", "Early ICAHT"),
            ("late_icaht_grade", "Late ICAHT"),
        ):
            g = tox[col]
            kv["safety"].append((name, "not assessable" if g != g else f"grade {int(g)}"))
        inf = int(tox["infection_grade"])
        kv["safety"].append(("Infection (max CTCAE grade)", f"grade {inf}" if inf else "none"))
    kv["kinetics"] = []
    for assay, df in a.nca.items():
        if sid in df.index:
            r = df.loc[sid]
            unit = df.attrs["unit"].replace("uL", "µL").replace("ug", "µg")
            kv["kinetics"] += [
                (f"Cmax ({assay})", f"{_fmt(r['cmax'], unit, 2)} on day {_fmt(r['tmax'], '', 0)}"),
                (f"AUC0–{a.settings.auc_end:g} ({assay})", _fmt(r["auc"], f"{unit}·day", 0)),
                (f"Last detectable ({assay})", f"day {_fmt(r['persistence_day'], '', 0)}"),
            ]
    kv["bcells"] = []
    if sid in a.bcells.index:
        b = a.bcells.loc[sid]
        kv["bcells"] = [
            ("Clearance day", _fmt(b["clearance_day"], "", 0)),
            (
                "Reconstitution day",
                _fmt(b["reconstitution_day"], "", 0)
                if b["reconstitution_day"] == b["reconstitution_day"]
                else f"still aplastic at day {_fmt(b['last_day'], '', 0)}",
            ),
        ]
    kv["autoantibodies"] = []
    followup = p["followup_days"]

    def at(month: int, value: float, unit: str = "", digits: int = 1) -> str:
        window = 14 if month == 1 else 30
        if (
            value != value
            and followup == followup
            and followup < round(DAYS_PER_MONTH * month) - window
        ):
            return f"M{month} not yet reached"
        return f"M{month} {_fmt(value, unit, digits)}"

    for analyte, df in a.titres.items():
        if sid in df.index:
            r = df.loc[sid]
            parts = [at(m, r[f"pct_m{m}"], "%", 0) for m in a.settings.titre_months]
            kv["autoantibodies"].append((f"{label(analyte)}, change", "; ".join(parts)))
    for inst, df in a.score_changes.items():
        if sid in df.index:
            r = df.loc[sid]
            parts = [f"baseline {_fmt(r['baseline_value'])}"] + [
                at(m, r[f"value_m{m}"]) for m in a.settings.score_months
            ]
            kv["autoantibodies"].append((label(inst), "; ".join(parts)))
    if sid in a.sle_response.index:
        r = a.sle_response.loc[sid]
        if r["note"]:
            kv["autoantibodies"].append(("DORIS / LLDAS", r["note"]))
        else:
            kv["autoantibodies"].append(
                (
                    f"DORIS / LLDAS (day {int(r['day'])})",
                    f"{_fmt(bool(r['doris']))} / {_fmt(bool(r['lldas']))}",
                )
            )
    for r in a.tis[a.tis["study_id"] == sid].itertuples():
        value = r.note if r.category is None else f"{r.score:g} ({r.category})"
        kv["autoantibodies"].append((f"TIS month {r.month}", value))
    kv["autoantibodies"].append(
        (
            "Off immunosuppressants",
            "yes, from day " + _fmt(p["off_from_day"], "", 0)
            if p["therapy_free"] and p["off_from_day"] == p["off_from_day"]
            else _fmt(bool(p["therapy_free"])),
        )
    )
    kv["followup"] = [
        ("Follow-up", _fmt(p["followup_months"], "months")),
        ("Status at last contact", str(p["followup_status"])),
    ]
    return [
        {
            "id": key,
            "heading": SECTION_HEADINGS[key],
            "rows": [{"characteristic": k, "value": v} for k, v in kv[key]],
        }
        for key in kv
    ]


def _write_pdf(html: str, path: Path, base: Path) -> None:
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    weasyprint.HTML(string=html, base_url=str(base)).write_pdf(str(path))


def build_report(
    registry_or_courses: Any,
    *,
    out_dir: str | Path,
    actor: Any = None,
    site: str | None = None,
    diagnosis: str | None = None,
    patient: str | None = None,
    pdf: bool = True,
    settings: AnalysisSettings = DEFAULT_ANALYSIS,
    progress: Callable[[int], None] | None = None,
) -> ReportPaths:
    """Write the case-series report (or one patient's summary) as HTML and PDF.

    Parameters
    ----------
    registry_or_courses : Registry or sequence of Course
        Where the courses come from. A registry is read under ``actor``'s site and role rules.
    out_dir : str or Path
        Folder to write into (created if missing).
    actor : Actor, optional
        The registry user; default the local system account (every site).
    site : str, optional
        Only this site's patients.
    diagnosis : str, optional
        Only this diagnosis (:data:`immunoreset.vocab.DIAGNOSES`).
    patient : str, optional
        A study ID (e.g. ``"RM-003"``): write that patient's one-page summary instead.
    pdf : bool
        Also write the PDF (WeasyPrint).
    settings : AnalysisSettings
        Thresholds and choices of the analysis (printed in the methods).
    progress : callable, optional
        Called with the number of courses loaded so far in each chunk.

    Returns
    -------
    ReportPaths
        ``case-series.html``/``.pdf`` or ``patient-<ID>.html``/``.pdf`` in ``out_dir``.

    Raises
    ------
    InvalidInput
        Bad arguments, or filters that leave no infused patient.
    NotFound
        ``patient`` does not exist (or the actor may not see it).
    """
    out = _check_args(out_dir, site, diagnosis, patient, pdf)
    if not isinstance(settings, AnalysisSettings):
        raise InvalidInput("settings", settings, "an AnalysisSettings")
    # Millions of small records are created and none is cyclic garbage: the cyclic collector
    # would re-scan them all, many times, for nothing (a third of the time at 10,000 patients).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(
            registry_or_courses, out, actor, site, diagnosis, patient, pdf, settings, progress
        )
    finally:
        if collecting:
            gc.enable()


def _build(
    registry_or_courses: Any,
    out: Path,
    actor: Any,
    site: str | None,
    diagnosis: str | None,
    patient: str | None,
    pdf: bool,
    settings: AnalysisSettings,
    progress: Callable[[int], None] | None,
) -> ReportPaths:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    courses = _load(registry_or_courses, actor, site, diagnosis, patient, progress)
    timings["load"] = time.perf_counter() - t0
    if not any(co.day0 is not None for co in courses):
        which = {"site": site, "diagnosis": diagnosis, "patient": patient}
        name = next((k for k, v in which.items() if v is not None), "registry_or_courses")
        raise InvalidInput(name, which.get(name), "a selection with an infused patient")
    t0 = time.perf_counter()
    a = analyse_cohort(courses, settings=settings)
    timings["analysis"] = time.perf_counter() - t0

    filters = [f"site {site}" if site else "", f"diagnosis {diagnosis}" if diagnosis else ""]
    scope = ", ".join(x for x in filters if x) or "all visible patients"
    today = dt.date.today().isoformat()
    cut = data_cutoff(courses)
    cutoff = cut.isoformat() if cut else "no observation recorded"
    env = _env()
    out.mkdir(parents=True, exist_ok=True)
    if patient is None:
        sections = _cohort_sections(a, timings)
        _add_release_testing(sections, registry_or_courses, actor, site, diagnosis)
        _number(sections)
        t0 = time.perf_counter()
        html = env.get_template("case_series.html").render(
            title="CD19 CAR T cell therapy in autoimmune disease: case series",
            subtitle=f"{a.n:,} infused patients ({scope}); data cut-off {cutoff}; report "
            f"generated {today} by immunoreset {__version__}.",
            settings_rows=[
                {"characteristic": k, "value": v}
                for k, v in [
                    ("Software", f"immunoreset {__version__}"),
                    ("Data cut-off", cutoff),
                    *settings_items(settings),
                ]
            ],
            synthetic=a.synthetic,
            css=_css(),
            sections=sections,
            method_items=methods_items(settings),
            sources=sources(),
            footer="Pseudonymous study IDs only; all times are study days from infusion. "
            "Generated by immunoreset.",
        )
        stem = "case-series"
    else:
        from immunoreset.report.figures import plot_patient

        t0 = time.perf_counter()
        fig = plot_patient(courses[0], a)
        figure = {"uri": fig.data_uri(dpi=100), "caption": fig.caption, "alt": "patient course"}
        fig.figure.clear()
        timings["figures"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        html = env.get_template("patient.html").render(
            title=f"Patient summary: {patient}",
            subtitle=f"One-page summary; data cut-off {cutoff}; report generated {today} by "
            f"immunoreset {__version__}.",
            synthetic=a.synthetic,
            css=_css(),
            sections=_patient_sections(a, patient),
            fig=figure,
            footer="Definitions as in the case-series report's methods: ASTCT 2019 CRS/ICANS, "
            f"EHA/EBMT ICAHT, CTCAE v{settings.ctcae_version}, B-cell clearance < "
            f"{settings.clearance_threshold:g} and reconstitution ≥ "
            f"{settings.reconstitution_threshold:g} cells/µL, NCA lin-up/log-down, "
            "months = days / 30.4375. Study IDs only.",
        )
        stem = f"patient-{patient}"
    html_path = out / f"{stem}.html"
    html_path.write_text(html, encoding="utf-8")
    timings["html"] = time.perf_counter() - t0
    pdf_path = None
    if pdf:
        t0 = time.perf_counter()
        pdf_path = out / f"{stem}.pdf"
        _write_pdf(html, pdf_path, out)
        timings["pdf"] = time.perf_counter() - t0
    return ReportPaths(html_path, pdf_path, len(courses), MappingProxyType(timings), a)
