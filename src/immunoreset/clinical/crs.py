"""Cytokine release syndrome (CRS) grade, ASTCT consensus 2019.

Source
------
Lee DW, Santomasso BD, Locke FL, et al. ASTCT Consensus Grading for Cytokine Release Syndrome and
Neurologic Toxicity Associated with Immune Effector Cells. *Biol Blood Marrow Transplant.*
2019;25(4):625–638. doi:10.1016/j.bbmt.2018.12.758 (Table 1, CRS grading), as reproduced in
PMC8021214 Table 1 and PMC9327779 Table 2 (project specification clinical.md §1).
Pediatric hypotension: Mahadeo KM, et al. *Nat Rev Clin Oncol* 2019, Table 2 (CARTOX).

Definition
----------
* Fever = temperature ≥ 38.0 °C (inclusive). Without fever CRS is graded only when the fever is
  *masked* (CRS already diagnosed and antipyretic/anticytokine therapy given, ``fever_masked``).
* Grade = the more severe of the hypotension and hypoxia domains, at least 1 once CRS is present:

  - hypotension without vasopressor → 2; one vasopressor (with or without vasopressin) → 3;
    several vasopressors, vasopressin **never** counted → 4. Any vasopressor implies hypotension.
  - low-flow nasal cannula (≤ 6 L/min) or blow-by → 2; high-flow nasal cannula (> 6 L/min, or the
    ``high_flow_nasal_cannula`` device), face mask, non-rebreather or Venturi mask → 3;
    CPAP, BiPAP or mechanical ventilation → 4.
* Death due to CRS → 5. Organ toxicities never change the CRS grade.

UNCONFIRMED
-----------
The numeric hypotension threshold is not in the ASTCT table. :func:`is_hypotensive` uses
Mahadeo 2019 (SBP < 70 + 2 × age for ages 1–10 years, age in completed years; SBP < 90 mmHg
above 10 years, adults too). Below age 1 no source gives a threshold: by default the function
refuses (``InvalidInput``); ``ToxicitySettings(hypotension_under_1_year="use_70")`` uses 70 mmHg.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from immunoreset import vocab
from immunoreset.clinical.settings import (
    DEFAULT_SETTINGS,
    ToxicitySettings,
    _check_flag,
    _check_settings,
)
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "FEVER_C",
    "LOW_FLOW_MAX_L_MIN",
    "OXYGEN_DEVICE_CODES",
    "OXYGEN_DEVICE_GRADES",
    "CrsResult",
    "grade_crs",
    "grade_crs_array",
    "is_hypotensive",
]

#: Fever threshold, inclusive (°C).
FEVER_C = 38.0
#: Highest nasal-cannula flow that is still "low-flow" (L/min, inclusive).
LOW_FLOW_MAX_L_MIN = 6.0
TEMPERATURE_RANGE_C = (25.0, 45.0)
FLOW_RANGE_L_MIN = (0.0, 80.0)

#: Hypoxia-domain grade of each oxygen device (nasal cannula: by flow, see LOW_FLOW_MAX_L_MIN).
OXYGEN_DEVICE_GRADES: dict[str, int] = {
    "room_air": 0,
    "blow_by": 2,
    "nasal_cannula": 2,
    "high_flow_nasal_cannula": 3,
    "face_mask": 3,
    "non_rebreather": 3,
    "venturi": 3,
    "cpap": 4,
    "bipap": 4,
    "mechanical_ventilation": 4,
}
_DEVICE_WORDS: dict[str, str] = {
    "room_air": "room air",
    "blow_by": "blow-by O2",
    "nasal_cannula": "nasal cannula",
    "high_flow_nasal_cannula": "high-flow nasal cannula",
    "face_mask": "face mask",
    "non_rebreather": "non-rebreather mask",
    "venturi": "Venturi mask",
    "cpap": "CPAP",
    "bipap": "BiPAP",
    "mechanical_ventilation": "mechanical ventilation",
}
#: Integer code of each oxygen device for :func:`grade_crs_array` (order of vocab.OXYGEN_DEVICES).
OXYGEN_DEVICE_CODES: dict[str, int] = {name: i for i, name in enumerate(vocab.OXYGEN_DEVICES)}
_NASAL_CANNULA = OXYGEN_DEVICE_CODES["nasal_cannula"]
_CODE_GRADES = np.array([OXYGEN_DEVICE_GRADES[name] for name in vocab.OXYGEN_DEVICES], np.int64)


@dataclass(frozen=True, slots=True)
class CrsResult:
    """A CRS grade with the criteria that set it.

    Attributes
    ----------
    grade : int
        ASTCT grade 0–5 (0 = criteria for CRS not met).
    reasons : tuple of str
        The criteria that set the grade (fever or masked fever, and the deciding domains).
    hypotension_grade, hypoxia_grade : int
        The grade each domain alone would give (0, 2, 3 or 4).
    """

    grade: int
    reasons: tuple[str, ...]
    hypotension_grade: int = 0
    hypoxia_grade: int = 0


def _check_vasopressors(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidInput("vasopressors", value, "a list of vasopressor names")
    return tuple(check_choice("vasopressors", v, vocab.VASOPRESSORS) for v in value)


def _hypotension_domain(hypotension: bool, pressors: tuple[str, ...]) -> tuple[int, str]:
    counted = sorted(set(pressors) - {"vasopressin"})
    if len(counted) >= 2:
        return 4, f"hypotension requiring multiple vasopressors ({', '.join(counted)})"
    if pressors:
        names = ", ".join(sorted(set(pressors)))
        return 3, f"hypotension requiring one vasopressor ({names}; vasopressin not counted)"
    if hypotension:
        return 2, "hypotension not requiring vasopressors"
    return 0, ""


def _hypoxia_domain(device: str, flow: float | None) -> tuple[int, str]:
    grade = OXYGEN_DEVICE_GRADES[device]
    word = _DEVICE_WORDS[device]
    if device == "nasal_cannula" and flow is not None:
        if flow > LOW_FLOW_MAX_L_MIN:
            return 3, f"hypoxia requiring high-flow nasal cannula ({flow:g} L/min > 6)"
        return 2, f"hypoxia requiring low-flow nasal cannula ({flow:g} L/min ≤ 6)"
    kind = {2: "low-flow oxygen", 3: "high-flow oxygen", 4: "positive pressure"}.get(grade, "")
    return grade, f"hypoxia requiring {kind} ({word})" if grade else ""


def grade_crs(
    *,
    temperature_c: float | None,
    hypotension: bool = False,
    vasopressors: Sequence[str] = (),
    oxygen_device: str = "room_air",
    oxygen_flow_l_min: float | None = None,
    fever_masked: bool = False,
    died_of_crs: bool = False,
) -> CrsResult:
    """Grade CRS by the ASTCT 2019 consensus.

    Parameters
    ----------
    temperature_c : float or None
        Highest temperature, °C, 25–45. ``None`` = not measured (no fever unless masked).
    hypotension : bool
        Hypotension not attributable to another cause (see :func:`is_hypotensive`).
    vasopressors : sequence of str
        Vasopressors given (:data:`immunoreset.vocab.VASOPRESSORS`); any implies hypotension.
    oxygen_device : str
        Most intensive oxygen support (:data:`immunoreset.vocab.OXYGEN_DEVICES`).
    oxygen_flow_l_min : float or None
        Flow, L/min, 0–80; required for ``nasal_cannula`` (≤ 6 low-flow, > 6 high-flow).
    fever_masked : bool
        CRS already diagnosed and tocilizumab/corticosteroids/antipyretics given: fever no
        longer required.
    died_of_crs : bool
        Death due to CRS (grade 5).

    Returns
    -------
    CrsResult
        ``.grade`` 0–5 and ``.reasons``.

    Raises
    ------
    InvalidInput
        Out-of-range or wrong-type value or unknown word, naming the field.

    Examples
    --------
    >>> grade_crs(temperature_c=39.5, vasopressors=["norepinephrine"],
    ...           oxygen_device="nasal_cannula", oxygen_flow_l_min=2).grade
    3
    >>> grade_crs(temperature_c=37.9).grade
    0
    """
    check_range("temperature_c", temperature_c, *TEMPERATURE_RANGE_C, "°C", allow_none=True)
    hypotension = _check_flag("hypotension", hypotension)
    pressors = _check_vasopressors(vasopressors)
    check_choice("oxygen_device", oxygen_device, vocab.OXYGEN_DEVICES)
    check_range("oxygen_flow_l_min", oxygen_flow_l_min, *FLOW_RANGE_L_MIN, "L/min", allow_none=True)
    if oxygen_device == "nasal_cannula" and oxygen_flow_l_min is None:
        raise InvalidInput("oxygen_flow_l_min", None, "a flow in L/min for a nasal cannula")
    fever_masked = _check_flag("fever_masked", fever_masked)
    died_of_crs = _check_flag("died_of_crs", died_of_crs)

    hypo_grade, hypo_reason = _hypotension_domain(hypotension, pressors)
    oxy_grade, oxy_reason = _hypoxia_domain(oxygen_device, oxygen_flow_l_min)
    if died_of_crs:
        return CrsResult(5, ("death due to CRS",), hypo_grade, oxy_grade)
    fever = temperature_c is not None and temperature_c >= FEVER_C
    if fever:
        basis = f"fever {temperature_c:g} °C (≥ 38.0)"
    elif fever_masked:
        basis = "fever masked by anticytokine/antipyretic therapy after CRS diagnosis"
    else:
        measured = "not measured" if temperature_c is None else f"{temperature_c:g} °C"
        return CrsResult(
            0, (f"no fever ({measured}; < 38.0) and fever not masked",), hypo_grade, oxy_grade
        )
    grade = max(1, hypo_grade, oxy_grade)
    deciding = [r for g, r in ((hypo_grade, hypo_reason), (oxy_grade, oxy_reason)) if g == grade]
    if grade == 1:
        deciding = ["no hypotension or hypoxia"]
    return CrsResult(grade, (basis, *deciding), hypo_grade, oxy_grade)


def is_hypotensive(
    *, systolic_bp_mmhg: float, age_years: float, settings: ToxicitySettings = DEFAULT_SETTINGS
) -> bool:
    """Whether a systolic blood pressure is hypotensive for the age (Mahadeo 2019, Table 2).

    Parameters
    ----------
    systolic_bp_mmhg : float
        Systolic blood pressure, mmHg, 20–300.
    age_years : float
        Age, years, 0–130. Ages 1–10: threshold 70 + 2 × completed years; above 10 (adults
        too): 90 mmHg. Below 1 year: refused unless ``settings.hypotension_under_1_year`` is
        ``"use_70"`` (UNCONFIRMED, no source).
    settings : ToxicitySettings
        Documented choices (see :mod:`immunoreset.clinical.settings`).

    Returns
    -------
    bool
        True when SBP is strictly below the threshold.

    Examples
    --------
    >>> is_hypotensive(systolic_bp_mmhg=84, age_years=4)   # threshold 78
    False
    >>> is_hypotensive(systolic_bp_mmhg=89, age_years=40)
    True
    """
    check_range("systolic_bp_mmhg", systolic_bp_mmhg, 20, 300, "mmHg")
    check_range("age_years", age_years, 0, 130, "years")
    settings = _check_settings(settings)
    if age_years < 1 and settings.hypotension_under_1_year == "refuse":
        raise InvalidInput(
            "age_years",
            age_years,
            "≥ 1 year (no hypotension threshold is defined below age 1; see settings)",
        )
    years = min(math.floor(age_years), 10)
    return systolic_bp_mmhg < 70 + 2 * years


# --------------------------------------------------------------------------- vectorised
def _as_array(field: str, value: Any, n: int | None, kind: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise InvalidInput(field, value, "a one-dimensional array")
    if n is not None and arr.shape[0] != n:
        raise InvalidInput(field, f"length {arr.shape[0]}", f"an array of length {n}")
    if kind == "bool":
        if arr.dtype != np.bool_:
            raise InvalidInput(field, arr.dtype, "a boolean array")
        return arr
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise InvalidInput(field, arr.dtype, "a numeric array")
    if kind == "int":
        if not np.issubdtype(arr.dtype, np.integer):
            raise InvalidInput(field, arr.dtype, "an integer array")
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def _check_bounds(field: str, arr: np.ndarray, lo: float, hi: float, *, nan_ok: bool) -> None:
    bad = ~((arr >= lo) & (arr <= hi))
    if nan_ok:
        bad &= ~np.isnan(arr)
    if bad.any():
        raise InvalidInput(field, arr[bad][0].item(), f"within {lo:g}–{hi:g}")


def grade_crs_array(
    *,
    temperature_c: Any,
    hypotension: Any,
    n_vasopressors: Any,
    vasopressin: Any,
    oxygen_device: Any,
    oxygen_flow_l_min: Any,
    fever_masked: Any = None,
    died_of_crs: Any = None,
) -> np.ndarray:
    """Grade many CRS observations at once; equal to :func:`grade_crs` row by row.

    Parameters
    ----------
    temperature_c : array of float
        °C, 25–45; NaN = not measured.
    hypotension : array of bool
    n_vasopressors : array of int
        Number of distinct vasopressors other than vasopressin, 0–5.
    vasopressin : array of bool
        Vasopressin given.
    oxygen_device : array of int
        Codes of :data:`OXYGEN_DEVICE_CODES`.
    oxygen_flow_l_min : array of float
        L/min, 0–80; NaN = not given (not allowed for nasal cannula).
    fever_masked, died_of_crs : array of bool, optional
        Default all False.

    Returns
    -------
    numpy.ndarray of int64
        Grades 0–5.

    Examples
    --------
    >>> grade_crs_array(temperature_c=[38.0, 37.9], hypotension=[False, True],
    ...                 n_vasopressors=[0, 1], vasopressin=[False, False],
    ...                 oxygen_device=[OXYGEN_DEVICE_CODES["room_air"]] * 2,
    ...                 oxygen_flow_l_min=[float("nan")] * 2).tolist()
    [1, 0]
    """
    temp = _as_array("temperature_c", temperature_c, None, "float")
    n = temp.shape[0]
    hypo = _as_array("hypotension", hypotension, n, "bool")
    npress = _as_array("n_vasopressors", n_vasopressors, n, "int")
    vaso = _as_array("vasopressin", vasopressin, n, "bool")
    device = _as_array("oxygen_device", oxygen_device, n, "int")
    flow = _as_array("oxygen_flow_l_min", oxygen_flow_l_min, n, "float")
    masked = (
        np.zeros(n, bool)
        if fever_masked is None
        else _as_array("fever_masked", fever_masked, n, "bool")
    )
    died = (
        np.zeros(n, bool)
        if died_of_crs is None
        else _as_array("died_of_crs", died_of_crs, n, "bool")
    )
    _check_bounds("temperature_c", temp, *TEMPERATURE_RANGE_C, nan_ok=True)
    _check_bounds("n_vasopressors", npress, 0, len(vocab.VASOPRESSORS) - 1, nan_ok=False)
    _check_bounds("oxygen_device", device, 0, len(vocab.OXYGEN_DEVICES) - 1, nan_ok=False)
    _check_bounds("oxygen_flow_l_min", flow, *FLOW_RANGE_L_MIN, nan_ok=True)
    is_nc = device == _NASAL_CANNULA
    if (is_nc & np.isnan(flow)).any():
        raise InvalidInput("oxygen_flow_l_min", float("nan"), "a flow in L/min for a nasal cannula")

    hypo_grade = np.where(npress >= 2, 4, np.where((npress == 1) | vaso, 3, np.where(hypo, 2, 0)))
    oxy_grade = _CODE_GRADES[device]
    oxy_grade = np.where(is_nc & (flow > LOW_FLOW_MAX_L_MIN), 3, oxy_grade)
    with np.errstate(invalid="ignore"):
        crs_present = (temp >= FEVER_C) | masked
    grade = np.where(crs_present, np.maximum(1, np.maximum(hypo_grade, oxy_grade)), 0)
    return np.where(died, 5, grade).astype(np.int64)
