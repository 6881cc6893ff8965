"""Manufacturing table: every batch of the demo cohort manufactured and released."""

from __future__ import annotations

import pytest

from immunoreset.report import tables as t
from tests.report.tables.rows import row


def test_manufacturing_all_successful(analysis):
    df = t.table_manufacturing(analysis)
    r = row(df, "Manufacturing success", "released batches")
    assert (r["n"], r["total"]) == (8, 8)  # abstract: successful in all patients
    bags = row(df, "Bags per released batch")
    assert bags["min"] >= 2  # "several drug product bags"
    dose = row(df, "Dose")
    assert dose["median"] == pytest.approx(1.0, abs=0.1)  # 1 × 10^6 /kg
