"""The per-patient table against the published-shaped demo cohort (issue 17 item 3)."""

from __future__ import annotations

from immunoreset.report.tables.patients import PATIENT_COLUMNS, table_patients


def test_one_row_per_infused_patient(analysis, published):
    df = table_patients(analysis)
    assert list(df.columns) == list(PATIENT_COLUMNS)
    assert sorted(df["Patient"]) == sorted(co.study_id for co in published)
    row = df.set_index("Patient").loc["RM-003"]
    assert row["Diagnosis"] == "JDM (M33.09)"
    assert row["Sex"] == "F" and row["Age"] == "9"
    assert row["Response"] == "TIS major (M12)"
    assert row["Autoantibody"] == "—"  # no myositis antibody measured


def test_not_yet_reached_and_reconstitution(analysis):
    df = table_patients(analysis).set_index("Patient")
    er3 = df.loc["ER-003"]  # followed 9 months: month 12 lies ahead
    assert er3["Follow-up"] == "9"
    assert er3["Response"] == "TIS major (M6)"
    assert set(df["B-cell return"]) == {"91", "122"}
    assert df.loc["RM-002", "Autoantibody"].startswith("Anti-dsDNA −")
    tis = analysis.tis.set_index(["study_id", "month"])
    assert tis.loc[("ER-003", 12), "note"] == "not yet reached"
