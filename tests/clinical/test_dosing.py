"""BSA (Mosteller 1987), CAR T dose, lymphodepletion regimens and fludarabine renal rules.

Sources: clinical.md §11.1 (regimens), §11.2 (renal rules), §11.3 (worked cases).
"""

from __future__ import annotations

import math

import pytest

from immunoreset.clinical.dosing import (
    REGIMENS,
    RENAL_RULES,
    bsa_mosteller,
    car_t_dose,
    flu_dose_reduced,
    lymphodepletion,
)
from immunoreset.errors import InvalidInput

WORKED = "clinical.md §11.3"
# height 144 cm × weight 36 kg gives a Mosteller BSA of exactly 1.2 m² (sqrt(1.44)).
BSA_12 = {"height_cm": 144, "weight_kg": 36}


@pytest.mark.parametrize(
    ("height", "weight", "expected", "source"),
    [
        (144, 36, 1.2, "sqrt(144 × 36 / 3600) = 1.2"),
        (180, 80, math.sqrt(4.0), "Mosteller NEJM 1987: 180 cm, 80 kg -> 2.0 m²"),
        (100, 16, math.sqrt(1600 / 3600), "Mosteller formula"),
    ],
)
def test_bsa(height: float, weight: float, expected: float, source: str) -> None:
    assert bsa_mosteller(height_cm=height, weight_kg=weight) == pytest.approx(expected), source


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"weight_kg": 40}, 4e7),
        ({"weight_kg": 40, "cells_per_kg": 1.23e6}, 4.92e7),
        ({"weight_kg": 120, "max_cells": 1e8}, 1e8),
        ({"weight_kg": 100, "max_cells": 1e8}, 1e8),
        ({"weight_kg": 99, "max_cells": 1e8}, 9.9e7),
    ],
)
def test_car_t_dose(kwargs: dict, expected: float) -> None:
    assert car_t_dose(**kwargs) == pytest.approx(expected)


def test_worked_case_1_nicolai() -> None:
    plan = lymphodepletion(**BSA_12, regimen="opbg_nicolai_2024")
    flu, cy = plan.drug("fludarabine"), plan.drug("cyclophosphamide")
    assert plan.bsa_m2 == pytest.approx(1.2)
    assert (flu.daily_mg, flu.total_mg, len(flu.days)) == (pytest.approx(36), pytest.approx(108), 3)
    assert (cy.daily_mg, cy.total_mg, len(cy.days)) == (pytest.approx(600), pytest.approx(1200), 2)
    # Days are UNCONFIRMED defaults: explicit in the data and the plan.
    assert flu.days == (-5, -4, -3) and cy.days == (-4, -3)
    assert flu.dose_confirmed and not flu.days_confirmed
    assert plan.confirmed is False
    assert any("UNCONFIRMED" in line for line in plan.reasons)
    assert plan.fludarabine_administer and plan.flu_dose_reduced is False


# (regimen, flu mg/m²/day, flu days, cy mg/m²/day, cy days, confirmed, source)
REGIMEN_TABLE = [
    ("opbg_nicolai_2024", 30, (-5, -4, -3), 500, (-4, -3), False, "§11.1 Nicolai 2024"),
    ("erlangen_flu25_cy1000", 25, (-5, -4, -3), 1000, (-3,), False, "§11.1 / §10 Erlangen"),
    ("tuebingen_pecher_2023", 25, (-5, -4, -3), 1000, (-3,), False, "§11.1 Pecher 2023"),
    ("zuma1_flu30_cy500", 30, (-5, -4, -3), 500, (-5, -4, -3), True, "§11.1 ZUMA-1"),
    ("heidelberg_flu30_cy500", 30, (-4, -3, -2), 500, (-4, -3, -2), True, "Merkt, MP §7.1"),
]


