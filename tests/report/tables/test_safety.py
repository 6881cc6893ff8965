"""Safety table: CRS, ICANS, ICAHT counts of the demo cohort with exact CIs."""

from __future__ import annotations

import pytest

from immunoreset.report import tables as t
from tests.report.tables.rows import row

SAFETY = [
    ("CRS (ASTCT)", "any grade", 6, "abstract: CRS grade 1 in six patients"),
    ("CRS (ASTCT)", "grade 1", 6, "abstract: CRS grade 1 in six patients"),
    ("CRS (ASTCT)", "grade ≥ 3", 0, "abstract: no CRS ≥ 2 reported"),
    ("ICANS (ASTCT)", "any grade", 1, "abstract: ICANS grade 1 in one patient"),
    ("ICANS (ASTCT)", "grade 1", 1, "abstract: ICANS grade 1 in one patient"),
    ("Late ICAHT (after day 30)", "any grade", 2, "abstract: late hematotoxicity G1 in two"),
    ("Late ICAHT (after day 30)", "grade 1", 2, "abstract: late hematotoxicity G1 in two"),
    ("Infection (CTCAE)", "grade ≥ 3", 0, "abstract: no severe infections"),
]


@pytest.mark.parametrize(("item", "level", "n", "source"), SAFETY)
def test_safety_counts(analysis, item, level, n, source):
    r = row(t.table_safety(analysis), item, level)
    assert (r["n"], r["total"]) == (n, 8), source


def test_safety_crs_ci_is_exact(analysis):
    r = row(t.table_safety(analysis), "CRS (ASTCT)", "grade 1")
    assert r["ci_low"] == pytest.approx(0.3491, abs=5e-5)
    assert r["ci_high"] == pytest.approx(0.9681, abs=5e-5)


def test_no_grade_2_crsrow(analysis):
    df = t.table_safety(analysis)
    assert not ((df["item"] == "CRS (ASTCT)") & (df["level"] == "grade 2")).any()
