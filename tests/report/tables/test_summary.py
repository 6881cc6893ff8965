"""Every table in report order and their Rich form."""

from __future__ import annotations

from immunoreset.report import tables as t


def test_cohort_tables_and_rich(analysis):
    tables = t.cohort_tables(analysis)
    assert list(tables) == ["cohort", "manufacturing", "safety", "efficacy", "followup"]
    for df in tables.values():
        assert list(df.columns) == list(t.STAT_COLUMNS)
    rich_tables = t.cohort_summary_rich(analysis)
    assert len(rich_tables) == 5
    assert rich_tables[0].row_count == len(tables["cohort"])