@pytest.mark.parametrize(
    ("name", "flu", "flu_days", "cy", "cy_days", "confirmed", "source"), REGIMEN_TABLE
)
def test_regimen_data(
    name: str,
    flu: float,
    flu_days: tuple[int, ...],
    cy: float,
    cy_days: tuple[int, ...],
    confirmed: bool,
    source: str,
) -> None:
    regimen = REGIMENS[name]
    by_agent = {d.agent: d for d in regimen.drugs}
    assert (by_agent["fludarabine"].mg_per_m2_day, by_agent["fludarabine"].days) == (flu, flu_days)
    assert (by_agent["cyclophosphamide"].mg_per_m2_day, by_agent["cyclophosphamide"].days) == (
        cy,
        cy_days,
    )
    assert regimen.confirmed is confirmed, source
    plan = lymphodepletion(height_cm=180, weight_kg=80, regimen=name)  # BSA 2.0
    assert plan.drug("fludarabine").total_mg == pytest.approx(2 * flu * len(flu_days))
    assert plan.drug("cyclophosphamide").total_mg == pytest.approx(2 * cy * len(cy_days))
    assert plan.confirmed is confirmed


def test_spec_totals() -> None:
    # §11.1 "Totals for comparison" (mg/m²).
    totals = {
        name: {d.agent: d.mg_per_m2_day * len(d.days) for d in r.drugs}
        for name, r in REGIMENS.items()
    }
    assert totals["erlangen_flu25_cy1000"] == {"fludarabine": 75, "cyclophosphamide": 1000}
    assert totals["opbg_nicolai_2024"] == {"fludarabine": 90, "cyclophosphamide": 1000}
    assert totals["zuma1_flu30_cy500"] == {"fludarabine": 90, "cyclophosphamide": 1500}


def _flu_plan(rule: str, crcl: float, regimen: str):
    return lymphodepletion(**BSA_12, regimen=regimen, crcl_ml_min=crcl, renal_rule=rule)


# (rule, regimen (planned flu mg/m²), crcl, expected mg/m²/day or None, status, source)
RENAL_CASES = [
    ("fludara_iv_label", "erlangen_flu25_cy1000", 80, 25, "full", f"{WORKED} #2"),
    ("fludara_iv_label", "erlangen_flu25_cy1000", 79, 20, "reduced", f"{WORKED} #2"),
    ("fludara_iv_label", "erlangen_flu25_cy1000", 50, 20, "reduced", "§11.2 band 50–79"),
    ("fludara_iv_label", "erlangen_flu25_cy1000", 49, 15, "reduced", f"{WORKED} #2"),
    ("fludara_iv_label", "erlangen_flu25_cy1000", 30, 15, "reduced", "§11.2 band 30–49"),
    ("fludara_iv_label", "erlangen_flu25_cy1000", 29, None, "do_not_administer", f"{WORKED} #2"),
    ("fludara_iv_label", "erlangen_flu25_cy1000", 0, None, "do_not_administer", "§11.2 < 30"),
    ("fludara_iv_label", "zuma1_flu30_cy500", 79, 24, "reduced", "§11.2 note (30 -> 24)"),
    ("fludara_iv_label", "zuma1_flu30_cy500", 49, 18, "reduced", "§11.2 note (30 -> 18)"),
    ("fludarabine_pct_label", "zuma1_flu30_cy500", 71, 30, "full", f"{WORKED} #3"),
    ("fludarabine_pct_label", "zuma1_flu30_cy500", 70, 24, "reduced", f"{WORKED} #3"),
    ("fludarabine_pct_label", "zuma1_flu30_cy500", 30, 24, "reduced", "§11.2 band 30–70"),
    ("fludarabine_pct_label", "zuma1_flu30_cy500", 29, 15, "reduced", "§11.2 < 30 -> −50 %"),
    ("dfci_bwh_institutional", "zuma1_flu30_cy500", 55, 30, "full", f"{WORKED} #4"),
    ("dfci_bwh_institutional", "zuma1_flu30_cy500", 50, 30, "full", "§11.2 ≥ 50"),
    ("dfci_bwh_institutional", "zuma1_flu30_cy500", 49, 18, "reduced", "§11.2 30–49"),
    ("dfci_bwh_institutional", "zuma1_flu30_cy500", 45, 18, "reduced", f"{WORKED} #4"),
    ("dfci_bwh_institutional", "zuma1_flu30_cy500", 30, 18, "reduced", "§11.2 30–49"),
    ("dfci_bwh_institutional", "zuma1_flu30_cy500", 29, None, "undefined", "§11.2 no rule < 30"),
]


