"""Reader-facing names of the registry's keys (analytes, instruments, QC attributes, settings).

The registry and the calculators speak in keys (``anti_dsdna``, ``sledai2k``,
``released_with_deviation``); a report, a table or a figure speaks to a clinician. Everything a
reader sees goes through :func:`label` (short names as written in papers) or
:func:`describe_setting` (a setting's value in words).
"""

from __future__ import annotations

__all__ = ["LABELS", "describe_setting", "label"]

#: Key -> short name as used in journal tables.
LABELS: dict[str, str] = {
    # analytes
    "anc": "ANC",
    "wbc": "White blood cells",
    "cd19_b_cells": "CD19⁺ B cells",
    "cd3_t_cells": "CD3⁺ T cells",
    "car_t_flow": "CAR T cells (flow cytometry)",
    "car_t_qpcr": "CAR transgene (qPCR)",
    "igg": "IgG",
    "anti_dsdna": "Anti-dsDNA",
    "anti_scl70": "Anti-Scl-70",
    "anti_tif1g": "Anti-TIF1γ",
    "anti_mda5": "Anti-MDA5",
    "anti_jo1": "Anti-Jo-1",
    "ck": "Creatine kinase",
    "crp": "CRP",
    "il6": "IL-6",
    # instruments
    "sledai2k": "SLEDAI-2K",
    "sle_pga": "SLE physician global (PGA, 0–3)",
    "cmas": "CMAS (0–52)",
    "mmt8": "MMT8 (0–80)",
    "mrss": "mRSS (0–51)",
    "md_global": "Physician global (0–10)",
    "patient_global": "Patient/parent global (0–10)",
    "chaq": "CHAQ (0–3)",
    "haq_di": "HAQ-DI (0–3)",
    "extramuscular": "Extramuscular activity (0–10)",
    "fvc_percent": "FVC (% predicted)",
    # release testing (QC attributes)
    "car_transduction": "CAR transduction (%)",
    "cd3_purity": "CD3⁺ purity (%)",
    "cd3_viability": "Viability (%)",
    "car_percent": "CAR⁺ cells (%)",
    "mycoplasma_interim": "Mycoplasma (in-process)",
    "mycoplasma_final": "Mycoplasma (final)",
    "sterility_interim": "Sterility (in-process)",
    "sterility_final": "Sterility (final)",
    "endotoxin": "Endotoxin",
    "vcn": "Vector copy number",
    # release decisions and deviations
    "released": "released",
    "released_with_deviation": "released with a deviation",
    "refused": "refused",
    "dose_deviation": "dose deviation",
    "lost_to_follow_up": "lost to follow-up",
}

#: (setting, value) -> the value in words, for the methods.
_SETTING_TEXT: dict[tuple[str, str], str] = {
    ("blq_rule", "keep_first_last"): (
        "values below the LLOQ before the first and after the last quantifiable value count "
        "as 0, those in between are left out (the PKNCA default)"
    ),
    ("blq_rule", "zero"): "every value below the LLOQ counts as 0",
    ("blq_rule", "drop"): "every value below the LLOQ is left out",
    ("capd_age_rule", "below_12"): "the CAPD below 12 years of age, the ICE score from 12",
    ("capd_age_rule", "ncit_12_and_under"): "the CAPD to age 12 inclusive, the ICE score from 13",
    ("icaht_duration_mode", "cumulative"): "days below each threshold added up",
    ("icaht_duration_mode", "longest_joined"): "the longest run below each threshold",
    ("late_icaht_single_value", "not_gradable"): "a single low value is not gradable",
    ("late_icaht_single_value", "grade"): "a single low value is graded",
    ("enzyme_method", "relative_to_baseline"): "the change relative to the baseline value",
    ("enzyme_method", "excess_over_uln"): "the change in the excess over the upper limit of normal",
}


def label(key: str) -> str:
    """The reader's name of a key; unknown keys lose their underscores.

    Examples
    --------
    >>> label("anti_dsdna"), label("released_with_deviation"), label("some_new_thing")
    ('Anti-dsDNA', 'released with a deviation', 'some new thing')
    """
    return LABELS.get(key, str(key).replace("_", " "))


def describe_setting(name: str, value: str) -> str:
    """A setting's value in words (``blq_rule``, ``capd_age_rule`` …).

    Examples
    --------
    >>> describe_setting("icaht_duration_mode", "cumulative")
    'days below each threshold added up'
    """
    return _SETTING_TEXT.get((name, str(value)), str(value).replace("_", " "))
