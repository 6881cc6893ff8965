"""Bad-input cases for the disease-activity scores and dosing calculators (data, not tests).

``CASES`` rows are ``(case id, function, kwargs, expected field)``. Calling ``function(**kwargs)``
— or ``function(*kwargs["__args__"])`` for a positional collection — must raise
:class:`immunoreset.errors.InvalidInput` whose ``.field`` equals the expected field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from immunoreset.clinical import cmas, criss, dosing, lupus_remission, mmt8, mrss, sledai
from immunoreset.clinical import myositis_response as mr

NAN = float("nan")
INF = float("inf")

Case = tuple[str, Callable[..., Any], dict[str, Any], str]
CASES: list[Case] = []


def _numeric(
    fn: Callable[..., Any],
    base: dict[str, Any],
    field: str,
    out_of_range: tuple[Any, ...],
    *,
    none_allowed: bool = False,
) -> None:
    """Add out-of-range, wrong-type ("7", True, list), None (unless allowed) and NaN cases."""
    bad: list[tuple[str, Any]] = [(f"range{i}", v) for i, v in enumerate(out_of_range)]
    bad += [("str", "7"), ("bool", True), ("nan", NAN), ("list", [1])]
    if not none_allowed:
        bad.append(("none", None))
    for tag, value in bad:
        CASES.append((f"{fn.__name__}-{field}-{tag}", fn, base | {field: value}, field))


def _flag(fn: Callable[..., Any], base: dict[str, Any], field: str) -> None:
    """Add wrong-type cases for a boolean field."""
    for tag, value in (("int", 1), ("str", "yes"), ("none", None), ("nan", NAN)):
        CASES.append((f"{fn.__name__}-{field}-{tag}", fn, base | {field: value}, field))


def _args(fn: Callable[..., Any], field: str, values: dict[str, Any]) -> None:
    """Add cases for a function taking one positional collection."""
    for tag, value in values.items():
        CASES.append((f"{fn.__name__}-{tag}", fn, {"__args__": (value,)}, field))


# ----------------------------------------------------------------------------------- SLEDAI
_DESCRIPTOR_BAD = {
    "unknown-word": ["headache"],
    "wrong-case": ["Seizure"],
    "duplicate": ["rash", "rash"],
    "bare-string": "seizure",
    "int-item": [8],
    "none": None,
    "number": 8,
    "mapping": {"seizure": 1},
}
for _fn in (
    sledai.score_sledai2k,
    sledai.score_clinical_sledai,
    lupus_remission.major_organ_descriptors,
):
    _args(_fn, "descriptors", _DESCRIPTOR_BAD)
for _tag, _value in _DESCRIPTOR_BAD.items():
    CASES.append(
        (f"sledai2k_result-{_tag}", sledai.sledai2k_result, {"descriptors": _value}, "descriptors")
    )
for _tag, _value in {"20": 20, "str": "10", "bool": True, "nan": NAN, "none": None}.items():
    CASES.append(
        (
            f"sledai2k_result-window_days-{_tag}",
            sledai.sledai2k_result,
            {"descriptors": [], "window_days": _value},
            "window_days",
        )
    )
    CASES.append(
        (
            f"descriptors_in_window-window_days-{_tag}",
            sledai.descriptors_in_window,
            {"days_before_visit": {}, "window_days": _value},
            "window_days",
        )
    )
CASES += [
    (
        "sledai2k_result-not_assessed-unknown",
        sledai.sledai2k_result,
        {"descriptors": [], "not_assessed": ["c3"]},
        "not_assessed",
    ),
    (
        "sledai2k_result-not_assessed-also-present",
        sledai.sledai2k_result,
        {"descriptors": ["rash"], "not_assessed": ["rash"]},
        "not_assessed",
    ),
    (
        "sledai2k_result-days_before_visit-repeats-present",
        sledai.sledai2k_result,
        {"descriptors": ["rash"], "days_before_visit": {"rash": 3}},
        "days_before_visit",
    ),
    (
        "descriptors_in_window-unknown-word",
        sledai.descriptors_in_window,
        {"days_before_visit": {"fit": 3}},
        "days_before_visit",
    ),
    (
        "descriptors_in_window-not-mapping",
        sledai.descriptors_in_window,
        {"days_before_visit": ["seizure"]},
        "days_before_visit",
    ),
    (
        "descriptors_in_window-negative-days",
        sledai.descriptors_in_window,
        {"days_before_visit": {"seizure": -1}},
        "days_before_visit",
    ),
    (
        "descriptors_in_window-nan-days",
        sledai.descriptors_in_window,
        {"days_before_visit": {"seizure": NAN}},
        "days_before_visit",
    ),
    (
        "descriptors_in_window-str-days",
        sledai.descriptors_in_window,
        {"days_before_visit": {"seizure": "3"}},
        "days_before_visit",
    ),
]
_numeric(sledai.is_fever, {}, "temperature_c", (24.9, 45.1, INF))
_flag(sledai.is_fever, {"temperature_c": 39.0}, "infectious_cause")
_numeric(sledai.is_thrombocytopenia, {}, "platelets_per_ul", (-1, 3_000_001))
_flag(sledai.is_thrombocytopenia, {"platelets_per_ul": 50_000}, "drug_cause")
_numeric(sledai.is_leukopenia, {}, "wbc_per_ul", (-1, 500_001))
_flag(sledai.is_leukopenia, {"wbc_per_ul": 2_000}, "drug_cause")
_numeric(sledai.is_proteinuria, {}, "protein_g_per_24h", (-0.1, 51))
_numeric(sledai.is_hematuria, {}, "rbc_per_hpf", (-1, 1001))
_flag(sledai.is_hematuria, {"rbc_per_hpf": 10}, "other_cause")
_numeric(sledai.is_pyuria, {}, "wbc_per_hpf", (-1, 1001))
_flag(sledai.is_pyuria, {"wbc_per_hpf": 10}, "infection")
_numeric(sledai.is_arthritis, {}, "inflamed_joints", (-1, 101, 2.5))
for _tag, _value in {"unknown": "two_or_more", "none": None, "int": 2}.items():
    CASES.append(
        (
            f"is_arthritis-definition-{_tag}",
            sledai.is_arthritis,
            {"inflamed_joints": 2, "definition": _value},
            "definition",
        )
    )
for _field, _bad in {
    "temperature_c": (50,),
    "platelets_per_ul": (-5,),
    "wbc_per_ul": (-5,),
    "protein_g_per_24h": (60,),
    "rbc_per_hpf": (-1,),
    "wbc_per_hpf": (2000,),
}.items():
    for _i, _v in enumerate((*_bad, "7", True, NAN)):
        CASES.append(
            (f"lab_descriptors-{_field}-{_i}", sledai.lab_descriptors, {_field: _v}, _field)
        )

# ------------------------------------------------------------------------- DORIS and LLDAS
_DORIS = {"clinical_sledai": 0, "physician_global": 0.2, "prednisone_mg_day": 0}
_LLDAS = {
    "sledai2k": 2,
    "major_organ_activity": False,
    "new_activity": False,
    "physician_global": 0.5,
    "prednisone_mg_day": 5,
}
for _fn in (lupus_remission.is_doris_remission, lupus_remission.doris_result):
    _numeric(_fn, _DORIS, "clinical_sledai", (-1, 102, 1.5))
    _numeric(_fn, _DORIS, "physician_global", (-0.1, 3.1))
    _numeric(_fn, _DORIS, "prednisone_mg_day", (-1, 2001))
    _flag(_fn, _DORIS, "stable_maintenance")
for _fn in (lupus_remission.is_lldas, lupus_remission.lldas_result):
    _numeric(_fn, _LLDAS, "sledai2k", (-1, 106, 2.5))
    _flag(_fn, _LLDAS, "major_organ_activity")
    _flag(_fn, _LLDAS, "new_activity")
    _numeric(_fn, _LLDAS, "physician_global", (-0.1, 3.1))
    _numeric(_fn, _LLDAS, "prednisone_mg_day", (-1, 2001))
    _flag(_fn, _LLDAS, "standard_maintenance")

# --------------------------------------------------------------------------------------- CMAS
_CMAS_MAX = [5, 2, 5, 3, 6, 3, 3, 4, 3, 4, 4, 4, 3, 3]


def _cmas_with(index: int, value: Any) -> list[Any]:
    items: list[Any] = list(_CMAS_MAX)
    items[index] = value
    return items


_CMAS_BAD = {
    "too-short": _CMAS_MAX[:13],
    "too-long": [*_CMAS_MAX, 0],
    "string": "5" * 14,
    "none": None,
    "mapping": {"head_elevation": 5},
    "number": 52,
    "item1-above-5": _cmas_with(0, 6),
    "item4-above-3": _cmas_with(3, 4),
    "item8-above-4": _cmas_with(7, 5),
    "item2-negative": _cmas_with(1, -1),
    "item-str": _cmas_with(4, "6"),
    "item-bool": _cmas_with(4, True),
    "item-nan": _cmas_with(4, NAN),
    "item-fraction": _cmas_with(4, 2.5),
}
_args(cmas.cmas_result, "items", _CMAS_BAD)
_args(cmas.score_cmas, "items", _CMAS_BAD | {"item-missing": _cmas_with(9, None)})
_numeric(cmas.cmas_time_item, {}, "seconds", (-1, 3601))
for _tag, _value in {"2": 2, "str": "1", "bool": True, "none": None, "float": 1.0}.items():
    CASES.append(
        (
            f"cmas_time_item-item-{_tag}",
            cmas.cmas_time_item,
            {"seconds": 10, "item": _value},
            "item",
        )
    )
_args(
    cmas.cmas_situps_item,
    "types_performed",
    {
        "unknown": ["crunch"],
        "duplicate": ["hands_on_thighs", "hands_on_thighs"],
        "bare-string": "hands_on_thighs",
        "number": 4,
        "none": None,
        "int-item": [1],
    },
)

# --------------------------------------------------------------------------------------- MMT8
_MMT8 = dict.fromkeys(mmt8.MMT8_GROUPS, 10)
_BILAT = dict.fromkeys(mmt8.BILATERAL_KEYS, 10)
_MMT8_BAD = {
    "unknown-group": _MMT8 | {"triceps": 10},
    "missing-group": {k: v for k, v in _MMT8.items() if k != "biceps"},
    "above-10": _MMT8 | {"deltoid": 11},
    "negative": _MMT8 | {"deltoid": -1},
    "fraction": _MMT8 | {"deltoid": 9.5},
    "str": _MMT8 | {"deltoid": "9"},
    "bool": _MMT8 | {"deltoid": True},
    "nan": _MMT8 | {"deltoid": NAN},
    "list": [10] * 8,
    "none": None,
}
_args(mmt8.score_mmt8, "scores", _MMT8_BAD)
_args(
    mmt8.score_mmt8_bilateral,
    "scores",
    {
        "unilateral-keys": _MMT8,
        "above-10": _BILAT | {"left_deltoid": 11},
        "str": _BILAT | {"left_deltoid": "9"},
        "missing-side": {k: v for k, v in _BILAT.items() if k != "right_quadriceps"},
        "none": None,
    },
)
for _tag, _value in _MMT8_BAD.items():
    if _tag != "missing-group":
        CASES.append((f"mmt8_result-{_tag}", mmt8.mmt8_result, {"scores": _value}, "scores"))
CASES.append(
    ("mmt8_result-bilateral-int", mmt8.mmt8_result, {"scores": _MMT8, "bilateral": 1}, "bilateral")
)

# ---------------------------------------------------------------------------------------- mRSS
_MRSS = dict.fromkeys(mrss.MRSS_SITES, 1)
_MRSS_BAD = {
    "unknown-site": _MRSS | {"back": 1},
    "above-3": _MRSS | {"face": 4},
    "negative": _MRSS | {"abdomen": -1},
    "fraction": _MRSS | {"face": 1.5},
    "str": _MRSS | {"face": "2"},
    "bool": _MRSS | {"face": True},
    "nan": _MRSS | {"face": NAN},
    "list": [1] * 17,
    "none": None,
}
_args(mrss.score_mrss, "sites", _MRSS_BAD | {"missing-site": {"face": 1}})
_args(mrss.mrss_result, "sites", _MRSS_BAD)

# ------------------------------------------------------------------------ myositis response
_PCT = {"baseline": 5, "followup": 3, "minimum": 0, "maximum": 10, "higher_is_better": False}
_numeric(mr.percent_improvement, _PCT, "baseline", (-0.1, 10.1))
_numeric(mr.percent_improvement, _PCT, "followup", (-0.1, 10.1))
_numeric(mr.percent_improvement, _PCT, "minimum", (-INF,))
_numeric(mr.percent_improvement, _PCT, "maximum", (0, -1))
_flag(mr.percent_improvement, _PCT, "higher_is_better")
_TIS = dict.fromkeys(mr.TIS_POINTS, 10.0)
for _field in mr.TIS_POINTS:
    _numeric(mr.score_tis, _TIS, _field, (100.1, -1000.1, INF))
for _tag, _value in {"unknown": "juvenile", "upper": "JDM", "none": None, "int": 1}.items():
    CASES.append(
        (f"score_tis-population-{_tag}", mr.score_tis, _TIS | {"population": _value}, "population")
    )
    CASES.append(
        (
            f"tis_category-population-{_tag}",
            mr.tis_category,
            {"score": 50, "population": _value},
            "population",
        )
    )
_numeric(mr.tis_category, {}, "score", (-0.1, 100.1))
_ENZ = {"baseline": 1000, "followup": 500, "uln": 200}
_numeric(mr.enzyme_improvement, _ENZ, "baseline", (-1, 1_000_001))
_numeric(mr.enzyme_improvement, _ENZ, "followup", (-1, 1_000_001))
_numeric(mr.enzyme_improvement, _ENZ, "uln", (0, -5))
for _tag, _value in {"unknown": "uln_ratio", "none": None, "int": 1}.items():
    CASES.append(
        (
            f"enzyme_improvement-method-{_tag}",
            mr.enzyme_improvement,
            _ENZ | {"method": _value},
            "method",
        )
    )

# ---------------------------------------------------------------------------------------- CRISS
_CRISS = {
    "delta_mrss": -5,
    "delta_fvc_percent": 2,
    "delta_patient_global": -1,
    "delta_physician_global": -1,
    "delta_haq_di": -0.2,
}
for _fn in (criss.probability_improved, criss.criss_result):
    _numeric(_fn, _CRISS, "delta_mrss", (-51.1, 51.1))
    _numeric(_fn, _CRISS, "delta_fvc_percent", (-200.1, 200.1))
    _numeric(_fn, _CRISS, "delta_patient_global", (-10.1, 10.1))
    _numeric(_fn, _CRISS, "delta_physician_global", (-10.1, 10.1))
    _numeric(_fn, _CRISS, "delta_haq_di", (-3.1, 3.1))
    _flag(_fn, _CRISS, "step1_event")

# --------------------------------------------------------------------------------------- dosing
_BODY = {"height_cm": 150, "weight_kg": 45}
_numeric(dosing.bsa_mosteller, _BODY, "height_cm", (29.9, 250.1, 0))
_numeric(dosing.bsa_mosteller, _BODY, "weight_kg", (0.4, 350.1, -1))
_numeric(dosing.car_t_dose, {"weight_kg": 40}, "weight_kg", (0.4, 350.1))
_numeric(dosing.car_t_dose, {"weight_kg": 40}, "cells_per_kg", (0, -1e6, 1.1e9))
_numeric(dosing.car_t_dose, {"weight_kg": 40}, "max_cells", (0, -1, 1.1e12), none_allowed=True)
_numeric(dosing.lymphodepletion, _BODY, "height_cm", (29.9, 250.1))
_numeric(dosing.lymphodepletion, _BODY, "weight_kg", (0.4, 350.1))
_numeric(
    dosing.lymphodepletion,
    _BODY | {"renal_rule": "fludara_iv_label"},
    "crcl_ml_min",
    (-1, 300.1),
)
for _tag, _value in {"unknown": "erlangen", "none": None, "int": 1}.items():
    CASES.append(
        (
            f"lymphodepletion-regimen-{_tag}",
            dosing.lymphodepletion,
            _BODY | {"regimen": _value},
            "regimen",
        )
    )
for _tag, _value in {"unknown": "cockcroft_gault", "int": 1, "upper": "FLUDARA_IV_LABEL"}.items():
    CASES.append(
        (
            f"lymphodepletion-renal_rule-{_tag}",
            dosing.lymphodepletion,
            _BODY | {"crcl_ml_min": 60, "renal_rule": _value},
            "renal_rule",
        )
    )
CASES.append(
    (
        "lymphodepletion-crcl-without-rule",
        dosing.lymphodepletion,
        _BODY | {"crcl_ml_min": 60},
        "renal_rule",
    )
)
_numeric(dosing.flu_dose_reduced, {"label_mg_per_m2": 30}, "given_mg_per_m2", (-1, 100.1))
_numeric(dosing.flu_dose_reduced, {"given_mg_per_m2": 26}, "label_mg_per_m2", (0, -1, 100.1))

_ids = [c[0] for c in CASES]
assert len(_ids) == len(set(_ids)), "duplicate case ids"
