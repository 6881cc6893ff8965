"""Follow-up table of the case series: time followed and status at last contact."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from immunoreset.course import Course
from immunoreset.report.tables.cohort import CohortAnalysis, _as_analysis
from immunoreset.report.tables.settings import DAYS_PER_MONTH
from immunoreset.report.tables.stats import _count, _frame, _summary


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
