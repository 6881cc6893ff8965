"""CTCAE laboratory grades of cytopenias and febrile neutropenia (NCI CTCAE v5.0 and v6.0).

Source
------
National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE) v5.0, published
27 Nov 2017 (CTCAE_v5_Quick_Reference_8.5x11.pdf); term text as in the pharmaverse/admiral grading
metadata ``ncictcaev5_uscv.json`` and its v6 file (project specification clinical.md §5).

Definition
----------
"< A – B" means value < A and ≥ B. Grade 1 needs ``value < LLN`` (age-specific; pass the lab's
LLN); when the LLN is not given, grade 1 cannot be assessed and a value at or above the grade-2
limit is graded 0 (the reason says so).

==============================  =======  =========  ========  ========  ==========
term (unit)                     G1 <     G2 <       G3 <      G4 <      version
==============================  =======  =========  ========  ========  ==========
neutrophil_count_decreased /µL  LLN      1500       1000      500       5.0, 6.0
platelet_count_decreased /µL    LLN      75,000     50,000    25,000    5.0
platelet_count_decreased /µL    LLN      75,000     50,000    10,000    6.0
lymphocyte_count_decreased /µL  LLN      800        500       200       5.0, 6.0
white_blood_cell_decreased /µL  LLN      3000       2000      1000      5.0, 6.0
anemia (g/dL)                   LLN      10.0       8.0       —         5.0, 6.0
==============================  =======  =========  ========  ========  ==========

Anemia grade 4 (life-threatening) and grade 5 are clinical, never from the value alone.
Units: counts are cells/µL unless ``unit`` says otherwise (``"10^9/L"`` …, converted with pint
by :mod:`immunoreset.units`); without a unit a count implausible in cells/µL (ANC 1.2,
platelets 25) is refused rather than mis-graded (:mod:`immunoreset.clinical._counts`).
Febrile neutropenia (grade 3): ANC < 1000/µL and a single temperature > 38.3 °C or a sustained
temperature ≥ 38 °C for more than one hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from immunoreset.clinical._counts import PLAUSIBLE_FLOOR, check_plausible, count_factor
from immunoreset.clinical.settings import (
    DEFAULT_SETTINGS,
    ToxicitySettings,
    _check_flag,
    _check_settings,
)
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "CTCAE_TERMS",
    "CTCAE_VERSIONS",
    "FEBRILE_ANC_BELOW",
    "FEBRILE_TEMPERATURE_ABOVE_C",
    "TERM_ANALYTES",
    "CtcaeResult",
    "grade_lab",
    "grade_lab_result",
    "is_febrile_neutropenia",
]

CTCAE_VERSIONS: tuple[str, ...] = ("5.0", "6.0")

#: term -> (unit, plausible maximum, {version: grade-2, -3, -4 upper limits (exclusive)}).
CTCAE_TERMS: Mapping[str, tuple[str, float, Mapping[str, tuple[float, ...]]]] = {
    "neutrophil_count_decreased": (
        "cells/µL",
        200_000,
        {"5.0": (1500, 1000, 500), "6.0": (1500, 1000, 500)},
    ),
    "platelet_count_decreased": (
        "cells/µL",
        3_000_000,
        {"5.0": (75_000, 50_000, 25_000), "6.0": (75_000, 50_000, 10_000)},
    ),
    "lymphocyte_count_decreased": (
        "cells/µL",
        500_000,
        {"5.0": (800, 500, 200), "6.0": (800, 500, 200)},
    ),
    "white_blood_cell_decreased": (
        "cells/µL",
        500_000,
        {"5.0": (3000, 2000, 1000), "6.0": (3000, 2000, 1000)},
    ),
    "anemia": ("g/dL", 25.0, {"5.0": (10.0, 8.0), "6.0": (10.0, 8.0)}),
}
#: CTCAE term -> registry analyte (for unit conversion).
TERM_ANALYTES: Mapping[str, str] = {
    "neutrophil_count_decreased": "anc",
    "platelet_count_decreased": "platelets",
    "lymphocyte_count_decreased": "lymphocytes",
    "white_blood_cell_decreased": "wbc",
    "anemia": "hemoglobin",
}
FEBRILE_ANC_BELOW = 1000.0
FEBRILE_TEMPERATURE_ABOVE_C = 38.3


@dataclass(frozen=True, slots=True)
class CtcaeResult:
    """A CTCAE grade with the criterion that set it."""

    grade: int
    reasons: tuple[str, ...]
    term: str
    version: str


def grade_lab_result(
    term: str,
    value: float,
    *,
    lln: float | None = None,
    version: str = "5.0",
    unit: str | None = None,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> CtcaeResult:
    """Grade a laboratory value by CTCAE, with the reason (see :func:`grade_lab`).

    Examples
    --------
    >>> grade_lab_result("neutrophil_count_decreased", 499).reasons
    ('neutrophil_count_decreased 499 cells/µL < 500 (CTCAE v5.0 grade 4)',)
    """
    check_choice("term", term, CTCAE_TERMS)
    given_unit = unit
    unit, maximum, limits_by_version = CTCAE_TERMS[term]
    settings = _check_settings(settings)
    analyte = TERM_ANALYTES[term]
    if given_unit is not None:
        factor = count_factor("", analyte, given_unit)
        check_range("value", value, 0, None, given_unit)
        check_range("lln", lln, 0, None, given_unit, lo_open=True, allow_none=True)
        value = value * factor
        lln = None if lln is None else lln * factor
    check_range("value", value, 0, maximum, unit)
    check_range("lln", lln, 0, maximum, unit, lo_open=True, allow_none=True)
    if given_unit is None and analyte in PLAUSIBLE_FLOOR:
        refuse = settings.implausible_counts == "refuse"
        check_plausible("value", analyte, value, refuse)
        if lln is not None:
            check_plausible("lln", analyte, lln, refuse)
    check_choice("version", version, CTCAE_VERSIONS)
    limits = limits_by_version[version]
    for grade in range(len(limits) + 1, 1, -1):
        limit = limits[grade - 2]
        if value < limit:
            why = f"{term} {value:g} {unit} < {limit:g} (CTCAE v{version} grade {grade})"
            return CtcaeResult(grade, (why,), term, version)
    if lln is None:
        why = f"{term} {value:g} {unit} ≥ {limits[0]:g}; LLN not given, grade 1 not assessed"
        return CtcaeResult(0, (why,), term, version)
    if value < lln:
        why = f"{term} {value:g} {unit} < LLN {lln:g} (CTCAE v{version} grade 1)"
        return CtcaeResult(1, (why,), term, version)
    return CtcaeResult(0, (f"{term} {value:g} {unit} ≥ LLN {lln:g}",), term, version)


def grade_lab(
    term: str,
    value: float,
    *,
    lln: float | None = None,
    version: str = "5.0",
    unit: str | None = None,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> int:
    """CTCAE grade (0–4; anemia 0–3) of a laboratory value.

    Parameters
    ----------
    term : str
        One of :data:`CTCAE_TERMS`.
    value : float
        Cells/µL (counts) or g/dL (anemia), ≥ 0.
    lln : float or None
        The lab's lower limit of normal in the same unit (> 0); needed for grade 1.
    version : str
        ``"5.0"`` or ``"6.0"`` (v6 platelets: grade 4 < 10,000/µL).
    unit : str or None
        Unit of ``value`` and ``lln`` (``"10^9/L"``, ``"g/L"`` …); None = cells/µL (g/dL for
        anemia), with counts implausible in cells/µL refused.
    settings : ToxicitySettings
        ``implausible_counts``.

    Returns
    -------
    int

    Raises
    ------
    InvalidInput
        Unknown term, version or unit, out-of-range or wrong-type value or LLN, a count
        implausible in cells/µL without a unit.

    Examples
    --------
    >>> grade_lab("neutrophil_count_decreased", 1000), grade_lab("neutrophil_count_decreased", 999)
    (2, 3)
    >>> grade_lab("platelet_count_decreased", 24_999, version="6.0")
    3
    >>> grade_lab("neutrophil_count_decreased", 1.2, unit="10^9/L")
    2
    """
    return grade_lab_result(
        term, value, lln=lln, version=version, unit=unit, settings=settings
    ).grade


def is_febrile_neutropenia(
    *, anc_per_ul: float, temperature_c: float, sustained_38_over_1h: bool = False
) -> bool:
    """Whether CTCAE febrile neutropenia (grade 3) criteria are met.

    Parameters
    ----------
    anc_per_ul : float
        ANC, cells/µL, 0–200,000.
    temperature_c : float
        Highest single temperature, °C, 25–45.
    sustained_38_over_1h : bool
        Temperature ≥ 38 °C sustained for more than one hour.

    Returns
    -------
    bool
        ANC < 1000 and (temperature > 38.3 °C or sustained ≥ 38 °C > 1 h).

    Examples
    --------
    >>> is_febrile_neutropenia(anc_per_ul=800, temperature_c=38.4)
    True
    >>> is_febrile_neutropenia(anc_per_ul=800, temperature_c=38.3)
    False
    """
    check_range("anc_per_ul", anc_per_ul, 0, 200_000, "cells/µL")
    check_range("temperature_c", temperature_c, 25, 45, "°C")
    sustained = _check_flag("sustained_38_over_1h", sustained_38_over_1h)
    if sustained and temperature_c < 38.0:
        raise InvalidInput(
            "sustained_38_over_1h", True, "false when the highest temperature is below 38 °C"
        )
    fever = temperature_c > FEBRILE_TEMPERATURE_ABOVE_C or sustained
    return anc_per_ul < FEBRILE_ANC_BELOW and fever
