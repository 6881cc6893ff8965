"""Safety table of the case series: CRS, ICANS, ICAHT, T-ICAHT, IEC-HS, infections, IgG/IVIG.

Sources: ASTCT 2019 (Lee), N-ICAHT (Rejeski 2023), T-ICAHT (Rejeski 2025), IEC-HS (Hines 2023,
provisional), infections by period with density per 100 patient-days at risk (Hill 2018
windows 0–28 / 29–90; :mod:`immunoreset.clinical.infections`), IgG below the age-specific LLN,
replacement trigger and IVIG use (:mod:`immunoreset.clinical.igg`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from immunoreset.clinical import course_safety
from immunoreset.clinical.infections import compute_infection_density
from immunoreset.course import Course
from immunoreset.report.tables.cohort import CohortAnalysis, _as_analysis
from immunoreset.report.tables.stats import _count, _frame, _row, _summary

_SAFETY_ITEMS: tuple[tuple[str, str, int], ...] = (
    ("crs_grade", "CRS (ASTCT)", 4),
    ("icans_grade", "ICANS (ASTCT)", 4),
    ("early_icaht_grade", "Early ICAHT (days 0–30)", 4),
    ("late_icaht_grade", "Late ICAHT (after day 30)", 4),
    ("early_ticaht_grade", "Early T-ICAHT (platelets, days 0–30)", 4),
    ("late_ticaht_grade", "Late T-ICAHT (platelets, days 31–100)", 4),
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
    rows += _iec_hs_rows(a.courses, n, conf)
    rows += _infection_rows(a.courses)
    rows += _igg_rows(a.courses, n, conf)
    return _frame(rows)


def _infused(courses: Sequence[Course]) -> list[Course]:
    return [co for co in courses if co.day0 is not None]


def _iec_hs_rows(courses: Sequence[Course], n: int, conf: float) -> list[dict[str, object]]:
    sec, label = "Safety", "IEC-HS (Hines 2023, provisional)"
    results = [course_safety.course_iec_hs(co) for co in _infused(courses)]
    assessed = [r for r in results if r is not None]
    rows = [
        _count(
            sec, label, "suspected", sum(r.suspected for r in assessed), n, ci=True, confidence=conf
        ),
        _count(
            sec,
            label,
            "confirmed by clinician",
            sum(r.confirmed_by_clinician for r in assessed),
            n,
            ci=True,
            confidence=conf,
        ),
        _count(sec, label, "not assessable (no ferritin after day 0)", n - len(assessed), n),
    ]
    grades = [r.grade for r in assessed if r.grade is not None]
    for g in sorted(set(grades)):
        rows.append(_count(sec, label, f"grade {g}", grades.count(g), n))
    return rows


def _infection_rows(courses: Sequence[Course]) -> list[dict[str, object]]:
    sec = "Safety"
    follow = [p for co in _infused(courses) if (p := course_safety.course_infections(co))]
    rows: list[dict[str, object]] = []
    for window_set, name in (("hill_2018", "Hill 2018"), ("platform_default", "0–30/31–100/>100")):
        label = f"Infections by period ({name})"
        for r in compute_infection_density(follow, window_set=window_set):
            density = "—" if r.density_per_100 is None else f"{r.density_per_100:.2f}"
            classes = ", ".join(f"{k} {v}" for k, v in r.events_by_class) or "none"
            rows.append(
                _row(
                    sec,
                    label,
                    r.window,
                    note=(
                        f"{r.events} infections ({classes}; {r.severe_events} grade ≥ 3) in "
                        f"{r.patient_days} patient-days at risk ({r.patients_at_risk} patients): "
                        f"{density} per 100 patient-days"
                    ),
                )
            )
    return rows


def _igg_rows(courses: Sequence[Course], n: int, conf: float) -> list[dict[str, object]]:
    sec, label = "Safety", "IgG / hypogammaglobulinaemia"
    summaries = [s for co in _infused(courses) if (s := course_safety.course_igg(co))]
    ivig = [co for co in _infused(courses) if any(m.drug_class == "ivig" for m in co.medications)]
    sources = {s.lln_source for s in summaries}
    note = "LLN: Mayo age table (fallback)" if "fallback_mayo" in sources else "LLN: lab"
    return [
        _count(sec, label, "IgG measured", len(summaries), n),
        _count(
            sec,
            label,
            "any IgG below age-specific LLN",
            sum(any(s.below_lln) for s in summaries),
            n,
            ci=True,
            confidence=conf,
            note=note,
        ),
        _count(
            sec,
            label,
            "replacement trigger met (IgG < 400 mg/dL, setting)",
            sum(bool(s.trigger_days) for s in summaries),
            n,
            ci=True,
            confidence=conf,
        ),
        _count(sec, label, "IVIG replacement", len(ivig), n, ci=True, confidence=conf),
        _summary(sec, label, [s.days_below_lln for s in summaries], "days", "days below LLN"),
        _summary(sec, label, [len(s.ivig) for s in summaries if s.ivig], "", "IVIG episodes"),
    ]
