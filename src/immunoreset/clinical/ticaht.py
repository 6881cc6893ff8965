"""T-ICAHT — immune effector cell–associated thrombocytopenia grade (early and late), with CTCAE.

Source
------
Rejeski K, Sanz J, Fei T, … Shah NN, Perales MA, Shouval R. T-ICAHT: grading and prognostic
impact of thrombocytopenia after CAR T-cell therapy. *Blood* 2025, doi:10.1182/blood.2025028833,
Table 1 and its footnote (http://www.ash-sap.org/view-large/12809257; derived in 744 CD19 CAR T
NHL patients, validated in 599 paediatric/adult NHL, MM and B-ALL). It follows the logic of the
neutrophil grading (N-ICAHT, Rejeski et al. *Blood* 2023;142(10):865–877). CTCAE v5.0/v6.0
"Platelet count decreased"/"Thrombocytopenia": :mod:`immunoreset.clinical.ctcae`. Project
specification clinical-addendum.md §2.

Definition (platelets in cells/µL here; the paper's 50 × 10⁹/L = 50,000/µL; strict ``<``)
--------------------------------------------------------------------------------------------
====================================  =========  ========  ========  ========
window                                grade 1    grade 2   grade 3   grade 4
====================================  =========  ========  ========  ========
early (days 0–30): days PLT < 50,000  1–6        ≥ 7       —         —
early: days PLT < 20,000              —          —         1–13      ≥ 14
late (31–100): PLT < 100,000          ≥ 1 value  —         —         —
late: PLT < 50,000                    —          ≥ 1       —         —
late: days PLT < 20,000               —          —         1–13      ≥ 14
====================================  =========  ========  ========  ========

Rules (table footnote): early durations are **cumulative**, days of non-stable recovery (< 3
days above the threshold between two days below) counted in; censor at progression, next line of
therapy or death (``censor_day``); late grading needs ≥ 2 tests (a single value is not gradable,
``incomplete``); the late window ends at ``late_end_day`` (default 100, extension allowed).
Recovery = first of 3 consecutive days with PLT ≥ 20,000/µL with no platelet transfusion in the
7 days before (``recovery_day``).

Operational choices (this project; not in the table)
----------------------------------------------------
* One value per day (the lowest); runs of up to 7 consecutive missing days are linearly
  interpolated (as N-ICAHT, Liang), longer gaps stay missing and flag ``incomplete``.
* Late grade: the nadir's grade (< 100,000 → 1, < 50,000 → 2) and the days < 20,000 (→ 3/4),
  provided the second-lowest late value is also < 100,000 (non-transient); otherwise grade 0
  with flag ``transient``.
* Counts within 1 day after a platelet transfusion are kept but flagged
  ``post_transfusion_counts`` (no published rule: UNCONFIRMED handling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from immunoreset.clinical import ctcae
from immunoreset.clinical._counts import check_plausible, count_factor
from immunoreset.clinical.icaht import DAY_RANGE, _series
from immunoreset.clinical.settings import DEFAULT_SETTINGS, ToxicitySettings, _check_settings
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "EARLY_LAST_DAY",
    "TicahtResult",
    "grade_early_ticaht",
    "grade_late_ticaht",
    "grade_ticaht",
]

EARLY_LAST_DAY = 30
LATE_FIRST_DAY = 31
PLT_MAX = 3_000_000.0
BELOW_50, BELOW_20, BELOW_100 = 50_000.0, 20_000.0, 100_000.0


@dataclass(frozen=True, slots=True)
class TicahtResult:
    """A T-ICAHT grade with what it rests on (and CTCAE beside it).

    Attributes
    ----------
    phase : str
        ``early`` or ``late``.
    grade : int or None
        0–4; None when not gradable.
    reasons, flags : tuple of str
        Flags: ``no_values``, ``incomplete``, ``single_value``, ``transient``,
        ``post_transfusion_counts``, ``not_recovered``.
    days_below_50k, days_below_20k : int or None
        Cumulative days (early) or interpolated days < 20,000 (late).
    nadir_per_ul, second_lowest_per_ul : float or None
    recovery_day : int or None
        First of 3 days ≥ 20,000/µL without transfusion in the preceding 7 days.
    ctcae_grade : int or None
        CTCAE grade of the window's nadir (version ``ctcae_version``).
    ctcae_version : str
    """

    phase: str
    grade: int | None
    reasons: tuple[str, ...]
    flags: tuple[str, ...] = ()
    days_below_50k: int | None = None
    days_below_20k: int | None = None
    nadir_per_ul: float | None = None
    second_lowest_per_ul: float | None = None
    recovery_day: int | None = None
    ctcae_grade: int | None = None
    ctcae_version: str = "5.0"


def _prepare(
    days: Any,
    plt: Any,
    unit: str | None,
    censor_day: float | None,
    transfusion_days: Any,
    settings: ToxicitySettings,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = _series("days", days, *DAY_RANGE, None)
    v = _series("platelets_per_ul", plt, 0.0, np.inf if unit else PLT_MAX, d.shape[0])
    if unit is None:
        check_plausible("platelets_per_ul", "platelets", v, settings.implausible_counts == "refuse")
    else:
        v = v * count_factor("platelets", "platelets", unit)
        if (v > PLT_MAX).any():
            raise InvalidInput("platelets_per_ul", v[v > PLT_MAX][0].item(), "≤ 3,000,000 /µL")
    check_range("censor_day", censor_day, *DAY_RANGE, "study day", allow_none=True)
    t = _series("transfusion_days", list(transfusion_days), *DAY_RANGE, None)
    di = np.floor(d).astype(np.int64)
    if censor_day is not None:
        keep = d <= censor_day
        di, v = di[keep], v[keep]
    order = np.lexsort((v, di))
    di, v = di[order], v[order]
    first = np.ones(di.shape[0], bool)
    first[1:] = di[1:] != di[:-1]
    return di[first], v[first], np.floor(t).astype(np.int64)


def _grid(days: np.ndarray, vals: np.ndarray, lo: int, hi: int, max_gap: int) -> np.ndarray:
    """Daily values on study days lo..hi (NaN = missing), interpolating short gaps."""
    grid = np.full(hi - lo + 1, np.nan)
    for i in range(days.shape[0]):
        if i > 0:
            gap = days[i] - days[i - 1]
            if 1 < gap <= max_gap + 1:
                for k in range(1, gap):
                    day = days[i - 1] + k
                    if lo <= day <= hi:
                        frac = k / gap
                        grid[day - lo] = vals[i - 1] + (vals[i] - vals[i - 1]) * frac
        if lo <= days[i] <= hi:
            grid[days[i] - lo] = vals[i]
    return grid


def _cumulative_days(grid: np.ndarray, threshold: float) -> int:
    """Days below ``threshold`` plus non-stable recoveries (< 3 days) between two days below."""
    state = np.where(np.isnan(grid), -1, np.where(grid < threshold, 1, 0))
    counted = state == 1
    j, n = 0, state.shape[0]
    while j < n:
        if state[j] == 0:
            k = j
            while k < n and state[k] == 0:
                k += 1
            if k - j < 3 and j > 0 and k < n and state[j - 1] == 1 and state[k] == 1:
                counted[j:k] = True
            j = k
        else:
            j += 1
    return int(counted.sum())


def _recovery_day(days: np.ndarray, vals: np.ndarray, transfusions: np.ndarray) -> int | None:
    for i in range(days.shape[0] - 2):
        if days[i] < 0 or vals[i] < BELOW_20:
            continue
        run = days[i : i + 3]
        if not (np.all(np.diff(run) == 1) and np.all(vals[i : i + 3] >= BELOW_20)):
            continue
        if not np.any((transfusions > days[i] - 7) & (transfusions <= days[i + 2])):
            return int(days[i])
    return None


def _post_transfusion(days: np.ndarray, transfusions: np.ndarray) -> bool:
    return bool(np.any(np.isin(days, transfusions) | np.isin(days, transfusions + 1)))


def grade_early_ticaht(
    days: Sequence[float],
    platelets_per_ul: Sequence[float],
    *,
    censor_day: float | None = None,
    transfusion_days: Sequence[float] = (),
    unit: str | None = None,
    ctcae_version: str = "5.0",
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> TicahtResult:
    """Early T-ICAHT (days 0–30) from a platelet series.

    Parameters
    ----------
    days : sequence of float
        Study days (day 0 = infusion).
    platelets_per_ul : sequence of float
        Platelets, cells/µL (or in ``unit``, e.g. ``"10^9/L"``).
    censor_day : float or None
        Progression, next line of therapy or death.
    transfusion_days : sequence of float
        Platelet transfusion days (recovery rule; post-transfusion flag).
    unit : str or None
        Unit of the values; None = cells/µL with implausible values refused.
    ctcae_version : str
        CTCAE version of the nadir grade shown beside (``"5.0"`` or ``"6.0"``).
    settings : ToxicitySettings
        ``icaht_max_gap_days``, ``implausible_counts``.

    Returns
    -------
    TicahtResult

    Examples
    --------
    >>> days = list(range(0, 31))
    >>> plt = [150_000] + [40_000] * 7 + [150_000] * 23
    >>> r = grade_early_ticaht(days, plt)
    >>> r.grade, r.days_below_50k, r.ctcae_grade
    (2, 7, 3)
    """
    settings = _check_settings(settings)
    check_choice("ctcae_version", ctcae_version, ctcae.CTCAE_VERSIONS)
    di, v, tr = _prepare(days, platelets_per_ul, unit, censor_day, transfusion_days, settings)
    in_window = (di >= 0) & (di <= EARLY_LAST_DAY)
    if not in_window.any():
        return TicahtResult(
            "early",
            None,
            ("no platelet value within days 0–30",),
            ("no_values", "incomplete"),
            ctcae_version=ctcae_version,
        )
    grid = _grid(di, v, 0, EARLY_LAST_DAY, settings.icaht_max_gap_days)
    d50, d20 = _cumulative_days(grid, BELOW_50), _cumulative_days(grid, BELOW_20)
    g50 = 2 if d50 >= 7 else 1 if d50 >= 1 else 0
    g20 = 4 if d20 >= 14 else 3 if d20 >= 1 else 0
    grade = max(g50, g20)
    reasons = [
        f"PLT < 50,000/µL on {d50} days (cumulative, days 0–30) → {g50}",
        f"PLT < 20,000/µL on {d20} days (cumulative, days 0–30) → {g20}",
    ]
    flags: list[str] = []
    missing = int(np.isnan(grid).sum())
    if missing:
        flags.append("incomplete")
        reasons.append(f"{missing} of days 0–30 without a value: a lower bound")
    if _post_transfusion(di[in_window], tr):
        flags.append("post_transfusion_counts")
    nadir = float(v[in_window].min())
    ct = ctcae.grade_lab("platelet_count_decreased", nadir, version=ctcae_version, unit="cells/uL")
    recovery = _recovery_day(di, v, tr)
    if recovery is None and d20:
        flags.append("not_recovered")
    reasons.append(f"CTCAE v{ctcae_version} nadir {nadir:g}/µL → grade {ct}")
    return TicahtResult(
        "early",
        grade,
        tuple(reasons),
        tuple(flags),
        d50,
        d20,
        nadir,
        None,
        recovery,
        ct,
        ctcae_version,
    )


def grade_late_ticaht(
    days: Sequence[float],
    platelets_per_ul: Sequence[float],
    *,
    censor_day: float | None = None,
    transfusion_days: Sequence[float] = (),
    unit: str | None = None,
    late_end_day: int | None = None,
    ctcae_version: str = "5.0",
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> TicahtResult:
    """Late T-ICAHT (day 31 to ``late_end_day``, default ``settings.late_icaht_last_day``).

    Parameters
    ----------
    days, platelets_per_ul, censor_day, transfusion_days, unit, ctcae_version, settings
        As :func:`grade_early_ticaht`.
    late_end_day : int or None
        Last day of the late window (31–3650; default 100 from the settings).

    Examples
    --------
    >>> grade_late_ticaht([45, 52], [80_000, 95_000]).grade
    1
    >>> grade_late_ticaht([60], [40_000]).flags
    ('single_value', 'incomplete')
    """
    settings = _check_settings(settings)
    check_choice("ctcae_version", ctcae_version, ctcae.CTCAE_VERSIONS)
    end = settings.late_icaht_last_day if late_end_day is None else late_end_day
    check_range("late_end_day", end, LATE_FIRST_DAY, 3650, "study day", integer=True)
    di, v, tr = _prepare(days, platelets_per_ul, unit, censor_day, transfusion_days, settings)
    window = f"days {LATE_FIRST_DAY}–{end}"
    sel = (di >= LATE_FIRST_DAY) & (di <= end)
    n = int(sel.sum())
    if n == 0:
        return TicahtResult(
            "late",
            None,
            (f"no platelet value within {window}",),
            ("no_values", "incomplete"),
            ctcae_version=ctcae_version,
        )
    late = np.sort(v[sel])
    nadir = float(late[0])
    ct = ctcae.grade_lab("platelet_count_decreased", nadir, version=ctcae_version, unit="cells/uL")
    flags: list[str] = []
    if _post_transfusion(di[sel], tr):
        flags.append("post_transfusion_counts")
    if n == 1:
        return TicahtResult(
            "late",
            None,
            (f"single platelet value {nadir:g}/µL in {window}; ≥ 2 tests needed",),
            ("single_value", "incomplete", *flags),
            nadir_per_ul=nadir,
            ctcae_grade=ct,
            ctcae_version=ctcae_version,
        )
    second = float(late[1])
    grid = _grid(di, v, LATE_FIRST_DAY, end, settings.icaht_max_gap_days)
    d20 = int(np.nansum(grid < BELOW_20))
    if second >= BELOW_100:
        grade = 0
        if nadir < BELOW_100:
            flags.append("transient")
        reasons = (f"second-lowest platelet value {second:g}/µL ≥ 100,000 in {window}",)
    else:
        g_nadir = 2 if nadir < BELOW_50 else 1
        g20 = 4 if d20 >= 14 else 3 if d20 >= 1 else 0
        grade = max(g_nadir, g20)
        reasons = (
            f"PLT nadir {nadir:g}/µL in {window} (second lowest {second:g} < 100,000) → {g_nadir}",
            f"PLT < 20,000/µL on {d20} days in {window} → {g20}",
        )
    reasons += (f"CTCAE v{ctcae_version} nadir {nadir:g}/µL → grade {ct}",)
    return TicahtResult(
        "late",
        grade,
        reasons,
        tuple(flags),
        None,
        d20,
        nadir,
        second,
        _recovery_day(di, v, tr),
        ct,
        ctcae_version,
    )


def grade_ticaht(
    days: Sequence[float],
    platelets_per_ul: Sequence[float],
    **kwargs: Any,
) -> tuple[TicahtResult, TicahtResult]:
    """Early and late T-ICAHT of one series (keywords as :func:`grade_late_ticaht`).

    Examples
    --------
    >>> early, late = grade_ticaht([1, 2, 45, 52], [30_000, 30_000, 45_000, 48_000])
    >>> early.grade, late.grade
    (1, 2)
    """
    late_end = kwargs.pop("late_end_day", None)
    return (
        grade_early_ticaht(days, platelets_per_ul, **kwargs),
        grade_late_ticaht(days, platelets_per_ul, late_end_day=late_end, **kwargs),
    )
