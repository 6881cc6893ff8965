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
    Dobutamine is an inotrope, not a vasopressor: it is not counted unless
    ``ToxicitySettings(count_dobutamine_as_vasopressor=True)``.
  - low-flow nasal cannula (≤ 6 L/min) or blow-by → 2; high-flow nasal cannula (> 6 L/min),
    face mask, non-rebreather or Venturi mask → 3; CPAP, BiPAP or mechanical ventilation → 4.
* Death due to CRS → 5. Organ toxicities never change the CRS grade.

Reading of the hypoxia domain by flow
-------------------------------------
ASTCT defines low- and high-flow nasal cannula **by flow** (≤ 6 vs > 6 L/min), not by the
hardware. So a ``nasal_cannula`` or ``high_flow_nasal_cannula`` with a flow is graded by the
flow (a high-flow device running at 4 L/min is low-flow → 2); a ``high_flow_nasal_cannula``
without a flow is taken as > 6 L/min (3); a ``nasal_cannula`` needs its flow. Contradictions
are refused (``InvalidInput``): room air with a flow > 0, a nasal cannula at 0 L/min.

Missing temperature
-------------------
Without a temperature (and without masked fever) CRS cannot be graded: fever decides whether
there is CRS at all. The result is then ``grade=None`` with flags ``not_gradable``,
``incomplete``, ``temperature_missing`` and a reason naming the grade the other domains would
give (a day on BiPAP without a temperature is "0 or 4", never a confident 0).

UNCONFIRMED
-----------
The numeric hypotension threshold is not in the ASTCT table. :func:`is_hypotensive` uses
Mahadeo 2019 (SBP < 70 + 2 × age for ages 1–10 years, age in completed years; SBP < 90 mmHg
above 10 years, adults too). Below age 1 Mahadeo gives no threshold: by default the function
refuses (``InvalidInput``); ``ToxicitySettings(hypotension_under_1_year="use_70")`` uses the
PALS definition of hypotension: SBP < 60 mmHg for neonates (0–28 days), < 70 mmHg from
29 days to 1 year.
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
#: PALS: neonates (0–28 days of age) are hypotensive below 60 mmHg systolic.
NEONATE_LAST_DAY = 28
NEONATE_SBP_BELOW = 60.0
DAYS_PER_YEAR = 365.25
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
_HFNC = OXYGEN_DEVICE_CODES["high_flow_nasal_cannula"]
_ROOM_AIR = OXYGEN_DEVICE_CODES["room_air"]
_CODE_GRADES = np.array([OXYGEN_DEVICE_GRADES[name] for name in vocab.OXYGEN_DEVICES], np.int64)


@dataclass(frozen=True, slots=True)
class CrsResult:
    """A CRS grade with the criteria that set it.

    Attributes
    ----------
    grade : int or None
        ASTCT grade 0–5 (0 = criteria for CRS not met); None = not gradable (no temperature).
    reasons : tuple of str
        The criteria that set the grade (fever or masked fever, and the deciding domains).
    hypotension_grade, hypoxia_grade : int
        The grade each domain alone would give (0, 2, 3 or 4).
    flags : tuple of str
        ``not_gradable``, ``incomplete``, ``temperature_missing``, ``dobutamine_not_counted``,
        ``flow_graded_device`` (high-flow device graded by its flow).
    """

    grade: int | None
    reasons: tuple[str, ...]
    hypotension_grade: int = 0
    hypoxia_grade: int = 0
    flags: tuple[str, ...] = ()


