"""Autoantibody titres and therapy after CAR T: percent change, seroconversion, time off therapy.

Sources and definitions
-----------------------
* Issue 5 asks for percent change of each titre from baseline at months 1, 3, 6 and 12, time to
  seroconversion (below the assay's positivity cut-off) and time off all immunosuppressants and
  glucocorticoids. The outcomes follow the CD19 CAR T case series: "seroconversion of
  anti-double stranded DNA antibodies" (Mackensen A, et al. *Nat Med* 2022;28(10):2124–2132) and
  "immunosuppressive therapy stopped in all patients" (Müller F, et al. *N Engl J Med*
  2024;390(8):687–700), project spec ``peer-data.md`` §2.1–2.2. Neither defines the windows
  below: they are this project's explicit, documented settings (UNCONFIRMED as a standard).
* **Baseline** — the last sample on or before ``baseline_day`` (default study day 0, the
  infusion day; a sample on day 0 is taken as pre-infusion).
* **Month m** — target study day ``round(30.4375·m)`` (half up; 30.4375 = 365.25/12): month 1 →
  day 30, 3 → 91, 6 → 183, 12 → 365. The value used is the sample nearest the target within
  ± the window (default ±14 d for month 1, ±30 d for later months; :data:`DEFAULT_WINDOWS`),
  among samples after ``baseline_day``; on a tie the earlier sample. None in the window → None.
* **Percent change** — ``100·(value − baseline)/baseline``; ``None`` when the baseline is 0.
* **Seroconversion** — the first sample after ``baseline_day`` *strictly below* the assay's
  positivity cut-off, for a patient *positive at baseline* (baseline ≥ cut-off). Not positive at
  baseline, or no baseline: ``None``, flagged.
* **Time off therapy** — medication intervals ``(start_day, stop_day or None, category)`` with
  ``stop_day`` the last day the drug was taken (inclusive; ``None`` = ongoing). The therapy-free
  day is the day after the last stop of any interval in ``categories`` (default
  immunosuppressant and glucocorticoid, :data:`immunoreset.vocab.MEDICATION_CLASSES`), provided
  nothing in those categories runs after it through the last contact. Time off = days from that
  day through ``last_day`` inclusive (``last_day − last stop``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput, check_choice, check_range
from immunoreset.kinetics.nca import _MAX_DAY, _MIN_DAY, _prepare_cohort, _prepare_series
from immunoreset.vocab import MEDICATION_CLASSES

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_WINDOWS",
    "MonthChange",
    "Seroconversion",
    "TherapyFree",
    "TitreChange",
    "month_target_day",
    "percent_change_cohort",
    "percent_change_from_baseline",
    "seroconversion_day",
    "time_off_therapy",
]

#: Mean days per month (365.25 / 12).
DAYS_PER_MONTH = 30.4375
#: Default half-width of the window around month m (days): month 1 → 14, later months → 30.
DEFAULT_WINDOWS: dict[str, float] = {"month_1": 14.0, "later": 30.0}
_MAX_MONTHS = 240


@dataclass(frozen=True, slots=True)
class MonthChange:
    """The titre at one month after infusion.

    Attributes
    ----------
    month : int
        Month after infusion.
    target_day : int
        ``round(30.4375·month)``.
    window_days : float
        Half-width of the window searched (days).
    sample_day, value : float | None
        The sample used (nearest in the window), in the titre's own unit.
    percent_change : float | None
        ``100·(value − baseline)/baseline``.
    """

    month: int
    target_day: int
    window_days: float
    sample_day: float | None
    value: float | None
    percent_change: float | None


@dataclass(frozen=True, slots=True)
class TitreChange:
    """Percent change of one titre from baseline.

    Attributes
    ----------
    baseline_day : float | None
        Day of the baseline sample (``None`` when there is none).
    baseline_value : float | None
        Baseline titre (assay unit).
    months : tuple[MonthChange, ...]
        One entry per requested month, in order.
    reasons : tuple[str, ...]
        Caveats: ``no_baseline``, ``baseline_zero``, ``no_sample_in_window_m<m>``.
    """

    baseline_day: float | None
    baseline_value: float | None
    months: tuple[MonthChange, ...]
    reasons: tuple[str, ...]

    def percent(self, month: int) -> float | None:
        """Percent change at ``month`` (must be one of the months computed)."""
        for m in self.months:
            if m.month == month:
                return m.percent_change
        allowed = "one of: " + ", ".join(str(m.month) for m in self.months)
        raise InvalidInput("month", month, allowed)


@dataclass(frozen=True, slots=True)
class Seroconversion:
    """Time to seroconversion (titre below the positivity cut-off).

    Attributes
    ----------
    day : float | None
        First study day after baseline strictly below ``cutoff``.
    positive_at_baseline : bool
        Baseline ≥ cutoff.
    baseline_value : float | None
        Baseline titre (assay unit).
    cutoff : float
        The assay's positivity cut-off (assay unit).
    last_day : float | None
        Last sample day.
    censored : bool
        Positive at baseline and still ≥ cutoff at the last sample.
    reasons : tuple[str, ...]
        ``no_baseline``, ``not_positive_at_baseline``, ``no_sample_after_baseline``,
        ``still_positive`` or ``seroconverted``.
    """

    day: float | None
    positive_at_baseline: bool
    baseline_value: float | None
    cutoff: float
    last_day: float | None
    censored: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TherapyFree:
    """Time off immunosuppressants and glucocorticoids.

    Attributes
    ----------
    off_from_day : float | None
        First study day from which nothing in ``categories`` runs through the last contact.
    time_off_days : float | None
        Days from ``off_from_day`` through ``last_day`` inclusive.
    ongoing : bool
        Some drug in ``categories`` still runs at the last contact.
    last_day : float
        Last contact (study day).
    categories : tuple[str, ...]
        Medication classes counted.
    reasons : tuple[str, ...]
        In words.
    """

    off_from_day: float | None
    time_off_days: float | None
    ongoing: bool
    last_day: float
    categories: tuple[str, ...]
    reasons: tuple[str, ...]


# ------------------------------------------------------------------------------ helpers
def month_target_day(month: int) -> int:
    """Target study day of ``month`` (1–240): ``round(30.4375·month)``, halves rounded up.

    Examples
    --------
    >>> [month_target_day(m) for m in (1, 3, 6, 12)]
    [30, 91, 183, 365]
    """
    m = int(check_range("month", month, 1, _MAX_MONTHS, "months", integer=True))
    return math.floor(DAYS_PER_MONTH * m + 0.5)


def _months(at_months: Any) -> tuple[int, ...]:
    if isinstance(at_months, str | bytes) or not isinstance(at_months, Sequence | np.ndarray):
        raise InvalidInput("at_months", at_months, "a sequence of whole months 1–240")
    out = tuple(
        int(check_range("at_months", m, 1, _MAX_MONTHS, "months", integer=True)) for m in at_months
    )
    if not out or len(set(out)) != len(out):
        raise InvalidInput("at_months", at_months, "a non-empty sequence of distinct months")
    return out


def _windows(window_days: Any, months: tuple[int, ...]) -> tuple[float, ...]:
    def one(w: Any) -> float:
        return float(check_range("window_days", w, 0, 183, "days"))

    if window_days is None:
        return tuple(DEFAULT_WINDOWS["month_1" if m == 1 else "later"] for m in months)
    if isinstance(window_days, Mapping):
        missing = [m for m in months if m not in window_days]
        if missing:
            raise InvalidInput("window_days", dict(window_days), f"a window for months {months}")
        return tuple(one(window_days[m]) for m in months)
    w = one(window_days)
    return tuple(w for _ in months)


def _baseline_day(baseline_day: Any) -> float:
    if baseline_day is None:
        return 0.0
    return float(check_range("baseline_day", baseline_day, _MIN_DAY, _MAX_DAY, "study days"))


def _titre_groups_py(offsets, d, bday, targets, windows):  # pragma: no cover - jitted
    """Index of the baseline sample and of the sample used at each month (−1 = none)."""
    n_groups = offsets.size - 1
    n_m = targets.size
    base = np.full(n_groups, -1, np.int64)
    at = np.full((n_groups, n_m), -1, np.int64)
    for g in range(n_groups):
        lo = offsets[g]
        hi = offsets[g + 1]
        first_after = lo
        while first_after < hi and d[first_after] <= bday:
            first_after += 1
        if first_after > lo:
            base[g] = first_after - 1
        for k in range(n_m):
            best = -1
            best_dist = np.inf
            for i in range(first_after, hi):
                dist = abs(d[i] - targets[k])
                if dist <= windows[k] and dist < best_dist:
                    best = i
                    best_dist = dist
                if d[i] > targets[k] + windows[k]:
                    break
            at[g, k] = best
    return base, at


@functools.cache
def _kernel() -> Callable[..., Any]:
    import numba  # heavy: imported on first use only

    return numba.njit(cache=True)(_titre_groups_py)


def _locate(offsets, d, bday, months, windows):
    targets = np.array([month_target_day(m) for m in months], dtype=np.float64)
    return _kernel()(
        offsets.astype(np.int64),
        np.ascontiguousarray(d, dtype=np.float64),
        float(bday),
        targets,
        np.array(windows, dtype=np.float64),
    )


def _pct(value: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(baseline > 0, 100.0 * (value - baseline) / baseline, np.nan)


# ------------------------------------------------------------------------------ public API
def percent_change_from_baseline(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    baseline_day: float | None = None,
    at_months: Sequence[int] = (1, 3, 6, 12),
    window_days: float | Mapping[int, float] | None = None,
    aggregate: str = "error",
) -> TitreChange:
    """Percent change of a titre from baseline at months after infusion.

    Parameters
    ----------
    days : sequence of float
        Study days of the samples (sorted if unsorted).
    values : sequence of float
        Titre per sample, ≥ 0, in the assay's unit (e.g. IU/mL for anti-dsDNA).
    baseline_day : float, optional
        Baseline is the last sample on or before this study day (default 0, the infusion).
    at_months : sequence of int
        Months after infusion, whole numbers 1–240 (default 1, 3, 6, 12).
    window_days : float or mapping month -> float, optional
        Half-width (0–183 days) of the search window around each target day; default ±14 d for
        month 1 and ±30 d for later months.
    aggregate : {"error", "min", "max", "mean"}
        Same-day repeats: refuse (default) or combine.

    Returns
    -------
    TitreChange

    Raises
    ------
    InvalidInput
        Naming the field (lengths, NaN/negative titres, months, windows, repeated days).

    Examples
    --------
    >>> r = percent_change_from_baseline([-3, 0, 28, 95, 200], [400, 380, 190, 38, 20])
    >>> [m.percent_change for m in r.months]
    [-50.0, -90.0, -94.73684210526316, None]
    >>> r.reasons
    ('no_sample_in_window_m12',)
    """
    bday = _baseline_day(baseline_day)
    months = _months(at_months)
    windows = _windows(window_days, months)
    d, cols = _prepare_series(days, {"values": values}, aggregate=aggregate)
    v = cols["values"]
    base, at = _locate(np.array([0, d.size]), d, bday, months, windows)
    reasons: list[str] = []
    b = int(base[0])
    bval = float(v[b]) if b >= 0 else None
    if bval is None:
        reasons.append("no_baseline")
    elif bval == 0:
        reasons.append("baseline_zero")
    out = []
    for k, m in enumerate(months):
        i = int(at[0, k])
        if i < 0:
            reasons.append(f"no_sample_in_window_m{m}")
        val = float(v[i]) if i >= 0 else None
        pct = None
        if val is not None and bval is not None and bval > 0:
            pct = 100.0 * (val - bval) / bval
        out.append(
            MonthChange(
                month=m,
                target_day=month_target_day(m),
                window_days=windows[k],
                sample_day=float(d[i]) if i >= 0 else None,
                value=val,
                percent_change=pct,
            )
        )
    return TitreChange(
        baseline_day=float(d[b]) if b >= 0 else None,
        baseline_value=bval,
        months=tuple(out),
        reasons=tuple(reasons),
    )


def percent_change_cohort(
    patient_ids: Sequence[Any] | np.ndarray,
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    baseline_day: float | None = None,
    at_months: Sequence[int] = (1, 3, 6, 12),
    window_days: float | Mapping[int, float] | None = None,
    aggregate: str = "error",
) -> pd.DataFrame:
    """:func:`percent_change_from_baseline` for every patient of a long-format table.

    Returns
    -------
    pandas.DataFrame
        Index ``patient_id`` (sorted); columns ``baseline_day``, ``baseline_value`` and, for each
        month m, ``day_m<m>``, ``value_m<m>``, ``pct_m<m>`` (NaN where the per-patient result
        has ``None``).

    Examples
    --------
    >>> df = percent_change_cohort(["A", "A", "B", "B"], [0, 30, 0, 31], [100, 20, 50, 75],
    ...                            at_months=[1])
    >>> df["pct_m1"].tolist()
    [-80.0, 50.0]
    """
    bday = _baseline_day(baseline_day)
    months = _months(at_months)
    windows = _windows(window_days, months)
    c = _prepare_cohort(patient_ids, days, {"values": values}, aggregate=aggregate)
    d, v = c.days, c.cols["values"]
    base, at = _locate(c.offsets, d, bday, months, windows)
    d_ext = np.append(d, np.nan)  # index −1 -> NaN
    v_ext = np.append(v, np.nan)
    bval = v_ext[base]
    data: dict[str, np.ndarray] = {"baseline_day": d_ext[base], "baseline_value": bval}
    for k, m in enumerate(months):
        val = v_ext[at[:, k]]
        data[f"day_m{m}"] = d_ext[at[:, k]]
        data[f"value_m{m}"] = val
        data[f"pct_m{m}"] = _pct(val, bval)
    df = pd.DataFrame(data, index=pd.Index(c.ids, name="patient_id"))
    df.attrs.update(months=months, windows=windows, baseline_day=bday)
    return df


def seroconversion_day(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    cutoff: float,
    baseline_day: float | None = None,
    aggregate: str = "error",
) -> Seroconversion:
    """First day after baseline with the titre strictly below the assay's positivity cut-off.

    Parameters
    ----------
    days, values : sequence of float
        Study days and titres (≥ 0, assay unit).
    cutoff : float
        Positivity cut-off of the assay (> 0, same unit); ``value ≥ cutoff`` is positive.
    baseline_day : float, optional
        Baseline = last sample on or before this day (default 0).
    aggregate : {"error", "min", "max", "mean"}
        Same-day repeats.

    Returns
    -------
    Seroconversion

    Examples
    --------
    >>> seroconversion_day([0, 30, 90], [300, 30, 29.9], cutoff=30).day
    90.0
    >>> seroconversion_day([0, 30], [29, 5], cutoff=30).reasons
    ('not_positive_at_baseline',)
    """
    cut = float(check_range("cutoff", cutoff, 0, None, "(assay unit)", lo_open=True))
    bday = _baseline_day(baseline_day)
    d, cols = _prepare_series(days, {"values": values}, aggregate=aggregate)
    v = cols["values"]
    last = float(d[-1]) if d.size else None
    before = np.flatnonzero(d <= bday)
    if before.size == 0:
        return Seroconversion(None, False, None, cut, last, False, ("no_baseline",))
    bval = float(v[before[-1]])
    if bval < cut:
        return Seroconversion(None, False, bval, cut, last, False, ("not_positive_at_baseline",))
    after = d > bday
    if not after.any():
        return Seroconversion(None, True, bval, cut, last, True, ("no_sample_after_baseline",))
    below = np.flatnonzero(after & (v < cut))
    if below.size == 0:
        return Seroconversion(None, True, bval, cut, last, True, ("still_positive",))
    return Seroconversion(float(d[below[0]]), True, bval, cut, last, False, ("seroconverted",))


def time_off_therapy(
    medications: Sequence[tuple[float, float | None, str]],
    *,
    last_day: float,
    categories: Sequence[str] = ("immunosuppressant", "glucocorticoid"),
) -> TherapyFree:
    """First study day free of immunosuppressants/glucocorticoids for good, and time off since.

    Parameters
    ----------
    medications : sequence of (start_day, stop_day or None, category)
        Medication intervals in study days; ``stop_day`` is the last day taken (≥ start_day) or
        ``None`` when ongoing; ``category`` from :data:`immunoreset.vocab.MEDICATION_CLASSES`.
    last_day : float
        Last contact (study day); no interval may start after it.
    categories : sequence of str
        Classes counted (default immunosuppressant and glucocorticoid).

    Returns
    -------
    TherapyFree

    Examples
    --------
    >>> r = time_off_therapy([(-400, 20, "glucocorticoid"), (-300, -6, "immunosuppressant"),
    ...                       (0, None, "anti_infective")], last_day=365)
    >>> r.off_from_day, r.time_off_days
    (21.0, 345.0)
    """
    last = float(check_range("last_day", last_day, _MIN_DAY, _MAX_DAY, "study days"))
    if isinstance(categories, str) or not categories:
        raise InvalidInput("categories", categories, "a non-empty sequence of medication classes")
    cats = tuple(check_choice("categories", c, MEDICATION_CLASSES) for c in categories)
    if isinstance(medications, str | bytes) or not isinstance(medications, Sequence):
        raise InvalidInput("medications", medications, "a sequence of (start, stop, category)")
    last_stop = -math.inf
    ongoing = False
    n = 0
    for k, med in enumerate(medications):
        if not isinstance(med, Sequence) or isinstance(med, str) or len(med) != 3:
            raise InvalidInput("medications", med, "(start_day, stop_day or None, category)")
        start, stop, cat = med
        s = float(check_range("start_day", start, _MIN_DAY, _MAX_DAY, "study days"))
        if s > last:
            msg = f"medications[{k}] start_day must be ≤ last_day ({last:g}); got {start!r}"
            raise InvalidInput("start_day", start, f"≤ last_day ({last:g})", message=msg)
        if stop is not None:
            e = float(check_range("stop_day", stop, s, _MAX_DAY, "study days"))
        check_choice("category", cat, MEDICATION_CLASSES)
        if cat not in cats:
            continue
        n += 1
        if stop is None:
            ongoing = True
        else:
            last_stop = max(last_stop, e)
    words = " or ".join(cats)
    if n == 0:
        return TherapyFree(None, None, False, last, cats, (f"no {words} recorded",))
    if ongoing or last_stop >= last:
        return TherapyFree(None, None, True, last, cats, (f"{words} still given at last contact",))
    off = last_stop + 1.0
    return TherapyFree(
        off,
        last - last_stop,
        False,
        last,
        cats,
        (f"last {words} on day {last_stop:g}; free from day {off:g} to day {last:g}",),
    )
