"""ICAHT — immune effector cell–associated hematotoxicity, neutrophil grading (EHA/EBMT 2023).

Source
------
Rejeski K, Subklewe M, Aljurf M, et al. Immune effector cell–associated hematotoxicity: EHA/EBMT
consensus grading and best practice recommendations. *Blood.* 2023;142(10):865–877.
doi:10.1182/blood.2023020578. Operational definition: Liang EC, automated EHA/EBMT ICAHT grading
(GitHub ``emilyliangmd/automatedicahtgrading``, ``index.Rmd``); cumulative counting as restated
by the consensus authors in the T-ICAHT paper (Blood 2025, Table 1 footnote). Project
specification clinical.md §3.

Early ICAHT (days 0–30)
-----------------------
====================  ==========  ==========  ===============  ==================================
ANC duration          grade 1     grade 2     grade 3          grade 4
====================  ==========  ==========  ===============  ==================================
≤ 500/µL              1–6 days    7–13 days   14–30 days       ≥ 31 days (> 30)
≤ 100/µL              —           —           7–13 days        ≥ 14 days
====================  ==========  ==========  ===============  ==================================

Grade 4 is given only for > 30 days ≤ 500/µL or ≥ 14 days ≤ 100/µL (Rejeski 2023), and by
Liang's never-recovered rule, which applies **only** to death or end of follow-up before day 30
after a day 0–3 nadir without recovery (``followup_end_day``/``followup_end``). A series that
simply ends early while the patient is followed is graded on what was observed and flagged
``incomplete`` (a lower bound; also ``not_recovered_at_last_value``). ``incomplete`` is set
whenever days 0–30 lack data, whatever the grade.

Counting rules: one value per day (the lowest); thresholds inclusive (ANC = 500 counts as
≤ 500); runs of up to 7 consecutive missing days are linearly interpolated (Liang,
``zoo::na.approx(maxgap = 7)``; setting ``icaht_max_gap_days``), longer gaps stay missing;
stable recovery = ANC above the threshold on ≥ 3 consecutive days, so fewer than 3 days
above between two days below are joined and counted. ``duration_mode="cumulative"``
(default, the consensus authors' logic) sums all counted days in days 0–30;
``"longest_joined"`` (Liang) takes the longest joined episode. Values after ``censor_day``
(progression, next line of therapy, death) are ignored. ANC is in cells/µL unless ``unit``
is given (:mod:`immunoreset.clinical._counts`).

Late ICAHT (day 31 to day 100)
------------------------------
Grade 1 ANC ≤ 1500, grade 2 ≤ 1000, grade 3 ≤ 500, grade 4 ≤ 100/µL, non-transient: graded on
the nadir provided the second-lowest value in the window is also ≤ 1500 (Liang). A single value
is not gradable by the consensus "≥ 2 time points" wording (``grade=None``, flags
``single_value``, ``incomplete``); ``ToxicitySettings(late_icaht_single_value="grade")``
grades it as Liang does (flag ``single_value`` kept).

UNCONFIRMED
-----------
The 2023 table text was not retrieved: early grade 4 as "> 30" (used: ≥ 31 days) vs "≥ 30"; the
ANC ≤ 100 row (used: ≥ 7 → 3, ≥ 14 → 4); the never-recovered rule (on by default, setting
``icaht_never_recovered``); the late window end (setting ``late_icaht_last_day``, 100).
The batch path :func:`grade_icaht_many` has no follow-up end, so never applies that rule.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from immunoreset.clinical._counts import check_plausible, count_factor
from immunoreset.clinical.settings import (
    DEFAULT_SETTINGS,
    ICAHT_DURATION_MODES,
    ToxicitySettings,
    _check_settings,
)
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "EARLY_LAST_DAY",
    "FOLLOWUP_ENDS",
    "LATE_FIRST_DAY",
    "IcahtBatch",
    "IcahtResult",
    "grade_early_icaht",
    "grade_icaht_many",
    "grade_late_icaht",
    "late_anc_grade",
]

EARLY_LAST_DAY = 30
#: Why follow-up ended before day 30 (the only case of Liang's "never recovered" grade 4).
FOLLOWUP_ENDS: tuple[str, ...] = ("death", "end_of_follow_up")
LATE_FIRST_DAY = 31
DAY_RANGE = (-3650.0, 36500.0)
ANC_MAX = 200_000.0
#: Early grid is limited to these study days (enough for days 0–30 and their neighbours).
_GRID_LO, _GRID_HI = -100, 130
# Indices of the core's output vector.
_EARLY, _D500, _D100, _NEVER, _MISSING, _N_EARLY, _LATE, _NADIR, _SECOND, _N_LATE, _ONGOING = range(
    11
)


@dataclass(frozen=True, slots=True)
class IcahtResult:
    """An ICAHT grade with the durations or values it rests on.

    Attributes
    ----------
    phase : str
        ``"early"`` (days 0–30) or ``"late"`` (day 31 to the window end).
    grade : int or None
        0–4; None when not gradable (no values; late single value by default).
    reasons : tuple of str
        The criteria that set the grade.
    flags : tuple of str
        ``no_values``, ``incomplete`` (days of the window without data: the grade is a lower
        bound; never suppressed), ``never_recovered`` (death/end of follow-up before day 30),
        ``not_recovered_at_last_value``, ``single_value``, ``transient``.
    duration_mode : str or None
        Early: ``cumulative`` or ``longest_joined``.
    days_anc_le_500, days_anc_le_100 : int or None
        Early: days counted below each threshold.
    days_missing : int or None
        Early: days 0–30 with neither a value nor an interpolation.
    nadir_anc_per_ul, second_lowest_anc_per_ul : float or None
        Late: the two lowest values in the window.
    n_values : int
        Measured days used in the window.
    """

    phase: str
    grade: int | None
    reasons: tuple[str, ...]
    flags: tuple[str, ...] = ()
    duration_mode: str | None = None
    days_anc_le_500: int | None = None
    days_anc_le_100: int | None = None
    days_missing: int | None = None
    nadir_anc_per_ul: float | None = None
    second_lowest_anc_per_ul: float | None = None
    n_values: int = 0


@dataclass(frozen=True, slots=True)
class IcahtBatch:
    """Early and late ICAHT grades of many patients (-1 = not gradable)."""

    patient: np.ndarray
    early_grade: np.ndarray
    late_grade: np.ndarray
    days_anc_le_500: np.ndarray
    days_anc_le_100: np.ndarray


def late_anc_grade(anc_per_ul: float) -> int:
    """Late-ICAHT grade of one ANC: ≤ 1500 → 1, ≤ 1000 → 2, ≤ 500 → 3, ≤ 100 → 4.

    Examples
    --------
    >>> [late_anc_grade(v) for v in (1501, 1500, 1000, 500, 101, 100)]
    [0, 1, 2, 3, 3, 4]
    """
    check_range("anc_per_ul", anc_per_ul, 0, ANC_MAX, "cells/µL")
    return _late_grade(anc_per_ul)


def _late_grade(v: float) -> int:
    return 4 if v <= 100 else 3 if v <= 500 else 2 if v <= 1000 else 1 if v <= 1500 else 0


_LATE_CUTS = np.array([1500.0, 1000.0, 500.0, 100.0])


# --------------------------------------------------------------------------- the core
def _core(
    days: np.ndarray,
    vals: np.ndarray,
    max_gap: int,
    longest: bool,
    never_rule: bool,
    late_last: int,
    grade_single: bool,
    end_day: int,
) -> np.ndarray:
    """Grade one patient's series (sorted unique integer days, lowest value per day).

    Plain Python that numba can compile: the scalar functions run it as is, the batch path
    compiles it. ``end_day`` is the day of death or end of follow-up (-1 = none: the patient
    is followed on). Returns the vector indexed by the ``_EARLY`` … ``_ONGOING`` constants
    (-1 = not gradable / not applicable).
    """
    out = np.full(11, -1.0)
    n = days.shape[0]
    # ---------------------------------------------------------------- early: daily grid
    first, last = -1, -1
    for i in range(n):
        if _GRID_LO <= days[i] <= _GRID_HI:
            if first < 0:
                first = i
            last = i
    n_early = 0
    for i in range(n):
        if 0 <= days[i] <= EARLY_LAST_DAY:
            n_early += 1
    out[_N_EARLY] = n_early
    if first >= 0:
        start = days[first]
        length = days[last] - start + 1
        grid = np.full(length, np.nan)
        for i in range(first, last + 1):
            grid[days[i] - start] = vals[i]
            if i > first:
                gap = days[i] - days[i - 1]
                if 1 < gap <= max_gap + 1:  # up to max_gap consecutive missing days
                    for k in range(1, gap):
                        grid[days[i - 1] - start + k] = vals[i - 1] + (vals[i] - vals[i - 1]) * (
                            k / gap
                        )
        w0 = max(0, -start)
        w1 = min(length - 1, EARLY_LAST_DAY - start)
        missing = EARLY_LAST_DAY + 1
        for j in range(w0, w1 + 1):
            if not np.isnan(grid[j]):
                missing -= 1
        if missing <= EARLY_LAST_DAY:  # at least one known day in the window
            out[_MISSING] = missing
            durations = np.zeros(2)
            never = False
            for t in range(2):
                threshold = 500.0 if t == 0 else 100.0
                state = np.full(length, -1)
                for j in range(length):
                    if not np.isnan(grid[j]):
                        state[j] = 1 if grid[j] <= threshold else 0
                counted = state == 1
                j = 0
                while j < length:
                    if state[j] == 0:
                        k = j
                        while k < length and state[k] == 0:
                            k += 1
                        joined = k - j < 3 and j > 0 and k < length
                        if joined and state[j - 1] == 1 and state[k] == 1:
                            for m in range(j, k):
                                counted[m] = True
                        j = k
                    else:
                        j += 1
                total, run, best = 0, 0, 0
                for j in range(w0, w1 + 1):
                    if counted[j]:
                        total += 1
                        run += 1
                        best = max(best, run)
                    else:
                        run = 0
                durations[t] = best if longest else total
                if t == 0 and state[length - 1] == 1 and length - 1 + start >= 0:
                    s = length - 1
                    while s > 0 and counted[s - 1]:
                        s -= 1
                    out[_ONGOING] = s + start  # onset of the episode still open at the end
                    ended = 0 <= end_day < EARLY_LAST_DAY
                    if never_rule and ended and s + start <= 3:
                        never = True
            d500, d100 = durations[0], durations[1]
            out[_D500], out[_D100] = d500, d100
            out[_NEVER] = 1.0 if never else 0.0
            if d500 >= 31 or d100 >= 14 or never:
                grade = 4
            elif d500 >= 14 or d100 >= 7:
                grade = 3
            elif d500 >= 7:
                grade = 2
            elif d500 >= 1:
                grade = 1
            else:
                grade = 0
            out[_EARLY] = grade
    # ---------------------------------------------------------------- late window
    nadir, second, n_late = np.inf, np.inf, 0
    for i in range(n):
        if LATE_FIRST_DAY <= days[i] <= late_last:
            n_late += 1
            v = vals[i]
            if v < nadir:
                second = nadir
                nadir = v
            elif v < second:
                second = v
    out[_N_LATE] = n_late
    if n_late >= 1:
        out[_NADIR] = nadir
    nadir_grade = 0  # _late_grade inlined, so that numba compiles one self-contained function
    for c in range(_LATE_CUTS.shape[0]):
        if nadir <= _LATE_CUTS[c]:
            nadir_grade = c + 1
    if n_late >= 2:
        out[_SECOND] = second
        out[_LATE] = nadir_grade if second <= 1500 else 0
    elif n_late == 1 and (grade_single or nadir > 1500):
        out[_LATE] = nadir_grade
    return out


@functools.cache
def _compiled() -> Any:
    """The numba-compiled core (numba imported lazily; compiled once, cached on disk)."""
    import numba

    return numba.njit(cache=True)(_core)


def _run_many(offsets: np.ndarray, days: np.ndarray, vals: np.ndarray, *params: Any) -> np.ndarray:
    core = _compiled()
    out = np.empty((offsets.shape[0] - 1, 11))
    for p in range(offsets.shape[0] - 1):
        a, b = offsets[p], offsets[p + 1]
        out[p] = core(days[a:b], vals[a:b], *params)
    return out


# --------------------------------------------------------------------------- validation
def _series(field: str, value: Any, lo: float, hi: float, n: int | None) -> np.ndarray:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidInput(field, value, "a sequence of numbers")
    if not isinstance(value, np.ndarray):
        for v in value:
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number):
                raise InvalidInput(field, v, "a sequence of numbers")
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise InvalidInput(field, value, "a one-dimensional sequence of numbers")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise InvalidInput(field, arr.dtype, "a sequence of numbers")
    if n is not None and arr.shape[0] != n:
        raise InvalidInput(field, f"length {arr.shape[0]}", f"the same length as days ({n})")
    arr = arr.astype(np.float64)
    bad = ~((arr >= lo) & (arr <= hi))
    if bad.any():
        raise InvalidInput(field, arr[bad][0].item(), f"within {lo:g}–{hi:g}")
    return arr


def _prepare(
    days: Any, anc: Any, censor_day: float | None, unit: str | None, settings: ToxicitySettings
) -> tuple[np.ndarray, np.ndarray]:
    d = _series("days", days, *DAY_RANGE, None)
    v = _series("anc_per_ul", anc, 0.0, np.inf if unit is not None else ANC_MAX, d.shape[0])
    if unit is None:
        check_plausible("anc_per_ul", "anc", v, settings.implausible_counts == "refuse")
    else:
        v = v * count_factor("anc", "anc", unit)
        bad = v > ANC_MAX
        if bad.any():
            raise InvalidInput("anc_per_ul", v[bad][0].item(), f"within 0–{ANC_MAX:g} cells/µL")
    check_range("censor_day", censor_day, *DAY_RANGE, "study day", allow_none=True)
    di = np.floor(d).astype(np.int64)
    if censor_day is not None:
        keep = d <= censor_day
        di, v = di[keep], v[keep]
    order = np.lexsort((v, di))
    di, v = di[order], v[order]
    first = np.ones(di.shape[0], bool)
    first[1:] = di[1:] != di[:-1]
    return di[first], v[first]


def _end_day(followup_end_day: float | None, followup_end: str | None) -> int:
    check_range("followup_end_day", followup_end_day, *DAY_RANGE, "study day", allow_none=True)
    if followup_end is not None:
        check_choice("followup_end", followup_end, FOLLOWUP_ENDS)
    if (followup_end_day is None) != (followup_end is None):
        missing = "followup_end" if followup_end is None else "followup_end_day"
        raise InvalidInput(missing, None, "given together with the other follow-up end field")
    return -1 if followup_end_day is None else int(np.floor(followup_end_day))


def _run(
    days: Any,
    anc: Any,
    mode: str,
    censor_day: float | None,
    settings: Any,
    unit: str | None = None,
    end_day: int = -1,
) -> np.ndarray:
    check_choice("duration_mode", mode, ICAHT_DURATION_MODES)
    settings = _check_settings(settings)
    di, v = _prepare(days, anc, censor_day, unit, settings)
    return _core(
        di,
        v,
        settings.icaht_max_gap_days,
        mode == "longest_joined",
        settings.icaht_never_recovered,
        settings.late_icaht_last_day,
        settings.late_icaht_single_value == "grade",
        end_day,
    )


# --------------------------------------------------------------------------- public API
def grade_early_icaht(
    days: Sequence[float],
    anc_per_ul: Sequence[float],
    *,
    duration_mode: str = "cumulative",
    censor_day: float | None = None,
    followup_end_day: float | None = None,
    followup_end: str | None = None,
    unit: str | None = None,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> IcahtResult:
    """Early ICAHT grade (days 0–30) from an ANC series.

    Parameters
    ----------
    days : sequence of float
        Study days of the values (day 0 = infusion); fractions are floored to the day.
    anc_per_ul : sequence of float
        ANC, cells/µL, 0–200,000, same length as ``days`` (or in ``unit``).
    duration_mode : str
        ``"cumulative"`` (default) or ``"longest_joined"`` (Liang).
    censor_day : float or None
        Progression, next line of therapy or death: later values are ignored.
    followup_end_day, followup_end : float or None, str or None
        Study day and kind (:data:`FOLLOWUP_ENDS`: ``death`` or ``end_of_follow_up``) when
        follow-up ended; needed for Liang's never-recovered grade 4, which applies only to
        death or end of follow-up **before day 30** after a day 0–3 nadir without recovery.
        A patient still followed whose data stop early is graded on the observed days and
        flagged ``incomplete`` (a lower bound), never promoted to 4.
    unit : str or None
        Unit of ``anc_per_ul`` (``"10^9/L"``, ``"cells/uL"`` …, :mod:`immunoreset.units`).
        None = cells/µL, and values implausible in cells/µL (1.2) are refused.
    settings : ToxicitySettings
        Interpolation gap and the never-recovered rule.

    Returns
    -------
    IcahtResult

    Raises
    ------
    InvalidInput
        Non-numeric, NaN, out-of-range (negative ANC) values, unequal lengths, unknown mode,
        unknown unit, a count implausible in cells/µL without a unit.

    Examples
    --------
    >>> days = list(range(0, 31))
    >>> anc = [1500] + [300] * 7 + [2000] * 23          # ≤ 500 on days 1–7
    >>> grade_early_icaht(days, anc).grade
    2
    >>> grade_early_icaht([2], [480]).grade, grade_early_icaht([2], [480]).flags
    (1, ('incomplete', 'not_recovered_at_last_value'))
    >>> grade_early_icaht([0, 1, 2], [1.2, 0.4, 0.3], unit="10^9/L").days_anc_le_500
    2
    """
    end = _end_day(followup_end_day, followup_end)
    out = _run(days, anc_per_ul, duration_mode, censor_day, settings, unit, end)
    if out[_EARLY] < 0:
        return IcahtResult(
            "early",
            None,
            ("no ANC value within days 0–30",),
            ("no_values", "incomplete"),
            duration_mode,
            n_values=int(out[_N_EARLY]),
        )
    grade = int(out[_EARLY])
    d500, d100, never = int(out[_D500]), int(out[_D100]), out[_NEVER] == 1
    what = "cumulative" if duration_mode == "cumulative" else "longest joined episode"
    g500 = 4 if d500 >= 31 else 3 if d500 >= 14 else 2 if d500 >= 7 else 1 if d500 >= 1 else 0
    g100 = 4 if d100 >= 14 else 3 if d100 >= 7 else 0
    word = "death" if followup_end == "death" else "end of follow-up"
    candidates = [
        (g500, f"ANC ≤ 500/µL on {d500} days ({what}, days 0–30) → {g500}"),
        (g100, f"ANC ≤ 100/µL on {d100} days ({what}, days 0–30) → {g100}"),
        (
            4 if never else 0,
            f"ANC ≤ 500/µL from day {int(out[_ONGOING])} without recovery until {word} on "
            f"day {end} (before day 30; Liang's never-recovered rule) → 4",
        ),
    ]
    reasons = tuple(r for g, r in candidates if g == grade and g > 0)
    if grade == 0:
        reasons = ("ANC never ≤ 500/µL in days 0–30",)
    flags = []
    missing = int(out[_MISSING])
    if missing:
        flags.append("incomplete")
        reasons += (
            f"{missing} of the 31 days 0–30 without an ANC value (not interpolated): graded "
            "on the observed days, a lower bound",
        )
    if never:
        flags.append("never_recovered")
    elif out[_ONGOING] >= 0:
        flags.append("not_recovered_at_last_value")
    return IcahtResult(
        "early",
        grade,
        reasons,
        tuple(flags),
        duration_mode,
        days_anc_le_500=d500,
        days_anc_le_100=d100,
        days_missing=missing,
        n_values=int(out[_N_EARLY]),
    )


def grade_late_icaht(
    days: Sequence[float],
    anc_per_ul: Sequence[float],
    *,
    censor_day: float | None = None,
    unit: str | None = None,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> IcahtResult:
    """Late ICAHT grade (day 31 to ``settings.late_icaht_last_day``) from an ANC series.

    Parameters
    ----------
    days, anc_per_ul, censor_day, unit
        As :func:`grade_early_icaht`.
    settings : ToxicitySettings
        ``late_icaht_single_value`` and ``late_icaht_last_day``.

    Returns
    -------
    IcahtResult

    Examples
    --------
    >>> grade_late_icaht([45, 52], [900, 1200]).grade
    2
    >>> grade_late_icaht([60], [400]).flags
    ('single_value', 'incomplete')
    """
    settings = _check_settings(settings)
    out = _run(days, anc_per_ul, "cumulative", censor_day, settings, unit)
    window = f"days {LATE_FIRST_DAY}–{settings.late_icaht_last_day}"
    n = int(out[_N_LATE])
    if n == 0:
        return IcahtResult(
            "late", None, (f"no ANC value within {window}",), ("no_values", "incomplete")
        )
    nadir = float(out[_NADIR])
    second = float(out[_SECOND]) if n >= 2 else None
    flags: list[str] = ["single_value"] if n == 1 else []
    grade = None if out[_LATE] < 0 else int(out[_LATE])
    if grade is None:
        flags.append("incomplete")
        reasons: tuple[str, ...] = (
            f"single ANC value {nadir:g}/µL in {window}; ≥ 2 time points needed",
        )
    elif grade == 0 and nadir <= 1500:
        flags.append("transient")
        reasons = (f"only one ANC ≤ 1500/µL in {window} (transient); second lowest {second:g}",)
    elif grade == 0:
        reasons = (f"ANC nadir {nadir:g}/µL > 1500 in {window}",)
    else:
        extra = "" if second is None else f", second lowest {second:g} ≤ 1500"
        reasons = (f"ANC nadir {nadir:g}/µL in {window}{extra} → {grade}",)
    return IcahtResult(
        "late",
        grade,
        reasons,
        tuple(flags),
        nadir_anc_per_ul=nadir,
        second_lowest_anc_per_ul=second,
        n_values=n,
    )


def grade_icaht_many(
    patient: Any,
    days: Any,
    anc_per_ul: Any,
    *,
    duration_mode: str = "cumulative",
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> IcahtBatch:
    """Early and late ICAHT of many patients at once (numba-compiled; same rules as the scalars).

    Parameters
    ----------
    patient : array of int
        Patient key of each value (any integers, any order).
    days, anc_per_ul : array of float
        Study day and ANC (cells/µL) of each value, same length.
    duration_mode : str
        ``"cumulative"`` or ``"longest_joined"``.
    settings : ToxicitySettings

    Returns
    -------
    IcahtBatch
        Per unique patient key (sorted): early and late grade (-1 = not gradable) and the
        early durations (-1 when not gradable).

    Examples
    --------
    >>> b = grade_icaht_many([7, 7, 9], [1, 45, 2], [300, 900, 2000])
    >>> b.patient.tolist(), b.early_grade.tolist(), b.late_grade.tolist()
    ([7, 9], [1, 0], [-1, -1])
    """
    check_choice("duration_mode", duration_mode, ICAHT_DURATION_MODES)
    settings = _check_settings(settings)
    pid = np.asarray(patient)
    if pid.ndim != 1 or pid.dtype == np.bool_ or not np.issubdtype(pid.dtype, np.integer):
        raise InvalidInput("patient", pid.dtype, "a one-dimensional integer array")
    d = _series("days", np.asarray(days), *DAY_RANGE, pid.shape[0])
    v = _series("anc_per_ul", np.asarray(anc_per_ul), 0.0, ANC_MAX, pid.shape[0])
    check_plausible("anc_per_ul", "anc", v, settings.implausible_counts == "refuse")
    di = np.floor(d).astype(np.int64)
    order = np.lexsort((v, di, pid))
    pid, di, v = pid[order], di[order], v[order]
    keep = np.ones(pid.shape[0], bool)
    keep[1:] = (pid[1:] != pid[:-1]) | (di[1:] != di[:-1])
    pid, di, v = pid[keep], di[keep], v[keep]
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]]) if pid.size else np.empty(0, int)
    offsets = np.r_[starts, pid.shape[0]].astype(np.int64)
    out = _run_many(
        offsets,
        di,
        v,
        settings.icaht_max_gap_days,
        duration_mode == "longest_joined",
        settings.icaht_never_recovered,
        settings.late_icaht_last_day,
        settings.late_icaht_single_value == "grade",
        -1,
    )
    return IcahtBatch(
        patient=pid[starts],
        early_grade=out[:, _EARLY].astype(np.int64),
        late_grade=out[:, _LATE].astype(np.int64),
        days_anc_le_500=out[:, _D500].astype(np.int64),
        days_anc_le_100=out[:, _D100].astype(np.int64),
    )
