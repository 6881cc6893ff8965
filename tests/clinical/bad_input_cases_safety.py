"""Bad-input cases for the safety calculators of issue #12 (data, not tests).

IEC-HS, T-ICAHT, infections, IgG, long-term follow-up and the dosing additions; same row shape
as ``bad_input_cases_toxicity.CASES``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from immunoreset.clinical import course_safety, dosing, followup, iec_hs, igg, infections, ticaht

NAN = float("nan")
Case = tuple[str, Callable[..., Any], dict[str, Any], str]
CASES: list[Case] = []


def _add(fn: Callable[..., Any], base: dict[str, Any], field: str, values: dict[str, Any]) -> None:
    for tag, value in values.items():
        CASES.append((f"{fn.__name__}-{field}-{tag}", fn, base | {field: value}, field))


NUM = {"neg": -1, "str": "7", "bool": True, "nan": NAN}

# --------------------------------------------------------------------------- iec_hs
IEC = dict(ferritin_ng_ml=700, ferritin_uln_ng_ml=300, ferritin_day0_ng_ml=100, onset_day=12)
for f in ("ferritin_ng_ml", "ferritin_day0_ng_ml", "fibrinogen_mg_dl", "triglycerides_mg_dl"):
    _add(iec_hs.assess_iec_hs, IEC, f, NUM)
_add(iec_hs.assess_iec_hs, IEC, "ferritin_uln_ng_ml", {"zero": 0, "str": "300"})
_add(iec_hs.assess_iec_hs, IEC, "onset_day", {"frac": 1.5, "range": 5000, "none": None})
_add(
    iec_hs.assess_iec_hs,
    IEC,
    "crs_episodes",
    {"str": "1-5", "reversed": [(5, 1)], "triple": [(1, 2, 3)], "frac": [(1.5, 3)]},
)
_add(iec_hs.assess_iec_hs, IEC, "interventions", {"unknown": ["plasmapheresis"], "str": "x"})
for f in (
    "confirmed_by_clinician",
    "died_of_iec_hs",
    "haemophagocytosis",
    "rapidly_rising_ferritin",
):
    _add(iec_hs.assess_iec_hs, IEC, f, {"int": 1, "str": "yes"})
_add(iec_hs.assess_iec_hs, IEC, "settings", {"dict": {}})
CASES.append(
    (
        "assess_iec_hs-alt-without-uln",
        iec_hs.assess_iec_hs,
        IEC | {"alt_u_l": 300},
        "transaminase_uln_u_l",
    )
)
for f, v in {
    "ferritin_factor": 0.5,
    "ferritin_reference": "lab",
    "fibrinogen_rule": "lt",
    "fibrinogen_mg_dl": 0,
    "transaminase_factor": "5",
    "triglycerides_mg_dl": -1,
    "min_other_features": 1.5,
}.items():
    CASES.append((f"IecHsSettings-{f}", iec_hs.IecHsSettings, {f: v}, f))

# --------------------------------------------------------------------------- ticaht
for fn in (ticaht.grade_early_ticaht, ticaht.grade_late_ticaht, ticaht.grade_ticaht):
    good = ([1, 2], [40_000, 30_000])
    CASES += [
        (f"{fn.__name__}-days-str", fn, {"__args__": ("1,2", good[1])}, "days"),
        (f"{fn.__name__}-plt-neg", fn, {"__args__": ([1, 2], [40_000, -1])}, "platelets_per_ul"),
        (
            f"{fn.__name__}-plt-implausible",
            fn,
            {"__args__": ([1, 2], [40, 30])},
            "platelets_per_ul",
        ),
        (f"{fn.__name__}-plt-length", fn, {"__args__": ([1, 2], [40_000])}, "platelets_per_ul"),
        (f"{fn.__name__}-unit", fn, {"__args__": good, "unit": "mg/dL"}, "platelets_unit"),
        (f"{fn.__name__}-censor", fn, {"__args__": good, "censor_day": "3"}, "censor_day"),
        (
            f"{fn.__name__}-transfusions",
            fn,
            {"__args__": good, "transfusion_days": ["a"]},
            "transfusion_days",
        ),
        (f"{fn.__name__}-ctcae", fn, {"__args__": good, "ctcae_version": "4.0"}, "ctcae_version"),
        (f"{fn.__name__}-settings", fn, {"__args__": good, "settings": None}, "settings"),
    ]
CASES.append(
    (
        "grade_late_ticaht-end",
        ticaht.grade_late_ticaht,
        {"__args__": ([40], [40_000]), "late_end_day": 30},
        "late_end_day",
    )
)

# --------------------------------------------------------------------------- infections
CASES += [
    (
        "InfectionEvent-class",
        infections.InfectionEvent,
        {"__args__": (3, "prion", "lung", 2)},
        "organism_class",
    ),
    (
        "InfectionEvent-grade",
        infections.InfectionEvent,
        {"__args__": (3, "viral", "lung", 6)},
        "ctcae_grade",
    ),
    ("InfectionEvent-site", infections.InfectionEvent, {"__args__": (3, "viral", " ", 2)}, "site"),
    (
        "InfectionEvent-day",
        infections.InfectionEvent,
        {"__args__": (1.5, "viral", "lung", 2)},
        "onset_day",
    ),
    ("PatientFollowUp-end", infections.PatientFollowUp, {"__args__": (-1,)}, "end_day"),
    ("PatientFollowUp-events", infections.PatientFollowUp, {"__args__": (10, ["x"])}, "events"),
    ("days_at_risk-order", infections.days_at_risk, {"__args__": (29, 28, 90)}, "last_day"),
    ("days_at_risk-end", infections.days_at_risk, {"__args__": (0, 28, "90")}, "end_day"),
    ("days_at_risk-first", infections.days_at_risk, {"__args__": (-1, 28, 90)}, "first_day"),
    ("assign_window-set", infections.assign_window, {"__args__": (3, "hill")}, "window_set"),
    ("assign_window-day", infections.assign_window, {"__args__": ("3",)}, "onset_day"),
    (
        "compute_infection_density-patients",
        infections.compute_infection_density,
        {"__args__": ([1, 2],)},
        "patients",
    ),
    (
        "compute_infection_density-set",
        infections.compute_infection_density,
        {"__args__": ([],), "window_set": "cibmtr"},
        "window_set",
    ),
    (
        "compute_infection_density-recurrence",
        infections.compute_infection_density,
        {"__args__": ([],), "recurrence_interval_days": 0},
        "recurrence_interval_days",
    ),
    (
        "grade_bacteraemia-flag",
        infections.grade_bacteraemia,
        {"cons_or_diphtheroid": "no"},
        "cons_or_diphtheroid",
    ),
]

# --------------------------------------------------------------------------- igg
CASES += [
    ("igg_lln-age", igg.igg_lln, {"__args__": (-1,)}, "age_years"),
    ("igg_lln-str", igg.igg_lln, {"__args__": ("5",)}, "age_years"),
    ("replacement_trigger-value", igg.replacement_trigger, {"__args__": (-5,)}, "igg_mg_dl"),
    (
        "replacement_trigger-flag",
        igg.replacement_trigger,
        {"__args__": (300,), "recurrent_infections": 1},
        "recurrent_infections",
    ),
    (
        "replacement_trigger-settings",
        igg.replacement_trigger,
        {"__args__": (300,), "settings": "aaaai"},
        "settings",
    ),
    ("ivig_episodes-days", igg.ivig_episodes, {"__args__": ([1.5],)}, "dose_days"),
    ("ivig_episodes-str", igg.ivig_episodes, {"__args__": ("30",)}, "dose_days"),
    (
        "summarise_igg-value",
        igg.summarise_igg,
        {"__args__": ([30, 60], [300, -1]), "age_years": [5, 5]},
        "igg_mg_dl",
    ),
    (
        "summarise_igg-length",
        igg.summarise_igg,
        {"__args__": ([30, 60], [300]), "age_years": [5, 5]},
        "igg_mg_dl",
    ),
    (
        "summarise_igg-order",
        igg.summarise_igg,
        {"__args__": ([60, 30], [300, 300]), "age_years": [5, 5]},
        "days",
    ),
    (
        "summarise_igg-age",
        igg.summarise_igg,
        {"__args__": ([30, 60], [300, 300]), "age_years": [5, 200]},
        "age_years",
    ),
    (
        "summarise_igg-lln",
        igg.summarise_igg,
        {"__args__": ([30, 60], [300, 300]), "age_years": [5, 5], "lln_mg_dl": [0, 0]},
        "lln_mg_dl",
    ),
    (
        "summarise_igg-ivig",
        igg.summarise_igg,
        {"__args__": ([30], [300]), "age_years": [5], "ivig_days": ["x"]},
        "ivig_days",
    ),
    ("IggSettings-rule", igg.IggSettings, {"trigger_rule": "ebmt"}, "trigger_rule"),
    ("IggSettings-threshold", igg.IggSettings, {"trigger_below_mg_dl": 0}, "trigger_below_mg_dl"),
    ("IggSettings-method", igg.IggSettings, {"method": "spline"}, "method"),
    ("IggSettings-exclusion", igg.IggSettings, {"exclusion_days": -1}, "exclusion_days"),
]

# --------------------------------------------------------------------------- followup
D = dt.date(2025, 1, 10)
SCHED = followup.build_schedule(D)
CASES += [
    (
        "build_schedule-date",
        followup.build_schedule,
        {"__args__": ("2025-01-10",)},
        "infusion_date",
    ),
    (
        "build_schedule-datetime",
        followup.build_schedule,
        {"__args__": (dt.datetime(2025, 1, 1),)},
        "infusion_date",
    ),
    (
        "build_schedule-vector",
        followup.build_schedule,
        {"__args__": (D,), "vector_type": "aav"},
        "vector_type",
    ),
    (
        "build_schedule-settings",
        followup.build_schedule,
        {"__args__": (D,), "settings": {}},
        "settings",
    ),
    ("add_months-date", followup.add_months, {"__args__": ("2025-01-10", 3)}, "when"),
    ("add_months-months", followup.add_months, {"__args__": (D, -1)}, "months"),
    (
        "visit_status-today",
        followup.visit_status,
        {"__args__": (SCHED,), "done": {}, "today": "2025-05-01"},
        "today",
    ),
    (
        "visit_status-code",
        followup.visit_status,
        {"__args__": (SCHED,), "done": {"M4": D}, "today": D},
        "done",
    ),
    (
        "visit_status-done-date",
        followup.visit_status,
        {"__args__": (SCHED,), "done": {"M3": "2025-04-10"}, "today": D},
        "done",
    ),
    (
        "LtfuSettings-years",
        followup.LtfuSettings,
        {"years_by_vector": {"integrating": 0, "non_integrating": 5, "unknown": 15}},
        "years_by_vector",
    ),
    (
        "LtfuSettings-missing",
        followup.LtfuSettings,
        {"years_by_vector": {"integrating": 15}},
        "years_by_vector",
    ),
    ("LtfuSettings-window", followup.LtfuSettings, {"window_days": -1}, "window_days"),
]

# --------------------------------------------------------------------------- dosing additions
CASES += [
    ("tocilizumab_dose-weight", dosing.tocilizumab_dose, {"weight_kg": 0}, "weight_kg"),
    ("tocilizumab_dose-weight-str", dosing.tocilizumab_dose, {"weight_kg": "70"}, "weight_kg"),
    (
        "tocilizumab_dose-hours",
        dosing.tocilizumab_dose,
        {"weight_kg": 70, "hours_since_prior_doses": (-1,)},
        "hours_since_prior_doses",
    ),
    (
        "tocilizumab_dose-hours-str",
        dosing.tocilizumab_dose,
        {"weight_kg": 70, "hours_since_prior_doses": "8"},
        "hours_since_prior_doses",
    ),
    (
        "tocilizumab_dose-age",
        dosing.tocilizumab_dose,
        {"weight_kg": 70, "age_years": -1},
        "age_years",
    ),
    (
        "tocilizumab_dose-limit",
        dosing.tocilizumab_dose,
        {"weight_kg": 70, "limit_3_in_24h": 1},
        "limit_3_in_24h",
    ),
    (
        "schwartz_bedside_egfr-height",
        dosing.schwartz_bedside_egfr,
        {"height_cm": 10, "creatinine": 0.5},
        "height_cm",
    ),
    (
        "schwartz_bedside_egfr-cr",
        dosing.schwartz_bedside_egfr,
        {"height_cm": 120, "creatinine": 0},
        "creatinine",
    ),
    (
        "schwartz_bedside_egfr-cr-umol",
        dosing.schwartz_bedside_egfr,
        {"height_cm": 120, "creatinine": 0.5, "creatinine_unit": "umol/L"},
        "creatinine",
    ),
    (
        "schwartz_bedside_egfr-unit",
        dosing.schwartz_bedside_egfr,
        {"height_cm": 120, "creatinine": 0.5, "creatinine_unit": "mmol/L"},
        "creatinine_unit",
    ),
    (
        "schwartz_bedside_egfr-age",
        dosing.schwartz_bedside_egfr,
        {"height_cm": 120, "creatinine": 0.5, "age_years": "5"},
        "age_years",
    ),
    (
        "lymphodepletion-creatinine-and-crcl",
        dosing.lymphodepletion,
        {
            "height_cm": 150,
            "weight_kg": 40,
            "creatinine": 1.0,
            "crcl_ml_min": 60,
            "renal_rule": "fludara_iv_label",
        },
        "creatinine",
    ),
    (
        "lymphodepletion-creatinine-no-rule",
        dosing.lymphodepletion,
        {"height_cm": 150, "weight_kg": 40, "creatinine": 1.0},
        "renal_rule",
    ),
]

# --------------------------------------------------------------------------- course_safety
for _fn in (course_safety.course_ticaht, course_safety.course_iec_hs,
            course_safety.course_infections, course_safety.course_igg):  # fmt: skip
    CASES.append((f"{_fn.__name__}-course", _fn, {"__args__": ("RM-001",)}, "course"))
CASES += [
    (
        "course_followup-course",
        course_safety.course_followup,
        {"__args__": (None,), "today": D},
        "course",
    ),
]
