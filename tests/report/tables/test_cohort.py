"""Table 1 and the cohort analysis: counts of the demo cohort, long frames, bad courses."""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.report import tables as t
from tests.report.tables.rows import row

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
    r = row(t.table_one(analysis), item, level)
    assert (r["n"], r["total"]) == (n, total), source


def test_table_one_patients_and_age(analysis):
    df = t.table_one(analysis)
    assert row(df, "Patients infused")["n"] == 8
    age = row(df, "Age at infusion")
    assert 5 <= age["min"] <= age["median"] <= age["max"] <= 17.99  # press: aged 5 to 17


def test_tables_accept_course_lists(published):
    assert row(t.table_one(published[:2]), "Patients infused")["n"] == 2


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
    assert row(df, "Patients infused")["n"] == 8
    assert row(df, "Enrolled, not (yet) infused")["n"] == 1
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


def test_small_hand_built_courses():
    from tests.factories import small_course

    a = t.analyse_cohort([small_course("RM-001"), small_course("RM-002", "ERL")])
    safety = t.table_safety(a)
    assert (row(safety, "CRS (ASTCT)", "grade 2")["n"]) == 2  # factory: fever + 2 L/min O2
    assert row(t.table_followup(a), "Follow-up")["median"] == pytest.approx(400 / 30.4375)
