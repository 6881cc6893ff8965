"""Efficacy table: B-cell clearance, off-therapy, assays, titre months, SLE response and TIS."""

from __future__ import annotations

import math

from immunoreset.report import tables as t
from tests.report.tables.rows import row


def test_efficacy_all_cleared_and_off_therapy(analysis):
    df = t.table_efficacy(analysis)
    cleared = df[df["item"].str.startswith("Cleared")].iloc[0]
    assert (cleared["n"], cleared["total"]) == (8, 8)
    assert row(df, "Clearance day")["max"] <= 7  # ACIR: within the first week
    free = row(df, "Free of immunosuppressants and glucocorticoids at last contact")
    assert (free["n"], free["total"]) == (8, 8)  # abstract: stopped and stayed stopped
    km = row(df, "Reconstitution day, Kaplan–Meier median")
    assert km["n"] == 8 and math.isfinite(km["median"])


def test_efficacy_has_both_assays_and_titre_months(analysis):
    df = t.table_efficacy(analysis)
    assert {"Cmax (flow cytometry)", "Cmax (qPCR)", "AUC0–28 (qPCR)"} <= set(df["item"])
    levels = set(df.loc[df["item"] == "anti_dsdna: % change from baseline", "level"])
    assert levels == {"month 1", "month 3", "month 6", "month 12"}


def test_sle_response_and_tis_present(analysis):
    assert len(analysis.sle_response) == 4
    assert set(analysis.tis["study_id"]) <= set(analysis.patients.index)