@pytest.mark.parametrize(("rule", "regimen", "crcl", "dose", "status", "source"), RENAL_CASES)
def test_renal_rules(
    rule: str, regimen: str, crcl: float, dose: float | None, status: str, source: str
) -> None:
    plan = _flu_plan(rule, crcl, regimen)
    flu = plan.drug("fludarabine")
    assert flu.status == status, source
    if dose is None:
        assert flu.mg_per_m2_day is None and flu.daily_mg is None and flu.total_mg is None
        assert not flu.administer and not plan.fludarabine_administer
    else:
        assert flu.mg_per_m2_day == pytest.approx(dose), source
        assert flu.daily_mg == pytest.approx(1.2 * dose)
        assert plan.fludarabine_administer
    cy = plan.drug("cyclophosphamide")
    assert cy.status == "full" and cy.mg_per_m2_day == cy.planned_mg_per_m2_day
    assert plan.crcl_unit == RENAL_RULES[rule].unit


def test_do_not_administer_is_explicit() -> None:
    plan = _flu_plan("fludara_iv_label", 29, "opbg_nicolai_2024")
    assert plan.drug("fludarabine").status == "do_not_administer"
    assert "fludarabine: DO NOT ADMINISTER" in plan.reasons
    assert plan.flu_dose_reduced is True
    undefined = _flu_plan("dfci_bwh_institutional", 10, "opbg_nicolai_2024")
    assert undefined.flu_dose_reduced is None
    assert any("clinician decision" in line for line in undefined.reasons)


@pytest.mark.parametrize(
    ("crcl", "banded", "dose", "rounded"),
    [(79.5, 80, 25, True), (79.4, 79, 20, True), (49.5, 50, 20, True), (80.0, 80, 25, False)],
)
def test_crcl_rounded_before_banding(crcl: float, banded: int, dose: float, rounded: bool) -> None:
    plan = _flu_plan("fludara_iv_label", crcl, "erlangen_flu25_cy1000")
    assert (plan.crcl_banded, plan.crcl_rounded) == (banded, rounded)
    assert plan.drug("fludarabine").mg_per_m2_day == pytest.approx(dose)
    assert any("UNCONFIRMED handling" in line for line in plan.reasons) is rounded


@pytest.mark.parametrize(
    ("given", "label", "reduced", "source"),
    [
        (26, 30, True, f"{WORKED} #5 (86.7 %)"),
        (27, 30, False, "Wood 2022: exactly 90 % is not < 90 %"),
        (26.99, 30, True, "Wood 2022 just below 90 %"),
        (30, 30, False, "full dose"),
        (0, 30, True, "not given"),
    ],
)
def test_flu_dose_reduced(given: float, label: float, reduced: bool, source: str) -> None:
    assert flu_dose_reduced(given_mg_per_m2=given, label_mg_per_m2=label) is reduced, source


