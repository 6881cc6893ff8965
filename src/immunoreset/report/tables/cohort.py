"""The cohort analysis (:func:`analyse_cohort`: all courses to long-format frames once), Table 1."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.course import Course
from immunoreset.errors import InvalidInput
from immunoreset.report.tables.frames import (
    _bcell_frames,
    _change_frames,
    _long_frames,
    _nca_frames,
    _sle_frame,
    _tis_frame,
    _toxicity_frames,
)
from immunoreset.report.tables.settings import (
    _LD_ABBREV,
    DAYS_PER_MONTH,
    DEFAULT_ANALYSIS,
    TITRE_ANALYTES,
    AnalysisSettings,
)
from immunoreset.report.tables.stats import _count, _frame, _row, _summary


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
