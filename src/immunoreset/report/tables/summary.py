"""Every table of the cohort in report order, and their Rich form for the command line."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from immunoreset.course import Course
from immunoreset.report.tables.cohort import CohortAnalysis, _as_analysis, table_one
from immunoreset.report.tables.efficacy import table_efficacy
from immunoreset.report.tables.followup import table_followup
from immunoreset.report.tables.format import display_table
from immunoreset.report.tables.manufacturing import table_manufacturing
from immunoreset.report.tables.safety import table_safety

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
