"""Cohort tables: the demo cohort's tables equal what the demo was built to contain."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.report import tables as t


def _row(df: pd.DataFrame, item: str, level: str = "") -> pd.Series:
    hit = df[(df["item"] == item) & (df["level"] == level)]
    assert len(hit) == 1, (item, level, df[["item", "level"]].to_string())
    return hit.iloc[0]


# (item, level, n, total) — peer-data.md §1.2–1.3, as the demo was built
TABLE_ONE = [
    ("Sex", "F", 7, 8, "press: 7 female"),
    ("Sex", "M", 1, 8, "press: 1 male"),
    ("Diagnosis", "SLE", 4, 8, "abstract: four SLE"),
    ("Diagnosis", "JDM", 3, 8, "abstract: three dermatomyositis"),
    ("Diagnosis", "SSc", 1, 8, "abstract: one systemic sclerosis"),
    ("Site", "ROME", 5, 8, "press: 5 at Bambino Gesù"),
    ("Site", "ERLANGEN", 3, 8, "press: 3 at Erlangen"),
]


@pytest.mark.parametrize(("item", "level", "n", "total", "source"), TABLE_ONE)
def test_table_one_counts(analysis, item, level, n, total, source):
    r = _row(t.table_one(analysis), item, level)
    assert (r["n"], r["total"]) == (n, total), source


def test_table_one_patients_and_age(analysis):
    df = t.table_one(analysis)
    assert _row(df, "Patients infused")["n"] == 8
    age = _row(df, "Age at infusion")
    assert 5 <= age["min"] <= age["median"] <= age["max"] <= 17.99  # press: aged 5 to 17


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
    r = _row(t.table_safety(analysis), item, level)
    assert (r["n"], r["total"]) == (n, 8), source


def test_safety_crs_ci_is_exact(analysis):
    r = _row(t.table_safety(analysis), "CRS (ASTCT)", "grade 1")
    assert r["ci_low"] == pytest.approx(0.3491, abs=5e-5)
    assert r["ci_high"] == pytest.approx(0.9681, abs=5e-5)


def test_no_grade_2_crs_row(analysis):
    df = t.table_safety(analysis)
    assert not ((df["item"] == "CRS (ASTCT)") & (df["level"] == "grade 2")).any()


def test_followup_median_and_range(analysis):
    r = _row(t.table_followup(analysis), "Follow-up")
    assert (r["median"], r["min"], r["max"]) == pytest.approx((16.5, 9.0, 24.0), abs=0.05)
    assert r["n"] == 8


def test_manufacturing_all_successful(analysis):
    df = t.table_manufacturing(analysis)
    r = _row(df, "Manufacturing success", "released batches")
    assert (r["n"], r["total"]) == (8, 8)  # abstract: successful in all patients
    bags = _row(df, "Bags per released batch")
    assert bags["min"] >= 2  # "several drug product bags"
    dose = _row(df, "Dose")
    assert dose["median"] == pytest.approx(1.0, abs=0.1)  # 1 × 10^6 /kg


def test_efficacy_all_cleared_and_off_therapy(analysis):
    df = t.table_efficacy(analysis)
    cleared = df[df["item"].str.startswith("Cleared")].iloc[0]
    assert (cleared["n"], cleared["total"]) == (8, 8)
    assert _row(df, "Clearance day")["max"] <= 7  # ACIR: within the first week
    free = _row(df, "Free of immunosuppressants and glucocorticoids at last contact")
    assert (free["n"], free["total"]) == (8, 8)  # abstract: stopped and stayed stopped
    km = _row(df, "Reconstitution day, Kaplan–Meier median")
    assert km["n"] == 8 and math.isfinite(km["median"])


def test_efficacy_has_both_assays_and_titre_months(analysis):
    df = t.table_efficacy(analysis)
    assert {"Cmax (flow cytometry)", "Cmax (qPCR)", "AUC0–28 (qPCR)"} <= set(df["item"])
    levels = set(df.loc[df["item"] == "anti_dsdna: % change from baseline", "level"])
    assert levels == {"month 1", "month 3", "month 6", "month 12"}


def test_sle_response_and_tis_present(analysis):
    assert len(analysis.sle_response) == 4
    assert set(analysis.tis["study_id"]) <= set(analysis.patients.index)


# exact Clopper–Pearson values, hand-checked against R binom.test(k, n)$conf.int
CP = [
    (6, 8, 0.3491, 0.9681, "binom.test(6, 8)"),
    (1, 8, 0.0032, 0.5265, "binom.test(1, 8)"),
    (0, 8, 0.0, 0.3694, "binom.test(0, 8): upper 1 − 0.025^(1/8)"),
    (8, 8, 0.6306, 1.0, "binom.test(8, 8): lower 0.025^(1/8)"),
    (2, 8, 0.0319, 0.6509, "binom.test(2, 8)"),
]


@pytest.mark.parametrize(("k", "n", "lo", "hi", "source"), CP)
def test_clopper_pearson(k, n, lo, hi, source):
    got = t.clopper_pearson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5), source


@pytest.mark.parametrize(
    ("k", "n", "field"),
    [(9, 8, "k"), (-1, 8, "k"), (1, 0, "n"), (True, 8, "k"), (1.5, 8, "k"), ("1", 8, "k")],
)
def test_clopper_pearson_bad_input(k, n, field):
    with pytest.raises(InvalidInput) as err:
        t.clopper_pearson(k, n)
    assert err.value.field == field


def test_display_forms(analysis):
    shown = t.display_table(t.table_safety(analysis))
    assert list(shown.columns) == ["section", "characteristic", "value"]
    value = shown.loc[shown["characteristic"] == "CRS (ASTCT): grade 1", "value"].iloc[0]
    assert value == "6/8 (75.0 %; 95 % CI 34.9–96.8 %)"
    fu = t.display_table(t.table_followup(analysis))
    assert fu["value"].iloc[0] == "16.5 (9.0 to 24.0) months, n = 8"


def test_display_rejects_other_frames():
    with pytest.raises(InvalidInput):
        t.display_table(pd.DataFrame({"a": [1]}))


def test_cohort_tables_and_rich(analysis):
    tables = t.cohort_tables(analysis)
    assert list(tables) == ["cohort", "manufacturing", "safety", "efficacy", "followup"]
    for df in tables.values():
        assert list(df.columns) == list(t.STAT_COLUMNS)
    rich_tables = t.cohort_summary_rich(analysis)
    assert len(rich_tables) == 5
    assert rich_tables[0].row_count == len(tables["cohort"])


def test_tables_accept_course_lists(published):
    assert _row(t.table_one(published[:2]), "Patients infused")["n"] == 2


def test_long_frames_are_built_once(analysis):
    labs = analysis.labs
    assert set(labs.columns) == {"study_id", "day", "analyte", "value", "lloq", "below_lloq"}
    assert labs["study_id"].nunique() == 8
    assert len(labs) == sum(len(c.labs) for c in analysis.courses)


def test_not_infused_course_counts_in_enrolment_only(published):
    from dataclasses import replace

    extra = replace(
        published[0], patient=replace(published[0].patient, study_id="RM-099"), infusions=()
    )
    a = t.analyse_cohort([*published, extra])
    df = t.table_one(a)
    assert _row(df, "Patients infused")["n"] == 8
    assert _row(df, "Enrolled, not (yet) infused")["n"] == 1
    assert len(a.toxicity) == 8


@pytest.mark.parametrize(
    ("courses", "field"),
    [([], "courses"), ("RM-001", "courses"), ([1, 2], "courses"), (None, "courses")],
)
def test_analyse_bad_courses(courses, field):
    with pytest.raises(InvalidInput) as err:
        t.analyse_cohort(courses)
    assert err.value.field == field


def test_analyse_duplicate_study_ids(published):
    with pytest.raises(InvalidInput) as err:
        t.analyse_cohort([published[0], published[0]])
    assert err.value.field == "courses"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"clearance_threshold": 0}, "clearance_threshold"),
        ({"clearance_threshold": True}, "clearance_threshold"),
        ({"reconstitution_threshold": 0.5}, "reconstitution_threshold"),
        ({"blq_rule": "half_lloq"}, "blq_rule"),
        ({"auc_end": 0}, "auc_end"),
        ({"default_lloq": {"flow": 0.1}}, "default_lloq"),
        ({"default_lloq": {"flow": 0.0, "qpcr": 1.0}}, "default_lloq.flow"),
        ({"ctcae_version": "4.0"}, "ctcae_version"),
        ({"icaht_duration_mode": "longest"}, "icaht_duration_mode"),
        ({"toxicity": "default"}, "toxicity"),
        ({"confidence": 1.0}, "confidence"),
        ({"titre_months": ()}, "titre_months"),
        ({"titre_months": (0,)}, "titre_months"),
        ({"score_months": [6]}, "score_months"),
        ({"ck_uln": 0}, "ck_uln"),
        ({"enzyme_method": "ratio"}, "enzyme_method"),
        ({"max_lines": 0}, "max_lines"),
        ({"max_swimmers": 501}, "max_swimmers"),
    ],
)
def test_settings_bad_input(kwargs, field):
    with pytest.raises(InvalidInput) as err:
        t.AnalysisSettings(**kwargs)
    assert err.value.field == field


def test_settings_change_the_analysis(published):
    strict = t.AnalysisSettings(reconstitution_threshold=1e5 - 1)
    a = t.analyse_cohort(published, settings=strict)
    assert not np.isfinite(a.bcells["reconstitution_day"]).any()
    assert a.km is not None and a.km.median is None


def test_analyse_bad_settings(published):
    with pytest.raises(InvalidInput) as err:
        t.analyse_cohort(published, settings={"clearance_threshold": 1})
    assert err.value.field == "settings"


def test_small_hand_built_courses():
    from tests.factories import small_course

    a = t.analyse_cohort([small_course("RM-001"), small_course("RM-002", "ERL")])
    safety = t.table_safety(a)
    assert (_row(safety, "CRS (ASTCT)", "grade 2")["n"]) == 2  # factory: fever + 2 L/min O2
    assert _row(t.table_followup(a), "Follow-up")["median"] == pytest.approx(400 / 30.4375)
