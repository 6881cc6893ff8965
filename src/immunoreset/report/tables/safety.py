"""Safety table of the case series: CRS, ICANS, ICAHT, infections (ASTCT 2019, Rejeski 2023)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from immunoreset.course import Course
from immunoreset.report.tables.cohort import CohortAnalysis, _as_analysis
from immunoreset.report.tables.stats import _count, _frame, _summary

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
