"""Domain validation: each impossible value raises InvalidInput naming the field."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from immunoreset import course as c
from immunoreset.errors import InvalidInput
from tests.factories import DAY0, day, patient, small_course

D = dt.date(2024, 3, 2)

BAD = [
    # (id, record class, good kwargs, field, bad value)
    ("temp-high", c.DailyAssessment, {"date": D}, "temperature_max_c", 55.0),
    ("temp-low", c.DailyAssessment, {"date": D}, "temperature_max_c", 24.9),
    ("temp-nan", c.DailyAssessment, {"date": D}, "temperature_max_c", math.nan),
    ("temp-str", c.DailyAssessment, {"date": D}, "temperature_max_c", "38"),
    ("ice-11", c.DailyAssessment, {"date": D}, "ice_score", 11),
    ("ice-neg", c.DailyAssessment, {"date": D}, "ice_score", -1),
    ("ice-float", c.DailyAssessment, {"date": D}, "ice_score", 7.5),
    ("capd-33", c.DailyAssessment, {"date": D}, "capd_score", 33),
    ("device", c.DailyAssessment, {"date": D}, "oxygen_device", "helmet"),
    ("pressor", c.DailyAssessment, {"date": D}, "vasopressors", ("milrinone",)),
    ("pressor-str", c.DailyAssessment, {"date": D}, "vasopressors", "norepinephrine"),
    ("consciousness", c.DailyAssessment, {"date": D}, "consciousness", "sleepy"),
    ("seizure", c.DailyAssessment, {"date": D}, "seizure", "yes"),
    ("edema", c.DailyAssessment, {"date": D}, "cerebral_edema", "mild"),
    ("flow-neg", c.DailyAssessment, {"date": D}, "oxygen_flow_l_min", -1.0),
    ("toci-int", c.DailyAssessment, {"date": D}, "tocilizumab", 1),
    ("date-str", c.DailyAssessment, {}, "date", "2024-03-02"),
    ("date-datetime", c.DailyAssessment, {}, "date", dt.datetime(2024, 3, 2)),
    ("weight-high", c.Anthropometric, {"date": D}, "weight_kg", 251.0),
    ("weight-low", c.Anthropometric, {"date": D}, "weight_kg", 0.5),
    ("height", c.Anthropometric, {"date": D, "weight_kg": 30.0}, "height_cm", 300.0),
    (
        "lab-neg",
        c.LabResult,
        {"date": D, "analyte": "anc", "unit": "cells/uL"},
        "value",
        -5.0,
    ),
    ("lab-analyte", c.LabResult, {"date": D, "value": 1.0, "unit": "cells/uL"}, "analyte", "xyz"),
    ("lab-unit", c.LabResult, {"date": D, "analyte": "anc", "value": 1.0}, "unit", "10^9/L"),
    (
        "score-range",
        c.DiseaseAssessment,
        {"date": D, "instrument": "cmas"},
        "score",
        53.0,
    ),
    ("instrument", c.DiseaseAssessment, {"date": D, "score": 1.0}, "instrument", "bilag"),
    (
        "ae-grade",
        c.AdverseEvent,
        {"term": "fever", "category": "other", "onset": D},
        "grade",
        6,
    ),
    (
        "ae-category",
        c.AdverseEvent,
        {"term": "fever", "grade": 1, "onset": D},
        "category",
        "misc",
    ),
    ("fu-status", c.FollowUp, {"last_contact": D}, "status", "unknown"),
    (
        "bag-status",
        c.Bag,
        {"bag_id": "B1", "batch_id": "T1", "car_t_cells": 1e7, "volume_ml": 10.0},
        "status",
        "lost",
    ),
    (
        "bag-cells",
        c.Bag,
        {"bag_id": "B1", "batch_id": "T1", "volume_ml": 10.0},
        "car_t_cells",
        -1.0,
    ),
    ("ld-drug", c.Lymphodepletion, {"date": D, "dose_mg_m2": 30.0}, "drug", "busulfan"),
    ("ld-dose", c.Lymphodepletion, {"date": D, "drug": "fludarabine"}, "dose_mg_m2", 0.0),
    (
        "inf-bags",
        c.Infusion,
        {"date": D, "dose_cells_per_kg": 1e6},
        "bag_ids",
        (),
    ),
    (
        "med-unit",
        c.Medication,
        {"drug": "mmf", "drug_class": "immunosuppressant", "dose": 1.0, "start": D},
        "dose_unit",
        "pills",
    ),
]


@pytest.mark.parametrize(("case", "cls", "good", "field", "bad"), BAD, ids=[b[0] for b in BAD])
def test_bad_value_names_field(case, cls, good, field, bad):
    defaults = {
        c.AdverseEvent: {"grade": 1, "category": "other"},
        c.Bag: {"car_t_cells": 1e7},
        c.DiseaseAssessment: {"score": 1.0},
        c.Medication: {"dose_unit": "mg/day"},
        c.Infusion: {"bag_ids": ("B1",)},
        c.LabResult: {"value": 1.0},
        c.Anthropometric: {"weight_kg": 30.0},
        c.Lymphodepletion: {"dose_mg_m2": 30.0, "drug": "fludarabine"},
        c.DailyAssessment: {"date": D},
    }.get(cls, {})
    kwargs = {**defaults, **good, field: bad}
    with pytest.raises(InvalidInput) as info:
        cls(**kwargs)
    assert info.value.field == field
    assert str(bad)[:10] in str(info.value) or field in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("study_id", "John Smith"),
        ("study_id", "rm-003"),
        ("sex", "female"),
        ("birth_month", 13),
        ("birth_year", 1800),
        ("diagnosis", "lupus"),
        ("icd10", "M32-1"),
        ("prior_therapy_lines", -1),
        ("diagnosis_date", dt.date(2010, 1, 1)),
    ],
)
def test_bad_patient(field, value):
    with pytest.raises(InvalidInput) as info:
        patient(**{field: value})
    assert info.value.field == field


def test_message_shape():
    with pytest.raises(InvalidInput) as info:
        c.DailyAssessment(date=D, temperature_max_c=55.0)
    assert str(info.value) == "temperature_max_c must be within 25–45 °C; got 55.0"
    assert info.value.allowed == "within 25–45 °C"


def test_nasal_cannula_requires_flow():
    with pytest.raises(InvalidInput) as info:
        c.DailyAssessment(date=D, oxygen_device="nasal_cannula")
    assert info.value.field == "oxygen_flow_l_min"


def test_lab_unit_conversion():
    r = c.LabResult.create(date=D, analyte="anc", value=0.48, unit="10^9/L")
    assert r.value == pytest.approx(480.0) and r.unit == "cells/uL"
    crp = c.LabResult.create(date=D, analyte="crp", value=45.0, unit="mg/L")
    assert crp.value == pytest.approx(4.5) and crp.unit == "mg/dL"
    with pytest.raises(InvalidInput) as info:
        c.LabResult.create(date=D, analyte="anc", value=1.0, unit="mg/dL")
    assert info.value.field == "unit"
    with pytest.raises(InvalidInput):
        c.LabResult.create(date=D, analyte="anc", value=1.0, unit="bananas")


def test_below_lloq_needs_lloq():
    with pytest.raises(InvalidInput) as info:
        c.LabResult(date=D, analyte="car_t_flow", value=0.0, unit="cells/uL", below_lloq=True)
    assert info.value.field == "lloq"


def test_study_days_derived_from_infusion():
    course = small_course()
    assert course.day0 == DAY0
    assert course.study_day(day(-7)) == -7
    assert course.study_day(DAY0) == 0
    assert course.date_of_day(30) == day(30)
    days, values = course.lab_series("cd19_b_cells")
    assert list(days) == [-7.0, 7.0] and list(values) == [420.0, 0.0]


def test_no_infusion_no_study_day():
    course = c.Course(patient=patient())
    assert course.day0 is None
    with pytest.raises(InvalidInput):
        course.study_day(D)


def test_course_sorts_and_rejects_duplicate_days():
    a1 = c.DailyAssessment(date=day(2))
    a2 = c.DailyAssessment(date=day(1))
    course = c.Course(patient=patient(), daily_assessments=(a1, a2))
    assert [a.date for a in course.daily_assessments] == [day(1), day(2)]
    with pytest.raises(InvalidInput):
        c.Course(patient=patient(), daily_assessments=(a1, c.DailyAssessment(date=day(2))))


def test_age_and_weight():
    course = small_course()
    assert course.age_at_infusion == pytest.approx((DAY0 - dt.date(2012, 5, 15)).days / 365.25)
    assert course.weight_on(DAY0).weight_kg == 38.5
