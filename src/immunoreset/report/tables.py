"""Cohort tables of a CD19 CAR T case series: Table 1, manufacturing, safety, efficacy, follow-up.

One pass, :func:`analyse_cohort`, turns a list of :class:`~immunoreset.course.Course` into
long-format frames (every lab value and disease score of every patient, built once) and runs the
cohort forms of the kinetics analyses on them (:func:`~immunoreset.kinetics.nca.compute_nca_cohort`,
:func:`~immunoreset.kinetics.bcells.aplasia_cohort`,
:func:`~immunoreset.kinetics.titres.percent_change_cohort`): one compiled pass over all patients,
no Python loop per sample. Per-patient loops remain only where they are cheap (toxicity from
daily grades, remission criteria, time off therapy).

Every table is a tidy :class:`pandas.DataFrame` with the columns of :data:`STAT_COLUMNS` (one
row per statistic) and a display form (:func:`display_table`: ``section``, ``characteristic``,
``value`` as a clinician writes them: ``n/N (%; 95 % CI)``, ``median (range)``).

Sources of the definitions used
-------------------------------
* CRS and ICANS grades: Lee DW, et al. ASTCT consensus grading. *Biol Blood Marrow Transplant*
  2019;25(4):625–638 (via :mod:`immunoreset.clinical.episodes`).
* ICAHT: Rejeski K, et al. *Blood* 2023;142(10):865–877; CTCAE v5.0 cytopenias.
* Exact binomial (Clopper–Pearson) confidence intervals: Clopper CJ, Pearson ES. *Biometrika*
  1934;26:404–413, via ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``.
* NCA: PKNCA conventions (Denney W, et al. *J Pharmacokinet Pharmacodyn* 2015;42(1):11–107).
* Kaplan–Meier: Kaplan EL, Meier P. *J Am Stat Assoc* 1958;53(282):457–481 (lifelines).
* DORIS 2021 remission: van Vollenhoven RF, et al. *Lupus Sci Med* 2021;8:e000538. LLDAS:
  Franklyn K, et al. *Ann Rheum Dis* 2016;75(9):1615–1621.
* Total Improvement Score: Rider LG, et al. *Arthritis Rheumatol* 2017;69(5):911–923.
* Case-series facts reported (the shape of these tables): Becilli, Metzler, Bracaglia et al.,
  *Nature Medicine* 2026 (abstract; project spec ``peer-data.md`` §1).

Project choices (UNCONFIRMED as standards; each one is an :class:`AnalysisSettings` field and
is printed in the report's methods): LLOQ used when a CAR T result carries none; months =
days / 30.4375; prednisone equivalents; the enzyme improvement formula of the TIS; which
assessment the remission criteria are evaluated on (the last SLEDAI-2K after infusion).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.clinical import ctcae
from immunoreset.clinical.settings import (
    DEFAULT_SETTINGS,
    ICAHT_DURATION_MODES,
    ToxicitySettings,
)
from immunoreset.course import Course
from immunoreset.errors import InvalidInput, check_choice, check_range
from immunoreset.kinetics.nca import BLQ_RULES

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_ANALYSIS",
    "PREDNISONE_EQUIVALENT",
    "STAT_COLUMNS",
    "TITRE_ANALYTES",
    "AnalysisSettings",
    "CohortAnalysis",
    "analyse_cohort",
    "clopper_pearson",
    "cohort_summary_rich",
    "cohort_tables",
    "display_table",
    "table_efficacy",
    "table_followup",
    "table_manufacturing",
    "table_one",
    "table_safety",
]

#: Mean days per month (365.25 / 12): months = days / 30.4375.
DAYS_PER_MONTH = 30.4375

#: Autoantibody analytes followed as % of baseline (:data:`immunoreset.vocab.ANALYTES`).
TITRE_ANALYTES: tuple[str, ...] = (
    "anti_dsdna",
    "anti_scl70",
    "anti_tif1g",
    "anti_mda5",
    "anti_jo1",
)

#: mg of prednisone per mg of the drug (conventional equivalence: prednisone 5 mg =
#: prednisolone 5 mg = methylprednisolone 4 mg = dexamethasone 0.75 mg = hydrocortisone 20 mg
#: = deflazacort 6 mg). A glucocorticoid not listed makes DORIS/LLDAS "not assessable".
PREDNISONE_EQUIVALENT: Mapping[str, float] = MappingProxyType(
    {
        "prednisone": 1.0,
        "prednisolone": 1.0,
        "methylprednisolone": 1.25,
        "dexamethasone": 5.0 / 0.75,
        "hydrocortisone": 0.25,
        "deflazacort": 5.0 / 6.0,
    }
)

#: Columns of every tidy table.
STAT_COLUMNS: tuple[str, ...] = (
    "section",
    "item",
    "level",
    "kind",
    "n",
    "total",
    "percent",
    "ci_low",
    "ci_high",
    "median",
    "min",
    "max",
    "unit",
    "note",
)

_ASSAY_ANALYTE = {"flow": "car_t_flow", "qpcr": "car_t_qpcr"}
_LD_ABBREV = {"fludarabine": "Flu", "cyclophosphamide": "Cy", "bendamustine": "Benda"}
# TIS core-set measure -> candidate instruments (first found is used), and direction.
_TIS_MEASURES: dict[str, tuple[tuple[str, ...], bool]] = {
    "physician_global": (("md_global",), False),
    "patient_global": (("patient_global",), False),
    "strength": (("cmas", "mmt8"), True),
    "function": (("chaq", "haq_di"), False),
    "extramuscular": (("extramuscular",), False),
}
_TIS_POPULATION = {"JDM": "jdm", "DM": "adult", "ASyS": "adult"}


# ------------------------------------------------------------------------------ settings
@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """Every threshold and choice of the cohort analysis (all printed in the report's methods).

    Attributes
    ----------
    clearance_threshold : float
        B cells cleared when strictly below this (cells/µL, > 0; default 1, issue 5).
    reconstitution_threshold : float
        B cells reconstituted at or above this (cells/µL; default 10, issue 5).
    blq_rule : str
        NCA below-LLOQ rule (:data:`immunoreset.kinetics.nca.BLQ_RULES`; PKNCA default).
    auc_end : float
        End of the AUC window (study day; default 28 → AUC0–28).
    default_lloq : Mapping[str, float]
        LLOQ used for a CAR T result that carries none, per assay (flow cells/µL, qPCR
        copies/µg). UNCONFIRMED values (no assay in the spec gives them): flow 0.1, qPCR 10.
    ctcae_version : str
        CTCAE version of the cytopenia grades (``"5.0"`` or ``"6.0"``).
    icaht_duration_mode : str
        Early-ICAHT counting, ``"cumulative"`` or ``"longest_joined"``.
    toxicity : ToxicitySettings
        The CRS/ICANS/ICAHT calculators' documented choices (CAPD age cut etc.).
    confidence : float
        Level of the exact binomial CIs (0.5–0.999; default 0.95).
    titre_months, score_months : tuple[int, ...]
        Months after infusion at which titres (default 1, 3, 6, 12) and disease scores
        (default 6, 12) are compared with baseline.
    ck_uln : float
        Upper limit of normal of creatine kinase (U/L) for the TIS enzyme measure (only the
        ``"excess_over_uln"`` method uses it).
    enzyme_method : str
        TIS enzyme improvement formula (UNCONFIRMED; see
        :data:`immunoreset.clinical.myositis_response.ENZYME_METHODS`).
    max_lines : int
        Cohorts larger than this are drawn as medians with 5–95 % bands, not one line each.
    max_swimmers : int
        At most this many patients in the swimmer plot.
    """

    clearance_threshold: float = 1.0
    reconstitution_threshold: float = 10.0
    blq_rule: str = "keep_first_last"
    auc_end: float = 28.0
    default_lloq: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"flow": 0.1, "qpcr": 10.0})
    )
    ctcae_version: str = "5.0"
    icaht_duration_mode: str = "cumulative"
    toxicity: ToxicitySettings = DEFAULT_SETTINGS
    confidence: float = 0.95
    titre_months: tuple[int, ...] = (1, 3, 6, 12)
    score_months: tuple[int, ...] = (6, 12)
    ck_uln: float = 200.0
    enzyme_method: str = "relative_to_baseline"
    max_lines: int = 60
    max_swimmers: int = 60

    def __post_init__(self) -> None:
        from immunoreset.clinical.myositis_response import ENZYME_METHODS

        check_range(
            "clearance_threshold", self.clearance_threshold, 0, 1000, "cells/uL", lo_open=True
        )
        check_range(
            "reconstitution_threshold",
            self.reconstitution_threshold,
            self.clearance_threshold,
            100_000,
            "cells/uL",
        )
        check_choice("blq_rule", self.blq_rule, BLQ_RULES)
        check_range("auc_end", self.auc_end, 1, 3650, "days")
        if not isinstance(self.default_lloq, Mapping) or set(self.default_lloq) != set(
            _ASSAY_ANALYTE
        ):
            raise InvalidInput("default_lloq", self.default_lloq, "an LLOQ for flow and qpcr")
        for assay, v in self.default_lloq.items():
            check_range(f"default_lloq.{assay}", v, 0, 1e6, lo_open=True)
        object.__setattr__(self, "default_lloq", MappingProxyType(dict(self.default_lloq)))
        check_choice("ctcae_version", self.ctcae_version, ctcae.CTCAE_VERSIONS)
        check_choice("icaht_duration_mode", self.icaht_duration_mode, ICAHT_DURATION_MODES)
        if not isinstance(self.toxicity, ToxicitySettings):
            raise InvalidInput("toxicity", self.toxicity, "a ToxicitySettings")
        check_range("confidence", self.confidence, 0.5, 0.999)
        for name in ("titre_months", "score_months"):
            months = getattr(self, name)
            if not isinstance(months, tuple) or not months:
                raise InvalidInput(name, months, "a non-empty tuple of whole months 1–240")
            for m in months:
                check_range(name, m, 1, 240, "months", integer=True)
        check_range("ck_uln", self.ck_uln, 0, 100_000, "U/L", lo_open=True)
        check_choice("enzyme_method", self.enzyme_method, ENZYME_METHODS)
        check_range("max_lines", self.max_lines, 1, 10_000, integer=True)
        check_range("max_swimmers", self.max_swimmers, 1, 500, integer=True)


#: The defaults of issue 5.
DEFAULT_ANALYSIS = AnalysisSettings()


# ------------------------------------------------------------------------------ analysis
@dataclass(frozen=True, slots=True)
class CohortAnalysis:
    """Everything the tables and figures need, computed once.

    Attributes
    ----------
    courses : tuple[Course, ...]
        Every course given (infused or not).
    settings : AnalysisSettings
    patients : pandas.DataFrame
        One row per course (index ``study_id``): site, sex, diagnosis, infused, age, disease
        duration, prior lines, weight, dose, lymphodepletion regimen, follow-up, time off therapy.
    labs : pandas.DataFrame
        Long format: ``study_id``, ``day``, ``analyte``, ``value``, ``lloq``, ``below_lloq``
        (infused courses only; study days).
    scores : pandas.DataFrame
        Long format: ``study_id``, ``day``, ``instrument``, ``score``.
    toxicity : pandas.DataFrame
        Per infused patient: maximum grades, first onset and days of CRS/ICANS, ICAHT grades,
        infections, tocilizumab/corticosteroid use.
    episodes : pandas.DataFrame
        One row per CRS/ICANS episode: ``study_id``, ``kind``, ``onset_day``, ``last_day``,
        ``max_grade``.
    bcells : pandas.DataFrame
        :func:`~immunoreset.kinetics.bcells.aplasia_cohort` result.
    km : KMResult | None
        Time from infusion to reconstitution among cleared patients.
    nca : Mapping[str, pandas.DataFrame]
        Assay -> :func:`~immunoreset.kinetics.nca.compute_nca_cohort` result.
    titres : Mapping[str, pandas.DataFrame]
        Analyte -> :func:`~immunoreset.kinetics.titres.percent_change_cohort` result.
    score_changes : Mapping[str, pandas.DataFrame]
        Instrument -> baseline and month values (same windows as titres).
    sle_response : pandas.DataFrame
        SLE patients: ``day``, ``doris``, ``lldas`` (True/False/NaN = not assessable), ``note``.
    tis : pandas.DataFrame
        Myositis patients: ``month``, ``score``, ``category`` (NaN/None = not assessable).
    """

    courses: tuple[Course, ...]
    settings: AnalysisSettings
    patients: pd.DataFrame
    labs: pd.DataFrame
    scores: pd.DataFrame
    toxicity: pd.DataFrame
    episodes: pd.DataFrame
    bcells: pd.DataFrame
    km: Any
    nca: Mapping[str, pd.DataFrame]
    titres: Mapping[str, pd.DataFrame]
    score_changes: Mapping[str, pd.DataFrame]
    sle_response: pd.DataFrame
    tis: pd.DataFrame

    @property
    def n(self) -> int:
        """Infused patients (the denominator of every table but Table 1's enrolment row)."""
        return int(self.patients["infused"].sum())

    @property
    def synthetic(self) -> bool:
        """True when any course is synthetic (the report then carries a banner)."""
        return bool(self.patients["synthetic"].any())


def _check_courses(courses: Any) -> tuple[Course, ...]:
    if isinstance(courses, str | bytes) or not isinstance(courses, Sequence):
        raise InvalidInput("courses", courses, "a list of Course objects")
    out = tuple(courses)
    if not out:
        raise InvalidInput("courses", [], "at least one Course")
    seen: set[str] = set()
    for co in out:
        if not isinstance(co, Course):
            raise InvalidInput("courses", co, "a list of Course objects")
        if co.study_id in seen:
            raise InvalidInput("courses", co.study_id, "each study ID once")
        seen.add(co.study_id)
    return out


def _regimen(co: Course) -> str:
    totals: dict[str, list[float]] = {}
    for ld in co.lymphodepletion:
        totals.setdefault(ld.drug, []).append(ld.dose_mg_m2)
    if not totals:
        return "none recorded"
    parts = [
        f"{_LD_ABBREV[d]} {sum(v):g} mg/m² ({len(v)} d)"
        for d, v in sorted(totals.items(), key=lambda kv: kv[0], reverse=True)
    ]
    return " + ".join(parts)


def _patients_frame(courses: tuple[Course, ...]) -> pd.DataFrame:
    from immunoreset.kinetics.titres import time_off_therapy

    rows = []
    for co in courses:
        p = co.patient
        d0 = co.day0
        last = co.last_contact
        row: dict[str, Any] = {
            "study_id": p.study_id,
            "site": p.site,
            "sex": p.sex,
            "diagnosis": p.diagnosis,
            "synthetic": p.synthetic,
            "prior_therapy_lines": p.prior_therapy_lines,
            "infused": d0 is not None,
            "age_years": np.nan,
            "disease_duration_years": np.nan,
            "weight_kg": np.nan,
            "dose_cells_per_kg": np.nan,
            "regimen": _regimen(co),
            "followup_days": np.nan,
            "followup_status": co.followup.status if co.followup else "unknown",
            "therapy_free": False,
            "off_from_day": np.nan,
            "time_off_days": np.nan,
            "therapy_note": "",
        }
        if d0 is not None:
            row["age_years"] = p.age_on(d0)
            row["disease_duration_years"] = (d0 - p.diagnosis_date).days / 365.25
            w = co.weight_on(d0)
            row["weight_kg"] = w.weight_kg if w else np.nan
            row["dose_cells_per_kg"] = co.infusions[0].dose_cells_per_kg
            if last is not None and last >= d0:
                fu = (last - d0).days
                row["followup_days"] = fu
                meds = [
                    (
                        (m.start - d0).days,
                        None if m.stop is None else (m.stop - d0).days,
                        m.drug_class,
                    )
                    for m in co.medications
                    if (m.start - d0).days <= fu
                ]
                tf = time_off_therapy(meds, last_day=fu)
                row["therapy_free"] = not tf.ongoing
                row["off_from_day"] = np.nan if tf.off_from_day is None else tf.off_from_day
                row["time_off_days"] = np.nan if tf.time_off_days is None else tf.time_off_days
                row["therapy_note"] = tf.reasons[0]
        rows.append(row)
    df = pd.DataFrame(rows).set_index("study_id")
    df["followup_months"] = df["followup_days"] / DAYS_PER_MONTH
    return df


def _column(records: list[Any], name: str, dtype: Any) -> np.ndarray:
    return np.fromiter(map(attrgetter(name), records), dtype, len(records))


def _long_frames(courses: Sequence[Course]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every lab value and score of every infused patient as columns (built once, no per-row
    tuples: attribute columns via ``np.fromiter``, study days by date ordinals)."""
    infused = [co for co in courses if co.day0 is not None]
    day0 = np.array([co.day0.toordinal() for co in infused], dtype=np.int64)  # type: ignore[union-attr]
    ids = np.array([co.study_id for co in infused], dtype=object)
    frames = []
    for attr, cols in (
        ("labs", ("analyte", "value", "lloq", "below_lloq")),
        ("disease_assessments", ("instrument", "score")),
    ):
        counts = np.array([len(getattr(co, attr)) for co in infused], dtype=np.int64)
        recs = [r for co in infused for r in getattr(co, attr)]
        ordinals = np.fromiter(
            map(dt.date.toordinal, map(attrgetter("date"), recs)), np.int64, len(recs)
        )
        data: dict[str, Any] = {
            "study_id": np.repeat(ids, counts),
            "day": (ordinals - np.repeat(day0, counts)).astype(float),
        }
        for col in cols:
            if col in ("analyte", "instrument"):
                data[col] = np.array(list(map(attrgetter(col), recs)), dtype=object)
            elif col == "lloq":
                data[col] = np.array(list(map(attrgetter(col), recs)), dtype=float)
            elif col == "below_lloq":
                data[col] = _column(recs, col, bool)
            else:
                data[col] = _column(recs, col, float)
        frames.append(pd.DataFrame(data))
    labs, scores = frames
    return labs, scores


def _toxicity_frames(
    courses: Sequence[Course], s: AnalysisSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from immunoreset.clinical.episodes import course_toxicity

    rows, eps = [], []
    for co in courses:
        if co.day0 is None:
            continue
        t = course_toxicity(
            co,
            duration_mode=s.icaht_duration_mode,
            ctcae_version=s.ctcae_version,
            settings=s.toxicity,
        )
        row: dict[str, Any] = {"study_id": co.study_id}
        for kind, episodes, top in (
            ("crs", t.crs_episodes, t.max_crs_grade),
            ("icans", t.icans_episodes, t.max_icans_grade),
        ):
            row[f"{kind}_grade"] = np.nan if top is None else top
            row[f"{kind}_onset_day"] = episodes[0].onset_day if episodes else np.nan
            row[f"{kind}_days"] = sum(e.duration_days for e in episodes) if episodes else np.nan
            row[f"{kind}_tocilizumab"] = any(e.tocilizumab for e in episodes)
            row[f"{kind}_corticosteroids"] = any(e.corticosteroids for e in episodes)
            eps.extend((co.study_id, kind, e.onset_day, e.last_day, e.max_grade) for e in episodes)
        for phase, res in (("early_icaht", t.early_icaht), ("late_icaht", t.late_icaht)):
            row[f"{phase}_grade"] = np.nan if res.grade is None else res.grade
        infections = [a.grade for a in co.adverse_events if a.category == "infection"]
        row["infection_grade"] = max(infections) if infections else 0
        row["febrile_neutropenia"] = bool(t.febrile_neutropenia_days)
        rows.append(row)
    cols = ["study_id", "kind", "onset_day", "last_day", "max_grade"]
    tox = pd.DataFrame(rows)
    if tox.empty:
        tox = pd.DataFrame(columns=["study_id"])
    return tox.set_index("study_id"), pd.DataFrame(eps, columns=cols)


def _series(labs: pd.DataFrame, analyte: str) -> pd.DataFrame:
    return labs[labs["analyte"] == analyte]


def _nca_frames(labs: pd.DataFrame, s: AnalysisSettings) -> dict[str, pd.DataFrame]:
    from immunoreset.kinetics.nca import compute_nca_cohort

    out = {}
    for assay, analyte in _ASSAY_ANALYTE.items():
        sub = _series(labs, analyte)
        if sub.empty:
            continue
        lloq = sub["lloq"].fillna(s.default_lloq[assay]).to_numpy()
        lloq = np.where(lloq > 0, lloq, s.default_lloq[assay])
        # a result reported "< LLOQ" holds the LLOQ itself: it enters the NCA as BLQ
        values = np.where(sub["below_lloq"].to_numpy(), 0.0, sub["value"].to_numpy())
        out[assay] = compute_nca_cohort(
            sub["study_id"].to_numpy(),
            sub["day"].to_numpy(),
            values,
            lloq,
            end=s.auc_end,
            assay=assay,
            blq_rule=s.blq_rule,
            aggregate="min",
        )
    return out


def _bcell_frames(labs: pd.DataFrame, s: AnalysisSettings) -> tuple[pd.DataFrame, Any]:
    from immunoreset.kinetics.bcells import aplasia_cohort
    from immunoreset.kinetics.survival import km_reconstitution

    sub = _series(labs, "cd19_b_cells")
    cols = [
        "cleared",
        "clearance_day",
        "reconstitution_day",
        "aplasia_days",
        "censored",
        "last_day",
    ]
    if sub.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="patient_id")), None
    b = aplasia_cohort(
        sub["study_id"].to_numpy(),
        sub["day"].to_numpy(),
        sub["value"].to_numpy(),
        clearance_threshold=s.clearance_threshold,
        threshold=s.reconstitution_threshold,
        aggregate="min",
    )
    cleared = b[b["cleared"]]
    km = None
    if len(cleared):
        durations = np.where(
            cleared["censored"], cleared["last_day"], cleared["reconstitution_day"]
        )
        km = km_reconstitution(durations, ~cleared["censored"].to_numpy(), alpha=1 - s.confidence)
    return b, km


def _change_frames(
    long: pd.DataFrame, key: str, names: Sequence[str], value: str, months: tuple[int, ...]
) -> dict[str, pd.DataFrame]:
    from immunoreset.kinetics.titres import percent_change_cohort

    out = {}
    for name in names:
        sub = long[long[key] == name]
        if sub.empty:
            continue
        out[name] = percent_change_cohort(
            sub["study_id"].to_numpy(),
            sub["day"].to_numpy(),
            sub[value].to_numpy(),
            at_months=months,
            aggregate="mean" if key == "instrument" else "min",
        )
    return out


def _prednisone_mg_day(co: Course, when: Any) -> float | None:
    total = 0.0
    for m in co.medications:
        if m.drug_class != "glucocorticoid" or m.start > when:
            continue
        if m.stop is not None and m.stop < when:
            continue
        factor = PREDNISONE_EQUIVALENT.get(m.drug.lower())
        if factor is None:
            return None
        if m.dose_unit == "mg/day":
            total += m.dose * factor
        elif m.dose_unit == "mg/kg/day":
            w = co.weight_on(when)
            if w is None:
                return None
            total += m.dose * w.weight_kg * factor
        else:
            return None  # pulses and weekly doses are not a daily dose
    return total


def _sle_frame(courses: Sequence[Course]) -> pd.DataFrame:
    from immunoreset.clinical import lupus_remission as lr
    from immunoreset.clinical.sledai import score_clinical_sledai

    rows = []
    for co in courses:
        if co.day0 is None or co.patient.diagnosis != "SLE":
            continue
        sled = [a for a in co.disease_assessments if a.instrument == "sledai2k"]
        after = [a for a in sled if a.date > co.day0]
        row: dict[str, Any] = {
            "study_id": co.study_id,
            "day": np.nan,
            "doris": np.nan,
            "lldas": np.nan,
            "note": "",
        }
        if not after:
            row["note"] = "no SLEDAI-2K after infusion"
            rows.append(row)
            continue
        last = after[-1]
        prev = sled[sled.index(last) - 1] if sled.index(last) > 0 else None
        row["day"] = co.study_day(last.date)
        pgas = [a for a in co.disease_assessments if a.instrument == "sle_pga"]
        pga = min(pgas, key=lambda a: abs((a.date - last.date).days), default=None)
        pred = _prednisone_mg_day(co, last.date)
        words = tuple(k for k, v in last.items.items() if v > 0)
        try:
            clinical = score_clinical_sledai(words) if words or last.score == 0 else None
            major = bool(lr.major_organ_descriptors(words))
            new = prev is not None and bool(
                set(words) - {k for k, v in prev.items.items() if v > 0}
            )
        except InvalidInput:
            clinical = None
        missing = [
            what
            for what, v in (
                ("SLEDAI-2K items", clinical),
                (
                    "PGA within 30 days",
                    pga if pga and abs((pga.date - last.date).days) <= 30 else None,
                ),
                ("a daily prednisone-equivalent dose", pred),
            )
            if v is None
        ]
        if missing:
            row["note"] = "not assessable: no " + ", ".join(missing)
        else:
            assert pga is not None and pred is not None and clinical is not None
            row["doris"] = lr.is_doris_remission(
                clinical_sledai=clinical, physician_global=pga.score, prednisone_mg_day=pred
            )
            row["lldas"] = lr.is_lldas(
                sledai2k=round(last.score),
                major_organ_activity=major,
                new_activity=new,
                physician_global=pga.score,
                prednisone_mg_day=pred,
            )
        rows.append(row)
    cols = ["study_id", "day", "doris", "lldas", "note"]
    return pd.DataFrame(rows, columns=cols).set_index("study_id")


def _tis_frame(
    patients: pd.DataFrame,
    changes: Mapping[str, pd.DataFrame],
    ck: pd.DataFrame | None,
    s: AnalysisSettings,
) -> pd.DataFrame:
    from immunoreset import vocab
    from immunoreset.clinical.myositis_response import (
        enzyme_improvement,
        percent_improvement,
        score_tis,
    )

    rows = []
    myositis = patients[patients["infused"] & patients["diagnosis"].isin(list(_TIS_POPULATION))]
    for sid, diag in myositis["diagnosis"].items():
        for m in s.score_months:
            parts: dict[str, float] = {}
            for measure, (instruments, higher) in _TIS_MEASURES.items():
                for inst in instruments:
                    df = changes.get(inst)
                    if df is None or sid not in df.index:
                        continue
                    b, f = df.at[sid, "baseline_value"], df.at[sid, f"value_m{m}"]
                    if np.isfinite(b) and np.isfinite(f):
                        lo, hi, _ = vocab.INSTRUMENTS[inst]
                        parts[measure] = percent_improvement(
                            baseline=float(b),
                            followup=float(f),
                            minimum=lo,
                            maximum=hi,
                            higher_is_better=higher,
                        )
                        break
            if ck is not None and sid in ck.index:
                b, f = ck.at[sid, "baseline_value"], ck.at[sid, f"value_m{m}"]
                if np.isfinite(b) and np.isfinite(f):
                    parts["enzyme"] = enzyme_improvement(
                        baseline=float(b), followup=float(f), uln=s.ck_uln, method=s.enzyme_method
                    )
            need = (*_TIS_MEASURES, "enzyme")
            if all(k in parts for k in need):
                r = score_tis(population=_TIS_POPULATION[diag], **parts)
                rows.append((sid, m, r.score, r.category, ""))
            else:
                missing = ", ".join(k for k in need if k not in parts)
                rows.append((sid, m, np.nan, None, f"not assessable: no {missing}"))
    return pd.DataFrame(rows, columns=["study_id", "month", "score", "category", "note"])


def analyse_cohort(
    courses: Sequence[Course],
    *,
    settings: AnalysisSettings = DEFAULT_ANALYSIS,
    progress: Callable[[str], None] | None = None,
) -> CohortAnalysis:
    """Run every analysis of the case series once over ``courses``.

    Parameters
    ----------
    courses : sequence of Course
        At least one course; study IDs unique. Courses without an infusion count in Table 1's
        enrolment only.
    settings : AnalysisSettings
        Thresholds and choices (defaults of issue 5).
    progress : callable, optional
        Called with the name of each step as it starts (for a progress display).

    Returns
    -------
    CohortAnalysis

    Raises
    ------
    InvalidInput
        ``courses`` empty, not Course objects, or with a study ID twice; bad ``settings``.
    """
    items = _check_courses(courses)
    if not isinstance(settings, AnalysisSettings):
        raise InvalidInput("settings", settings, "an AnalysisSettings")
    say = progress or (lambda _step: None)
    say("patients")
    patients = _patients_frame(items)
    say("long-format data")
    labs, scores = _long_frames(items)
    say("toxicity")
    toxicity, episodes = _toxicity_frames(items, settings)
    say("kinetics")
    nca = _nca_frames(labs, settings)
    bcells, km = _bcell_frames(labs, settings)
    say("titres and scores")
    titres = _change_frames(labs, "analyte", TITRE_ANALYTES, "value", settings.titre_months)
    from immunoreset import vocab

    months = tuple(sorted(set(settings.score_months)))
    changes = _change_frames(scores, "instrument", tuple(vocab.INSTRUMENTS), "score", months)
    ck = _change_frames(labs, "analyte", ("ck",), "value", months).get("ck")
    say("responses")
    sle = _sle_frame(items)
    tis = _tis_frame(patients, changes, ck, settings)
    return CohortAnalysis(
        courses=items,
        settings=settings,
        patients=patients,
        labs=labs,
        scores=scores,
        toxicity=toxicity,
        episodes=episodes,
        bcells=bcells,
        km=km,
        nca=MappingProxyType(nca),
        titres=MappingProxyType(titres),
        score_changes=MappingProxyType(changes),
        sle_response=sle,
        tis=tis,
    )


def _as_analysis(cohort: Any) -> CohortAnalysis:
    if isinstance(cohort, CohortAnalysis):
        return cohort
    return analyse_cohort(_check_courses(cohort))


# ------------------------------------------------------------------------------ statistics
def clopper_pearson(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) confidence interval of a proportion ``k/n``.

    Parameters
    ----------
    k : int
        Events, 0 ≤ k ≤ n.
    n : int
        Patients, ≥ 1.
    confidence : float
        Two-sided level, 0.5–0.999 (default 0.95).

    Returns
    -------
    tuple of float
        (lower, upper), proportions 0–1.

    Examples
    --------
    >>> [round(x, 4) for x in clopper_pearson(6, 8)]
    [0.3491, 0.9681]
    >>> clopper_pearson(0, 8)[0]
    0.0
    """
    from scipy.stats import binomtest

    nn = check_range("n", n, 1, None, integer=True)
    kk = check_range("k", k, 0, nn, integer=True)
    conf = check_range("confidence", confidence, 0.5, 0.999)
    ci = binomtest(kk, nn).proportion_ci(confidence_level=conf, method="exact")
    return float(ci.low), float(ci.high)


def _row(section: str, item: str, level: str = "", **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(STAT_COLUMNS, np.nan)
    row.update(section=section, item=item, level=level, kind="text", unit="", note="")
    row.update(kw)
    return row


def _count(
    section: str,
    item: str,
    level: str,
    k: int,
    n: int,
    *,
    ci: bool = False,
    confidence: float = 0.95,
    note: str = "",
) -> dict[str, Any]:
    lo = hi = np.nan
    if ci and n > 0:
        lo, hi = clopper_pearson(int(k), int(n), confidence=confidence)
    return _row(
        section,
        item,
        level,
        kind="count_ci" if ci else "count",
        n=int(k),
        total=int(n),
        percent=100.0 * k / n if n else np.nan,
        ci_low=lo,
        ci_high=hi,
        note=note,
    )


def _summary(
    section: str, item: str, values: Any, unit: str = "", level: str = "", note: str = ""
) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return _row(section, item, level, kind="median", n=0, unit=unit, note=note or "no data")
    return _row(
        section,
        item,
        level,
        kind="median",
        n=int(v.size),
        median=float(np.median(v)),
        min=float(v.min()),
        max=float(v.max()),
        unit=unit,
        note=note,
    )


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(STAT_COLUMNS))


# ------------------------------------------------------------------------------ tables
def table_one(cohort: CohortAnalysis | Sequence[Course]) -> pd.DataFrame:
    """Table 1: patients, sex, age at infusion, diagnoses, sites, prior lines, disease duration.

    Parameters
    ----------
    cohort : CohortAnalysis or sequence of Course

    Returns
    -------
    pandas.DataFrame
        Tidy rows (:data:`STAT_COLUMNS`); denominators are infused patients.
    """
    a = _as_analysis(cohort)
    p = a.patients
    inf = p[p["infused"]]
    n = len(inf)
    sec = "Patients"
    rows = [_row(sec, "Patients infused", kind="n", n=n, total=len(p))]
    if len(p) > n:
        rows.append(_row(sec, "Enrolled, not (yet) infused", kind="n", n=len(p) - n))
    for level, k in inf["sex"].value_counts().sort_index().items():
        rows.append(_count(sec, "Sex", str(level), int(k), n))
    rows.append(_summary(sec, "Age at infusion", inf["age_years"], "years"))
    for level, k in inf["diagnosis"].value_counts().items():
        rows.append(_count(sec, "Diagnosis", str(level), int(k), n))
    for level, k in inf["site"].value_counts().items():
        rows.append(_count(sec, "Site", str(level), int(k), n))
    rows.append(_summary(sec, "Prior therapy lines", inf["prior_therapy_lines"], "lines"))
    rows.append(_summary(sec, "Disease duration", inf["disease_duration_years"], "years"))
    return _frame(rows)


def table_manufacturing(cohort: CohortAnalysis | Sequence[Course]) -> pd.DataFrame:
    """Manufacturing and dosing: success rate (exact CI), bags per batch, vein-to-vein time,
    dose per kg, lymphodepletion regimens (from :mod:`immunoreset.manufacturing.metrics`).
    """
    from immunoreset.manufacturing.metrics import (
        bags_per_batch,
        manufacturing_success,
        vein_to_vein,
    )

    a = _as_analysis(cohort)
    sec = "Manufacturing and dosing"
    conf = a.settings.confidence
    batches = [b for co in a.courses for b in co.batches]
    bags = [g for co in a.courses for g in co.bags]
    rows = []
    ok = manufacturing_success(batches, confidence=conf)
    if ok.attempts:
        rows.append(
            _count(
                sec,
                "Manufacturing success",
                "released batches",
                ok.successes,
                ok.attempts,
                ci=True,
                confidence=conf,
                note=ok.reasons[0],
            )
        )
    else:
        rows.append(_row(sec, "Manufacturing success", note="no completed batch"))
    bpb = bags_per_batch(batches, bags)
    rows.append(
        _row(
            sec,
            "Bags per released batch",
            kind="median",
            n=bpb.n_batches,
            median=bpb.median if bpb.median is not None else np.nan,
            min=np.nan if bpb.min is None else bpb.min,
            max=np.nan if bpb.max is None else bpb.max,
            unit="bags",
        )
    )
    infused = [co for co in a.courses if co.day0 is not None]
    v2v = vein_to_vein(infused) if infused else None
    days = v2v.table["days"].to_numpy(dtype=float) if v2v is not None else []
    rows.append(_summary(sec, "Vein-to-vein time (apheresis to infusion)", days, "days"))
    inf = a.patients[a.patients["infused"]]
    rows.append(_summary(sec, "Dose", inf["dose_cells_per_kg"] / 1e6, "×10⁶ CAR+ T cells/kg"))
    rows.append(_summary(sec, "Weight at infusion", inf["weight_kg"], "kg"))
    for level, k in inf["regimen"].value_counts().items():
        rows.append(_count(sec, "Lymphodepletion", str(level), int(k), len(inf)))
    return _frame(rows)


_SAFETY_ITEMS: tuple[tuple[str, str, int], ...] = (
    ("crs_grade", "CRS (ASTCT)", 4),
    ("icans_grade", "ICANS (ASTCT)", 4),
    ("early_icaht_grade", "Early ICAHT (days 0–30)", 4),
    ("late_icaht_grade", "Late ICAHT (after day 30)", 4),
    ("infection_grade", "Infection (CTCAE)", 5),
)


def table_safety(cohort: CohortAnalysis | Sequence[Course]) -> pd.DataFrame:
    """Safety by maximum grade per patient: n/N (%) with exact 95 % CI; onset and duration.

    Each toxicity lists *any grade*, each grade 1 to its maximum that occurred, and grade ≥ 3;
    a patient whose grade could not be computed counts in the denominator as not having it and
    is listed in a "not assessable" row.
    """
    a = _as_analysis(cohort)
    t = a.toxicity
    n = len(t)
    conf = a.settings.confidence
    sec = "Safety"
    rows = []
    for col, label, top in _SAFETY_ITEMS:
        g = t[col].to_numpy(dtype=float) if n else np.empty(0)
        known = np.isfinite(g)
        rows.append(
            _count(sec, label, "any grade", int((g >= 1).sum()), n, ci=True, confidence=conf)
        )
        for grade in range(1, top + 1):
            k = int((g == grade).sum())
            if k or grade == 1:
                rows.append(_count(sec, label, f"grade {grade}", k, n, ci=True, confidence=conf))
        rows.append(
            _count(sec, label, "grade ≥ 3", int((g >= 3).sum()), n, ci=True, confidence=conf)
        )
        if (~known).any():
            rows.append(_count(sec, label, "not assessable", int((~known).sum()), n))
        kind = col.split("_grade")[0]
        if kind in ("crs", "icans"):
            rows.append(_summary(sec, label, t[f"{kind}_onset_day"], "days", "onset"))
            rows.append(_summary(sec, label, t[f"{kind}_days"], "days", "duration"))
            rows.append(_count(sec, label, "tocilizumab", int(t[f"{kind}_tocilizumab"].sum()), n))
            rows.append(
                _count(sec, label, "corticosteroids", int(t[f"{kind}_corticosteroids"].sum()), n)
            )
    if n:
        rows.append(
            _count(
                sec,
                "Febrile neutropenia",
                "any",
                int(t["febrile_neutropenia"].sum()),
                n,
                ci=True,
                confidence=conf,
            )
        )
    return _frame(rows)


def table_efficacy(cohort: CohortAnalysis | Sequence[Course]) -> pd.DataFrame:
    """Efficacy: B-cell clearance and reconstitution (KM), CAR T NCA by assay, autoantibody %
    change at months 1/3/6/12, disease scores baseline vs months 6/12, DORIS/LLDAS (SLE), TIS
    category (myositis), immunosuppressant-free.
    """
    a = _as_analysis(cohort)
    s = a.settings
    conf = s.confidence
    n = a.n
    rows = []
    sec = "B cells"
    b = a.bcells
    rows.append(
        _count(
            sec,
            f"Cleared (< {s.clearance_threshold:g} cells/µL)",
            "",
            int(b["cleared"].sum()),
            len(b),
            ci=True,
            confidence=conf,
        )
    )
    rows.append(_summary(sec, "Clearance day", b["clearance_day"], "days"))
    rec = b["reconstitution_day"]
    rows.append(
        _count(
            sec,
            f"Reconstituted (≥ {s.reconstitution_threshold:g} cells/µL)",
            "",
            int(np.isfinite(rec).sum()),
            int(b["cleared"].sum()),
        )
    )
    rows.append(_summary(sec, "Reconstitution day (observed)", rec, "days"))
    if a.km is not None:
        lo, hi = a.km.median_ci
        rows.append(
            _row(
                sec,
                "Reconstitution day, Kaplan–Meier median",
                kind="km",
                n=a.km.n,
                median=np.nan if a.km.median is None else a.km.median,
                ci_low=np.nan if lo is None else lo,
                ci_high=np.nan if hi is None else hi,
                unit="days",
                note=a.km.reasons[0],
            )
        )
    sec = "CAR T kinetics"
    for assay, df in a.nca.items():
        unit = df.attrs["unit"]
        label = {"flow": "flow cytometry", "qpcr": "qPCR"}[assay]
        rows.append(_summary(sec, f"Cmax ({label})", df["cmax"], unit))
        rows.append(_summary(sec, f"Tmax ({label})", df["tmax"], "days"))
        end = f"{s.auc_end:g}"
        rows.append(_summary(sec, f"AUC0–{end} ({label})", df["auc"], f"{unit}·day"))
        rows.append(
            _summary(sec, f"Persistence, last detectable ({label})", df["persistence_day"], "days")
        )
    sec = "Autoantibodies"
    for analyte, df in a.titres.items():
        for m in s.titre_months:
            rows.append(
                _summary(
                    sec, f"{analyte}: % change from baseline", df[f"pct_m{m}"], "%", f"month {m}"
                )
            )
    sec = "Disease activity"
    for inst, df in a.score_changes.items():
        rows.append(_summary(sec, inst, df["baseline_value"], "points", "baseline"))
        for m in s.score_months:
            rows.append(_summary(sec, inst, df[f"value_m{m}"], "points", f"month {m}"))
    sle = a.sle_response
    if len(sle):
        for col, label in (("doris", "DORIS 2021 remission"), ("lldas", "LLDAS")):
            known = sle[col].notna()
            k = int((sle[col][known] == True).sum())  # noqa: E712 - object column
            rows.append(
                _count(
                    sec,
                    f"SLE: {label} at last SLEDAI-2K",
                    "",
                    k,
                    int(known.sum()),
                    ci=True,
                    confidence=conf,
                    note=f"{int((~known).sum())} not assessable" if (~known).any() else "",
                )
            )
    tis = a.tis
    for m in s.score_months:
        sub = tis[tis["month"] == m]
        if sub.empty:
            continue
        known = sub["category"].notna()
        for cat in ("major", "moderate", "minimal", "none"):
            rows.append(
                _count(
                    sec,
                    f"Myositis: TIS at month {m}",
                    cat,
                    int((sub["category"] == cat).sum()),
                    int(known.sum()),
                )
            )
        if (~known).any():
            rows.append(
                _row(
                    sec,
                    f"Myositis: TIS at month {m}",
                    "not assessable",
                    kind="n",
                    n=int((~known).sum()),
                )
            )
    sec = "Therapy"
    inf = a.patients[a.patients["infused"] & a.patients["followup_days"].notna()]
    rows.append(
        _count(
            sec,
            "Free of immunosuppressants and glucocorticoids at last contact",
            "",
            int(inf["therapy_free"].sum()),
            len(inf),
            ci=True,
            confidence=conf,
        )
    )
    rows.append(_summary(sec, "Time off therapy", inf["time_off_days"] / DAYS_PER_MONTH, "months"))
    del n
    return _frame(rows)


def table_followup(cohort: CohortAnalysis | Sequence[Course]) -> pd.DataFrame:
    """Follow-up from infusion to last contact in months (days / 30.4375): median (range)."""
    a = _as_analysis(cohort)
    inf = a.patients[a.patients["infused"]]
    sec = "Follow-up"
    rows = [_summary(sec, "Follow-up", inf["followup_months"], "months")]
    n = len(inf)
    for m in (6, 12, 24):
        k = int((inf["followup_days"] >= m * DAYS_PER_MONTH).sum())
        rows.append(_count(sec, "Followed for at least", f"{m} months", k, n))
    for level, k in inf["followup_status"].value_counts().items():
        rows.append(_count(sec, "Status at last contact", str(level), int(k), n))
    return _frame(rows)


#: Section name -> table function, in report order.
_TABLES: dict[str, Callable[[CohortAnalysis], pd.DataFrame]] = {
    "cohort": table_one,
    "manufacturing": table_manufacturing,
    "safety": table_safety,
    "efficacy": table_efficacy,
    "followup": table_followup,
}


def cohort_tables(cohort: CohortAnalysis | Sequence[Course]) -> dict[str, pd.DataFrame]:
    """Every table, keyed ``cohort``, ``manufacturing``, ``safety``, ``efficacy``, ``followup``."""
    a = _as_analysis(cohort)
    return {name: fn(a) for name, fn in _TABLES.items()}


# ------------------------------------------------------------------------------ display
def _decimals(*xs: float) -> int:
    finite = [abs(x) for x in xs if math.isfinite(x)]
    if not finite or all(float(x).is_integer() for x in finite):
        return 0
    top = max(finite)
    return 0 if top >= 100 else 1 if top >= 1 else 2


def _num(x: float, decimals: int | None = None) -> str:
    if not math.isfinite(x):
        return "—"
    d = _decimals(x) if decimals is None else decimals
    return f"{x:,.{d}f}"


_UNIT_TEXT = {"cells/uL": "cells/µL", "copies/ug": "copies/µg"}


def _unit(unit: str) -> str:
    for raw, text in _UNIT_TEXT.items():
        unit = unit.replace(raw, text)
    return f" {unit}" if unit else ""


def _fmt_count(r: Mapping[str, Any]) -> str:
    if not r["total"]:
        return f"{int(r['n'])}/0"
    text = f"{int(r['n'])}/{int(r['total'])} ({r['percent']:.1f} %"
    if np.isfinite(r["ci_low"]):
        text += f"; 95 % CI {100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f} %"
    return text + ")"


def _fmt_median(r: Mapping[str, Any]) -> str:
    if not r["n"]:
        return "—"
    unit = _unit(r["unit"])
    d = _decimals(r["median"], r["min"], r["max"])
    if r["n"] == 1:
        return f"{_num(r['median'], d)}{unit} (n = 1)"
    med, lo, hi = (_num(r[k], d) for k in ("median", "min", "max"))
    return f"{med} ({lo} to {hi}){unit}, n = {int(r['n'])}"


def _fmt_km(r: Mapping[str, Any]) -> str:
    med = "not reached" if not np.isfinite(r["median"]) else _num(r["median"])
    lo = _num(r["ci_low"]) if np.isfinite(r["ci_low"]) else "—"
    hi = _num(r["ci_high"]) if np.isfinite(r["ci_high"]) else "not reached"
    return f"{med} (95 % CI {lo} to {hi}){_unit(r['unit'])}, n = {int(r['n'])}"


_FORMATS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "count": _fmt_count,
    "count_ci": _fmt_count,
    "median": _fmt_median,
    "km": _fmt_km,
    "n": lambda r: f"{int(r['n'])}",
    "text": lambda r: r["note"] or "—",
}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The clinician's form of a tidy table: ``section``, ``characteristic``, ``value``.

    Counts read ``k/N (p %; 95 % CI lo–hi %)``, continuous values ``median (min–max) unit, n``,
    the Kaplan–Meier row ``median (95 % CI lo–hi)``.

    Examples
    --------
    >>> t = pd.DataFrame([_count("Safety", "CRS", "grade 1", 6, 8, ci=True)])
    >>> display_table(t)["value"].iloc[0]
    '6/8 (75.0 %; 95 % CI 34.9–96.8 %)'
    """
    if not isinstance(table, pd.DataFrame) or not set(STAT_COLUMNS) <= set(table.columns):
        raise InvalidInput("table", type(table).__name__, "a tidy table from report.tables")
    out = []
    for r in table.to_dict("records"):
        label = r["item"] + (f": {r['level']}" if r["level"] else "")
        if r["kind"] == "median" and not r["level"] and r["unit"] and r["n"] > 0:
            label += ", median (range)"
        out.append((r["section"], label, _FORMATS[r["kind"]](r)))
    return pd.DataFrame(out, columns=["section", "characteristic", "value"])


def cohort_summary_rich(cohort: CohortAnalysis | Sequence[Course]) -> list[Any]:
    """Rich tables of every section (for the CLI and the demo).

    Returns
    -------
    list of rich.table.Table
    """
    from rich.table import Table

    out = []
    for name, table in cohort_tables(cohort).items():
        shown = display_table(table)
        title = table["section"].iloc[0] if name != "efficacy" else "Efficacy"
        rt = Table(title=str(title), show_lines=False)
        rt.add_column("characteristic")
        rt.add_column("value")
        for r in shown.itertuples(index=False):
            rt.add_row(r.characteristic, r.value)
        out.append(rt)
    return out
