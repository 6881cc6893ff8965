"""Follow-up table: median and range of time followed."""

from __future__ import annotations

import pytest

from immunoreset.report import tables as t
from tests.report.tables.rows import row


def test_followup_median_and_range(analysis):
    r = row(t.table_followup(analysis), "Follow-up")
    assert (r["median"], r["min"], r["max"]) == pytest.approx((16.5, 9.0, 24.0), abs=0.05)
    assert r["n"] == 8