def _check_vasopressors(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidInput("vasopressors", value, "a list of vasopressor names")
    return tuple(check_choice("vasopressors", v, vocab.VASOPRESSORS) for v in value)


def _hypotension_domain(
    hypotension: bool, pressors: tuple[str, ...], dobutamine_counts: bool = False
) -> tuple[int, str]:
    given = set(pressors)
    if not dobutamine_counts:
        given.discard("dobutamine")
    counted = sorted(given - {"vasopressin"})
    if len(counted) >= 2:
        return 4, f"hypotension requiring multiple vasopressors ({', '.join(counted)})"
    if given:
        names = ", ".join(sorted(given))
        return 3, f"hypotension requiring one vasopressor ({names}; vasopressin not counted)"
    if hypotension:
        return 2, "hypotension not requiring vasopressors"
    return 0, ""


_FLOW_DEVICES = ("nasal_cannula", "high_flow_nasal_cannula")


def _hypoxia_domain(device: str, flow: float | None) -> tuple[int, str]:
    grade = OXYGEN_DEVICE_GRADES[device]
    word = _DEVICE_WORDS[device]
    if device in _FLOW_DEVICES and flow is not None:
        via = "" if device == "nasal_cannula" else f"{word} at "
        if flow > LOW_FLOW_MAX_L_MIN:
            return 3, f"hypoxia requiring high-flow nasal cannula ({via}{flow:g} L/min > 6)"
        return 2, f"hypoxia requiring low-flow nasal cannula ({via}{flow:g} L/min ≤ 6)"
    kind = {2: "low-flow oxygen", 3: "high-flow oxygen", 4: "positive pressure"}.get(grade, "")
    if device == "high_flow_nasal_cannula":
        word += ", no flow recorded: taken as > 6 L/min"
    return grade, f"hypoxia requiring {kind} ({word})" if grade else ""


def _check_oxygen(device: str, flow: float | None) -> None:
    """Refuse oxygen records that contradict themselves (clinical-addendum; issue #12 item 3)."""
    if device == "nasal_cannula" and flow is None:
        raise InvalidInput("oxygen_flow_l_min", None, "a flow in L/min for a nasal cannula")
    if device == "room_air" and flow is not None and flow > 0:
        raise InvalidInput("oxygen_flow_l_min", flow, "empty (or 0) on room air")
    if device in _FLOW_DEVICES and flow is not None and flow <= 0:
        raise InvalidInput("oxygen_flow_l_min", flow, f"> 0 L/min for {_DEVICE_WORDS[device]}")


def grade_crs(
    *,
    temperature_c: float | None,
    hypotension: bool = False,
    vasopressors: Sequence[str] = (),
    oxygen_device: str = "room_air",
    oxygen_flow_l_min: float | None = None,
    fever_masked: bool = False,
    died_of_crs: bool = False,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> CrsResult:
    """Grade CRS by the ASTCT 2019 consensus.

    Parameters
    ----------
    temperature_c : float or None
        Highest temperature, °C, 25–45. ``None`` = not measured: not gradable unless the fever
        is masked (``grade=None``, flag ``temperature_missing``).
    hypotension : bool
        Hypotension not attributable to another cause (see :func:`is_hypotensive`).
    vasopressors : sequence of str
        Vasopressors given (:data:`immunoreset.vocab.VASOPRESSORS`); any implies hypotension.
    oxygen_device : str
        Most intensive oxygen support (:data:`immunoreset.vocab.OXYGEN_DEVICES`).
    oxygen_flow_l_min : float or None
        Flow, L/min, 0–80; required for ``nasal_cannula``; grades both nasal cannulas by flow
        (≤ 6 low-flow, > 6 high-flow). Refused on room air (> 0) and at 0 on a cannula.
    fever_masked : bool
        CRS already diagnosed and tocilizumab/corticosteroids/antipyretics given: fever no
        longer required.
    died_of_crs : bool
        Death due to CRS (grade 5).
    settings : ToxicitySettings
        ``count_dobutamine_as_vasopressor``.

    Returns
    -------
    CrsResult
        ``.grade`` 0–5 (None when not gradable), ``.reasons`` and ``.flags``.

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
    >>> grade_crs(temperature_c=38.5, oxygen_device="high_flow_nasal_cannula",
    ...           oxygen_flow_l_min=4).grade
    2
    >>> grade_crs(temperature_c=None, oxygen_device="bipap").flags
    ('not_gradable', 'incomplete', 'temperature_missing')
    """
    check_range("temperature_c", temperature_c, *TEMPERATURE_RANGE_C, "°C", allow_none=True)
    hypotension = _check_flag("hypotension", hypotension)
    pressors = _check_vasopressors(vasopressors)
    check_choice("oxygen_device", oxygen_device, vocab.OXYGEN_DEVICES)
    check_range("oxygen_flow_l_min", oxygen_flow_l_min, *FLOW_RANGE_L_MIN, "L/min", allow_none=True)
    _check_oxygen(oxygen_device, oxygen_flow_l_min)
    fever_masked = _check_flag("fever_masked", fever_masked)
    died_of_crs = _check_flag("died_of_crs", died_of_crs)
    settings = _check_settings(settings)

    dobutamine_counts = settings.count_dobutamine_as_vasopressor
    hypo_grade, hypo_reason = _hypotension_domain(hypotension, pressors, dobutamine_counts)
    oxy_grade, oxy_reason = _hypoxia_domain(oxygen_device, oxygen_flow_l_min)
    flags: list[str] = []
    notes: list[str] = []
    if "dobutamine" in pressors and not dobutamine_counts:
        flags.append("dobutamine_not_counted")
        notes.append("dobutamine is an inotrope, not counted as a vasopressor (setting)")
    if oxygen_device == "high_flow_nasal_cannula" and oxygen_flow_l_min is not None:
        flags.append("flow_graded_device")
    if died_of_crs:
        return CrsResult(5, ("death due to CRS",), hypo_grade, oxy_grade, tuple(flags))
    fever = temperature_c is not None and temperature_c >= FEVER_C
    if fever:
        basis = f"fever {temperature_c:g} °C (≥ 38.0)"
    elif fever_masked:
        basis = "fever masked by anticytokine/antipyretic therapy after CRS diagnosis"
    elif temperature_c is None:
        other = max(hypo_grade, oxy_grade)
        span = "0 or 1" if other == 0 else f"0 or {other}"
        return CrsResult(
            None,
            (f"not gradable: no temperature recorded and fever not masked (grade {span})", *notes),
            hypo_grade,
            oxy_grade,
            ("not_gradable", "incomplete", "temperature_missing", *flags),
        )
    else:
        return CrsResult(
            0,
            (f"no fever ({temperature_c:g} °C < 38.0) and fever not masked", *notes),
            hypo_grade,
            oxy_grade,
            tuple(flags),
        )
    grade = max(1, hypo_grade, oxy_grade)
    deciding = [r for g, r in ((hypo_grade, hypo_reason), (oxy_grade, oxy_reason)) if g == grade]
    if grade == 1:
        deciding = ["no hypotension or hypoxia"]
    return CrsResult(grade, (basis, *deciding, *notes), hypo_grade, oxy_grade, tuple(flags))


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
        ``"use_70"``: then PALS, SBP < 60 mmHg for neonates (age ≤ 28 days, i.e.
        ``age_years * 365.25 < 29``), < 70 mmHg up to age 1.
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
    >>> infant = ToxicitySettings(hypotension_under_1_year="use_70")
    >>> is_hypotensive(systolic_bp_mmhg=65, age_years=10 / 365.25, settings=infant)
    False
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
    if age_years * DAYS_PER_YEAR < NEONATE_LAST_DAY + 1:
        return systolic_bp_mmhg < NEONATE_SBP_BELOW
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
        Number of distinct vasopressors other than vasopressin (and other than dobutamine
        unless the setting counts it), 0–5.
    vasopressin : array of bool
        Vasopressin given.
    oxygen_device : array of int
        Codes of :data:`OXYGEN_DEVICE_CODES`.
    oxygen_flow_l_min : array of float
        L/min, 0–80; NaN = not given (not allowed for nasal cannula; > 0 refused on room air;
        0 refused on either nasal cannula).
    fever_masked, died_of_crs : array of bool, optional
        Default all False.

    Returns
    -------
    numpy.ndarray of int64
        Grades 0–5; -1 = not gradable (no temperature and fever not masked).

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
    by_flow = (is_nc | (device == _HFNC)) & ~np.isnan(flow)
    if (is_nc & np.isnan(flow)).any():
        raise InvalidInput("oxygen_flow_l_min", float("nan"), "a flow in L/min for a nasal cannula")
    if ((device == _ROOM_AIR) & (flow > 0)).any():
        bad = flow[(device == _ROOM_AIR) & (flow > 0)][0].item()
        raise InvalidInput("oxygen_flow_l_min", bad, "empty (or 0) on room air")
    if (by_flow & (flow <= 0)).any():
        raise InvalidInput("oxygen_flow_l_min", 0.0, "> 0 L/min for a nasal cannula")

    hypo_grade = np.where(npress >= 2, 4, np.where((npress == 1) | vaso, 3, np.where(hypo, 2, 0)))
    oxy_grade = _CODE_GRADES[device]
    oxy_grade = np.where(by_flow, np.where(flow > LOW_FLOW_MAX_L_MIN, 3, 2), oxy_grade)
    with np.errstate(invalid="ignore"):
        fever = temp >= FEVER_C
    crs_present = fever | masked
    grade = np.where(crs_present, np.maximum(1, np.maximum(hypo_grade, oxy_grade)), 0)
    grade = np.where(np.isnan(temp) & ~masked, -1, grade)
    return np.where(died, 5, grade).astype(np.int64)
