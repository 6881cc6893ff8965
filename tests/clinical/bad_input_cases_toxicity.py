"""Bad-input cases for the toxicity calculators and episodes (data, not tests).

``CASES`` rows are ``(case id, function, kwargs, expected field)``. Calling ``function(**kwargs)``
— or ``function(*kwargs["__args__"], **rest)`` for positional arguments — must raise
:class:`immunoreset.errors.InvalidInput` whose ``.field`` equals the expected field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from immunoreset.clinical import crs, ctcae, episodes, hematotox, icaht, icans
from immunoreset.clinical.settings import ToxicitySettings

NAN = float("nan")
Case = tuple[str, Callable[..., Any], dict[str, Any], str]
CASES: list[Case] = []


def _add(fn: Callable[..., Any], base: dict[str, Any], field: str, values: dict[str, Any]) -> None:
    for tag, value in values.items():
        CASES.append((f"{fn.__name__}-{field}-{tag}", fn, base | {field: value}, field))


def _numeric(
    fn: Callable[..., Any],
    base: dict[str, Any],
    field: str,
    out_of_range: tuple[Any, ...],
    *,
    none_allowed: bool = False,
) -> None:
    """Out-of-range, wrong-type ("7", True, list), NaN and (unless allowed) None cases."""
    bad: dict[str, Any] = {f"range{i}": v for i, v in enumerate(out_of_range)}
    bad |= {"str": "7", "bool": True, "nan": NAN, "list": [1]}
    if not none_allowed:
        bad["none"] = None
    _add(fn, base, field, bad)


def _flag(fn: Callable[..., Any], base: dict[str, Any], field: str) -> None:
    _add(fn, base, field, {"int": 1, "str": "yes", "none": None})


def _word(fn: Callable[..., Any], base: dict[str, Any], field: str) -> None:
    _add(fn, base, field, {"unknown": "severe", "int": 1, "none": None})


# --------------------------------------------------------------------------- crs
CRS = dict(temperature_c=38.5)
_numeric(crs.grade_crs, CRS, "temperature_c", (24.9, 45.1, -1), none_allowed=True)
_flag(crs.grade_crs, CRS, "hypotension")
_add(
    crs.grade_crs,
    CRS,
    "vasopressors",
    {"str": "norepinephrine", "unknown": ["adrenaline"], "int": [1], "none": None},
)
_word(crs.grade_crs, CRS, "oxygen_device")
_numeric(crs.grade_crs, CRS, "oxygen_flow_l_min", (-0.1, 80.1), none_allowed=True)
CASES.append(
    ("grade_crs-nasal-cannula-no-flow", crs.grade_crs, CRS | {"oxygen_device": "nasal_cannula"},
     "oxygen_flow_l_min")
)  # fmt: skip
_flag(crs.grade_crs, CRS, "fever_masked")
_flag(crs.grade_crs, CRS, "died_of_crs")

BP = dict(systolic_bp_mmhg=90, age_years=30)
_numeric(crs.is_hypotensive, BP, "systolic_bp_mmhg", (19, 301))
_numeric(crs.is_hypotensive, BP, "age_years", (-1, 131, 0.5))
_add(crs.is_hypotensive, BP, "settings", {"dict": {"hypotension_under_1_year": "use_70"}})

CRS_ARR = dict(
    temperature_c=[38.0, 39.0],
    hypotension=[False, True],
    n_vasopressors=[0, 1],
    vasopressin=[False, False],
    oxygen_device=[0, 0],
    oxygen_flow_l_min=[NAN, NAN],
)
_add(crs.grade_crs_array, CRS_ARR, "temperature_c", {"range": [38.0, 50.0], "str": ["a", "b"]})
_add(crs.grade_crs_array, CRS_ARR, "hypotension", {"int": [0, 1], "length": [True]})
_add(crs.grade_crs_array, CRS_ARR, "n_vasopressors", {"neg": [0, -1], "float": [0.5, 1.0]})
_add(crs.grade_crs_array, CRS_ARR, "vasopressin", {"length": [False, False, False]})
_add(crs.grade_crs_array, CRS_ARR, "oxygen_device", {"code": [0, 10], "2d": [[0, 0]]})
_add(crs.grade_crs_array, CRS_ARR, "oxygen_flow_l_min", {"range": [NAN, 90.0]})
_add(crs.grade_crs_array, CRS_ARR, "fever_masked", {"int": [1, 0]})
_add(crs.grade_crs_array, CRS_ARR, "died_of_crs", {"length": [False]})

# --------------------------------------------------------------------------- icans
ICE = dict(orientation=4, naming=3, following_commands=1, writing=1, attention=1)
for field, hi in icans.ICE_ITEMS.items():
    _numeric(icans.compute_ice, ICE, field, (-1, hi + 1, 0.5), none_allowed=True)
_add(
    icans.compute_capd,
    {},
    "items",
    {
        "str": {"__args__": ("01234567",)},
        "short": {"__args__": ([1] * 7,)},
        "range": {"__args__": ([5] * 8,)},
        "neg": {"__args__": ([-1] * 8,)},
        "bool": {"__args__": ([True] * 8,)},
        "float": {"__args__": ([1.5] * 8,)},
        "none": {"__args__": (None,)},
    },
)
# compute_capd cases carry their positional args in the value: unwrap them.
CASES[-7:] = [(case, fn, kw["items"], field) for case, fn, kw, field in CASES[-7:]]

ICANS = dict(age_years=30, ice_score=9)
_numeric(icans.grade_icans, ICANS, "age_years", (-1, 131))
_numeric(icans.grade_icans, ICANS, "ice_score", (-1, 11, 8.5), none_allowed=True)
_numeric(icans.grade_icans, dict(age_years=8), "capd_score", (-1, 33, 8.5), none_allowed=True)
_flag(icans.grade_icans, ICANS, "unable_to_assess")
_word(icans.grade_icans, ICANS, "consciousness")
_word(icans.grade_icans, ICANS, "seizure")
_flag(icans.grade_icans, ICANS, "motor_weakness")
_word(icans.grade_icans, ICANS, "cerebral_edema")
_flag(icans.grade_icans, ICANS, "died_of_icans")
_add(icans.grade_icans, ICANS, "settings", {"str": "ncit"})
CASES += [
    ("grade_icans-ice-below-12", icans.grade_icans, dict(age_years=11.9, ice_score=9), "ice_score"),
    ("grade_icans-both-scales", icans.grade_icans, ICANS | {"capd_score": 3}, "capd_score"),
    ("ice_domain_grade-range", icans.ice_domain_grade, {"__args__": (11,)}, "ice_score"),
    ("ice_domain_grade-str", icans.ice_domain_grade, {"__args__": ("9",)}, "ice_score"),
    ("ice_domain_grade-flag", icans.ice_domain_grade, {"__args__": (0,), "unarousable": "y"},
     "unarousable"),
    ("capd_domain_grade-range", icans.capd_domain_grade, {"__args__": (33,)}, "capd_score"),
    ("capd_domain_grade-bool", icans.capd_domain_grade, {"__args__": (True,)}, "capd_score"),
]  # fmt: skip

ICANS_ARR = dict(
    age_years=[30.0],
    ice_score=[9.0],
    capd_score=[NAN],
    unable_to_assess=[False],
    consciousness=[0],
    seizure=[0],
    motor_weakness=[False],
    cerebral_edema=[0],
)
_add(icans.grade_icans_array, ICANS_ARR, "age_years", {"range": [200.0], "str": ["30"]})
_add(icans.grade_icans_array, ICANS_ARR, "ice_score", {"range": [11.0], "frac": [8.5]})
_add(icans.grade_icans_array, ICANS_ARR, "capd_score", {"length": [1.0, 2.0]})
_add(icans.grade_icans_array, ICANS_ARR, "unable_to_assess", {"int": [0]})
_add(icans.grade_icans_array, ICANS_ARR, "consciousness", {"code": [5]})
_add(icans.grade_icans_array, ICANS_ARR, "seizure", {"code": [-1]})
_add(icans.grade_icans_array, ICANS_ARR, "motor_weakness", {"float": [0.0]})
_add(icans.grade_icans_array, ICANS_ARR, "cerebral_edema", {"code": [3]})
_add(icans.grade_icans_array, ICANS_ARR, "died_of_icans", {"length": [False, False]})

# --------------------------------------------------------------------------- icaht
for fn in (icaht.grade_early_icaht, icaht.grade_late_icaht):
    good = ([1, 2], [300, 400])
    CASES += [
        (f"{fn.__name__}-days-str", fn, {"__args__": ("1,2", [300, 400])}, "days"),
        (f"{fn.__name__}-days-nan", fn, {"__args__": ([1, NAN], [300, 400])}, "days"),
        (f"{fn.__name__}-days-bool", fn, {"__args__": ([True, 2], [300, 400])}, "days"),
        (f"{fn.__name__}-days-range", fn, {"__args__": ([1, 1e6], [300, 400])}, "days"),
        (f"{fn.__name__}-days-words", fn, {"__args__": (["a", "b"], [300, 400])}, "days"),
        (f"{fn.__name__}-anc-negative", fn, {"__args__": ([1, 2], [300, -1])}, "anc_per_ul"),
        (f"{fn.__name__}-anc-length", fn, {"__args__": ([1, 2], [300])}, "anc_per_ul"),
        (f"{fn.__name__}-anc-nan", fn, {"__args__": ([1, 2], [300, NAN])}, "anc_per_ul"),
        (f"{fn.__name__}-anc-huge", fn, {"__args__": ([1, 2], [300, 3e5])}, "anc_per_ul"),
        (f"{fn.__name__}-anc-none", fn, {"__args__": ([1, 2], None)}, "anc_per_ul"),
        (f"{fn.__name__}-censor-str", fn, {"__args__": good, "censor_day": "5"}, "censor_day"),
        (f"{fn.__name__}-settings", fn, {"__args__": good, "settings": None}, "settings"),
    ]
CASES += [
    ("grade_early_icaht-mode", icaht.grade_early_icaht,
     {"__args__": ([1], [300]), "duration_mode": "longest"}, "duration_mode"),
    ("grade_icaht_many-patient-float", icaht.grade_icaht_many,
     {"__args__": ([1.5], [1], [300])}, "patient"),
    ("grade_icaht_many-days-length", icaht.grade_icaht_many,
     {"__args__": ([1, 1], [1], [300, 300])}, "days"),
    ("grade_icaht_many-anc-negative", icaht.grade_icaht_many,
     {"__args__": ([1], [1], [-5])}, "anc_per_ul"),
    ("grade_icaht_many-mode", icaht.grade_icaht_many,
     {"__args__": ([1], [1], [300]), "duration_mode": "max"}, "duration_mode"),
]  # fmt: skip
for tag, value in {"neg": -1, "huge": 3e5, "str": "500", "bool": False, "nan": NAN}.items():
    CASES.append(
        (f"late_anc_grade-{tag}", icaht.late_anc_grade, {"__args__": (value,)}, "anc_per_ul")
    )

# --------------------------------------------------------------------------- hematotox
HT = dict(
    platelets_per_ul=200_000,
    anc_per_ul=3000,
    hemoglobin_g_dl=12.0,
    crp_mg_dl=0.5,
    ferritin_ng_ml=300,
)
for field, (_, maximum, _, _) in hematotox.HEMATOTOX_VARIABLES.items():
    _numeric(hematotox.score_hematotox, HT, field, (-1, maximum * 2))
    _numeric(hematotox.score_hematotox_partial, HT, field, (-1, maximum * 2), none_allowed=True)
_add(hematotox.score_hematotox, HT, "settings", {"str": "lower_points"})

# --------------------------------------------------------------------------- ctcae
for fn in (ctcae.grade_lab, ctcae.grade_lab_result):
    CASES += [
        (f"{fn.__name__}-term-unknown", fn, {"__args__": ("neutropenia", 500)}, "term"),
        (f"{fn.__name__}-term-int", fn, {"__args__": (1, 500)}, "term"),
        (f"{fn.__name__}-value-neg", fn, {"__args__": ("anemia", -1)}, "value"),
        (f"{fn.__name__}-value-huge", fn, {"__args__": ("anemia", 30)}, "value"),
        (f"{fn.__name__}-value-str", fn, {"__args__": ("anemia", "8")}, "value"),
        (f"{fn.__name__}-value-bool", fn, {"__args__": ("anemia", True)}, "value"),
        (f"{fn.__name__}-value-nan", fn, {"__args__": ("anemia", NAN)}, "value"),
        (f"{fn.__name__}-lln-zero", fn, {"__args__": ("anemia", 9), "lln": 0}, "lln"),
        (f"{fn.__name__}-lln-str", fn, {"__args__": ("anemia", 9), "lln": "12"}, "lln"),
        (f"{fn.__name__}-version", fn, {"__args__": ("anemia", 9), "version": "4.0"}, "version"),
        (f"{fn.__name__}-version-num", fn, {"__args__": ("anemia", 9), "version": 5.0}, "version"),
    ]
FN = dict(anc_per_ul=800, temperature_c=38.5)
_numeric(ctcae.is_febrile_neutropenia, FN, "anc_per_ul", (-1, 3e5))
_numeric(ctcae.is_febrile_neutropenia, FN, "temperature_c", (24, 46))
_flag(ctcae.is_febrile_neutropenia, FN, "sustained_38_over_1h")
CASES.append(
    ("is_febrile_neutropenia-sustained-afebrile", ctcae.is_febrile_neutropenia,
     dict(anc_per_ul=800, temperature_c=37.0, sustained_38_over_1h=True), "sustained_38_over_1h")
)  # fmt: skip

# --------------------------------------------------------------------------- episodes, settings
for fn in (episodes.daily_grades, episodes.crs_episodes, episodes.icans_episodes,
           episodes.course_toxicity):  # fmt: skip
    CASES.append((f"{fn.__name__}-course", fn, {"__args__": ("RM-001",)}, "course"))
    CASES.append((f"{fn.__name__}-course-none", fn, {"__args__": (None,)}, "course"))
CASES += [
    ("ToxicitySettings-capd", ToxicitySettings, {"capd_age_rule": "under_13"}, "capd_age_rule"),
    ("ToxicitySettings-gap", ToxicitySettings, {"icaht_max_gap_days": 0}, "icaht_max_gap_days"),
    ("ToxicitySettings-late", ToxicitySettings, {"late_icaht_last_day": 30}, "late_icaht_last_day"),
    ("ToxicitySettings-single", ToxicitySettings, {"late_icaht_single_value": "liang"},
     "late_icaht_single_value"),
    ("ToxicitySettings-cut", ToxicitySettings, {"hematotox_on_cutoff": True},
     "hematotox_on_cutoff"),
    ("ToxicitySettings-never", ToxicitySettings, {"icaht_never_recovered": 1},
     "icaht_never_recovered"),
    ("ToxicitySettings-infant", ToxicitySettings, {"hypotension_under_1_year": "use_60"},
     "hypotension_under_1_year"),
]  # fmt: skip

# --------------------------------------------------------------------------- issue #12 corrections
CASES += [
    ("grade_crs-room-air-with-flow", crs.grade_crs, CRS | {"oxygen_flow_l_min": 2.0},
     "oxygen_flow_l_min"),
    ("grade_crs-nasal-cannula-zero-flow", crs.grade_crs,
     CRS | {"oxygen_device": "nasal_cannula", "oxygen_flow_l_min": 0.0}, "oxygen_flow_l_min"),
    ("grade_crs-hfnc-zero-flow", crs.grade_crs,
     CRS | {"oxygen_device": "high_flow_nasal_cannula", "oxygen_flow_l_min": 0.0},
     "oxygen_flow_l_min"),
    ("grade_crs-settings", crs.grade_crs, CRS | {"settings": "default"}, "settings"),
    ("grade_crs_array-room-air-flow", crs.grade_crs_array,
     CRS_ARR | {"oxygen_flow_l_min": [NAN, 3.0]}, "oxygen_flow_l_min"),
    ("grade_icans-unable-while-awake", icans.grade_icans,
     dict(age_years=30, unable_to_assess=True), "unable_to_assess"),
    ("grade_icans_array-unable-while-awake", icans.grade_icans_array,
     ICANS_ARR | {"ice_score": [NAN], "unable_to_assess": [True]}, "unable_to_assess"),
    ("score_capd_item-item", icans.score_capd_item, {"__args__": ("calm", "never")}, "item"),
    ("score_capd_item-answer", icans.score_capd_item, {"__args__": ("restless", "seldom")},
     "restless"),
    ("score_capd_item-answer-int", icans.score_capd_item, {"__args__": ("restless", 2)},
     "restless"),
    ("score_capd_answers-not-mapping", icans.score_capd_answers, {"__args__": (["never"] * 8,)},
     "answers"),
    ("score_capd_answers-unknown-item", icans.score_capd_answers,
     {"__args__": (dict.fromkeys(icans.CAPD_ITEMS, "never") | {"calm": "never"},)}, "answers"),
    ("score_capd_answers-missing-item", icans.score_capd_answers,
     {"__args__": (dict.fromkeys(icans.CAPD_ITEMS[1:], "never"),)}, "eye_contact"),
    ("score_capd_answers-bad-answer", icans.score_capd_answers,
     {"__args__": (dict.fromkeys(icans.CAPD_ITEMS, "never") | {"underactive": "2"},)},
     "underactive"),
    ("grade_early_icaht-implausible", icaht.grade_early_icaht, {"__args__": ([1], [1.2])},
     "anc_per_ul"),
    ("grade_early_icaht-unit", icaht.grade_early_icaht,
     {"__args__": ([1], [1.2]), "unit": "bananas"}, "anc_unit"),
    ("grade_early_icaht-unit-dimension", icaht.grade_early_icaht,
     {"__args__": ([1], [1.2]), "unit": "g/dL"}, "anc_unit"),
    ("grade_early_icaht-end-kind", icaht.grade_early_icaht,
     {"__args__": ([1], [300]), "followup_end_day": 5, "followup_end": "lost"}, "followup_end"),
    ("grade_early_icaht-end-day", icaht.grade_early_icaht,
     {"__args__": ([1], [300]), "followup_end_day": "5", "followup_end": "death"},
     "followup_end_day"),
    ("grade_late_icaht-implausible", icaht.grade_late_icaht, {"__args__": ([40, 50], [0.9, 1])},
     "anc_per_ul"),
    ("grade_lab-implausible", ctcae.grade_lab, {"__args__": ("neutrophil_count_decreased", 1.2)},
     "value"),
    ("grade_lab-lln-implausible", ctcae.grade_lab,
     {"__args__": ("neutrophil_count_decreased", 1200), "lln": 1.8}, "lln"),
    ("grade_lab-unit", ctcae.grade_lab,
     {"__args__": ("neutrophil_count_decreased", 1.2), "unit": "mg/dL"}, "unit"),
    ("grade_lab_result-unit-unknown", ctcae.grade_lab_result,
     {"__args__": ("platelet_count_decreased", 25), "unit": "k"}, "unit"),
    ("score_hematotox-plt-implausible", hematotox.score_hematotox,
     HT | {"platelets_per_ul": 60}, "platelets_per_ul"),
    ("score_hematotox-units-key", hematotox.score_hematotox,
     HT | {"units": {"plt": "10^9/L"}}, "units"),
    ("score_hematotox-units-type", hematotox.score_hematotox, HT | {"units": "10^9/L"}, "units"),
    ("score_hematotox_partial-anc-implausible", hematotox.score_hematotox_partial,
     HT | {"anc_per_ul": 1.5}, "anc_per_ul"),
    ("ToxicitySettings-masking-agent", ToxicitySettings,
     {"fever_masking_agents": ("ruxolitinib",)}, "fever_masking_agents"),
    ("ToxicitySettings-masking-str", ToxicitySettings, {"fever_masking_agents": "tocilizumab"},
     "fever_masking_agents"),
    ("ToxicitySettings-masking-days", ToxicitySettings, {"fever_masking_days": -1},
     "fever_masking_days"),
    ("ToxicitySettings-dobutamine", ToxicitySettings, {"count_dobutamine_as_vasopressor": 1},
     "count_dobutamine_as_vasopressor"),
    ("ToxicitySettings-counts", ToxicitySettings, {"implausible_counts": "guess"},
     "implausible_counts"),
]  # fmt: skip