def test_plan_flu_dose_reduced_flag() -> None:
    assert _flu_plan("fludara_iv_label", 79, "zuma1_flu30_cy500").flu_dose_reduced is True
    assert _flu_plan("fludara_iv_label", 80, "zuma1_flu30_cy500").flu_dose_reduced is False


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (BSA_12 | {"crcl_ml_min": 60}, "renal_rule"),
        (BSA_12 | {"renal_rule": "fludara_iv_label"}, "crcl_ml_min"),
        (BSA_12 | {"regimen": "erlangen"}, "regimen"),
        (BSA_12 | {"crcl_ml_min": 60, "renal_rule": "cockcroft"}, "renal_rule"),
        (BSA_12 | {"crcl_ml_min": -1, "renal_rule": "fludara_iv_label"}, "crcl_ml_min"),
    ],
)
def test_lymphodepletion_refuses(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        lymphodepletion(**kwargs)
    assert err.value.field == field


def test_plan_drug_lookup_refuses_unknown_agent() -> None:
    with pytest.raises(InvalidInput) as err:
        lymphodepletion(**BSA_12).drug("bendamustine")
    assert err.value.field == "agent"


# ------------------------------------------------------------ tocilizumab (clinical-addendum §6.1)
TOCI = [
    (29.9, 358.8, False, "§6.1 #1: 12 mg/kg below 30 kg"),
    (30.0, 240.0, False, "§6.1 #1: 8 mg/kg from 30 kg"),
    (100.0, 800.0, False, "§6.1 #2: 800 exactly, not capped"),
    (100.1, 800.0, True, "§6.1 #2: capped above 100 kg"),
    (110.0, 800.0, True, "§6.1 #2: 880 capped"),
    (10.0, 120.0, False, "12 mg/kg"),
]


@pytest.mark.parametrize(("kg", "mg", "capped", "source"), TOCI, ids=[t[3] for t in TOCI])
def test_le_2018_tocilizumab_dose(kg, mg, capped, source) -> None:
    from immunoreset.clinical.dosing import tocilizumab_dose

    d = tocilizumab_dose(weight_kg=kg)
    assert (d.mg, d.capped, d.allowed) == (pytest.approx(mg), capped, True), source


def test_tocilizumab_interval_count_and_24h_limit() -> None:
    """§6.1 #3–4: 7 h 59 min refused, 8 h allowed; 5th dose refused; 4th within 24 h refused."""
    from immunoreset.clinical.dosing import tocilizumab_dose

    assert not tocilizumab_dose(weight_kg=70, hours_since_prior_doses=(7 + 59 / 60,)).allowed
    assert tocilizumab_dose(weight_kg=70, hours_since_prior_doses=(8.0,)).allowed
    assert not tocilizumab_dose(weight_kg=70, hours_since_prior_doses=(30, 60, 90, 120)).allowed
    within = (8.0, 16.0, 23.0)
    assert not tocilizumab_dose(weight_kg=70, hours_since_prior_doses=within).allowed
    assert tocilizumab_dose(
        weight_kg=70, hours_since_prior_doses=within, limit_3_in_24h=False
    ).allowed
    assert "outside_label_age" in tocilizumab_dose(weight_kg=10, age_years=1.5).flags


# ------------------------------------------------------------ bedside Schwartz (addendum §6.2)
SCHWARTZ = [
    (120, 0.5, "mg/dL", None, 99.12, True, "§6.2 #1 (> 90 flagged)"),
    (150, 1.0, "mg/dL", None, 61.95, False, "§6.2 #2"),
    (120, 44.2, "umol/L", None, 99.12, True, "§6.2 #3: 44.2 µmol/L = 0.50 mg/dL"),
    (100, 0.459, "mg/dL", 0.8, 89.98, True, "§6.2 #4: age 0.8 y"),
    (100, 0.459, "mg/dL", 17.0, 89.98, True, "§6.2 #4: age 17 y"),
    (100, 0.459, "mg/dL", 16.0, 89.98, False, "age 16 inside 1–16"),
    (100, 0.4589, "mg/dL", 5.0, 90.0, False, "90.0 not > 90"),
]


@pytest.mark.parametrize(
    ("h", "cr", "unit", "age", "egfr", "flag", "source"), SCHWARTZ, ids=[s[6] for s in SCHWARTZ]
)
def test_schwartz_2009_bedside_egfr(h, cr, unit, age, egfr, flag, source) -> None:
    from immunoreset.clinical.dosing import schwartz_bedside_egfr

    r = schwartz_bedside_egfr(height_cm=h, creatinine=cr, creatinine_unit=unit, age_years=age)
    assert r.egfr == pytest.approx(egfr, abs=0.01), source
    assert ("out_of_validated_range" in r.flags) is flag, source


def test_fludarabine_renal_adjustment_from_creatinine_and_height() -> None:
    """Schwartz 2009 + clinical.md §11.2: creatinine and height give the renal value."""
    from immunoreset.clinical.dosing import lymphodepletion

    plan = lymphodepletion(
        height_cm=150, weight_kg=40, creatinine=1.0, renal_rule="fludarabine_pct_label",
        age_years=12,
    )  # fmt: skip
    assert plan.renal_estimate == "schwartz_bedside" and plan.crcl_banded == 62
    assert plan.drug("fludarabine").mg_per_m2_day == pytest.approx(24.0)  # −20 % (30–70)
    assert "egfr_for_crcl_rule" not in plan.flags
    iv = lymphodepletion(height_cm=150, weight_kg=40, creatinine=1.0, renal_rule="fludara_iv_label")
    assert "egfr_for_crcl_rule" in iv.flags
    assert any("BSA-normalised" in r for r in iv.reasons)
