"""Record helpers of the SYNTHETIC demo builder: calendar, noise, lab/assessment records, ANC."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from immunoreset import vocab
from immunoreset.course import DiseaseAssessment, LabResult
from immunoreset.demo.plan import _LATE_WINDOW, _Plan
from immunoreset.errors import InvalidInput

# --------------------------------------------------------------------------- helpers
_TIMEDELTAS = {d: dt.timedelta(days=d) for d in range(-800, 1500)}


class _Calendar:
    """Dates of study days for one course."""

    __slots__ = ("day0",)

    def __init__(self, day0: dt.date) -> None:
        self.day0 = day0

    def __call__(self, day: int) -> dt.date:
        td = _TIMEDELTAS.get(day)
        return self.day0 + (td if td is not None else dt.timedelta(days=day))

    def many(self, days: Any) -> list[dt.date]:
        day0, tds = self.day0, _TIMEDELTAS
        return [day0 + tds[d] for d in days]


def _noise(rng: np.random.Generator, n: int, sd: float) -> np.ndarray:
    return np.exp(sd * rng.standard_normal(n))


_new = object.__new__
_setattr = object.__setattr__


def _check_bulk(analyte: str, values: np.ndarray) -> str:
    """Apply :class:`LabResult`'s value checks to a whole series; return the canonical unit.

    The records are then built without re-running the per-record checks (5× faster; the test
    suite re-validates generated records through the real constructor).
    """
    unit, maximum, _ = vocab.ANALYTES[analyte]
    if values.size and not (np.isfinite(values).all() and 0 <= values.min() <= values.max()):
        raise InvalidInput("value", float(values.min()), f"finite and ≥ 0 {unit} ({analyte})")
    if values.size and values.max() > maximum:
        raise InvalidInput("value", float(values.max()), f"≤ {maximum:g} {unit} ({analyte})")
    return unit


def _lab(day: dt.date, analyte: str, value: float, unit: str, lloq: Any, below: bool) -> Any:
    r = _new(LabResult)
    _setattr(r, "date", day)
    _setattr(r, "analyte", analyte)
    _setattr(r, "value", value)
    _setattr(r, "unit", unit)
    _setattr(r, "lloq", lloq)
    _setattr(r, "below_lloq", below)
    return r


def _assessment(
    day: dt.date, instrument: str, score: float, items: dict[str, float]
) -> DiseaseAssessment:
    """A :class:`DiseaseAssessment` whose score is checked here; items are in range by
    construction (integers within each item's maximum), re-validated by the test suite."""
    lo, hi, _ = vocab.INSTRUMENTS[instrument]
    if not lo <= score <= hi:
        raise InvalidInput("score", score, f"within {lo:g}–{hi:g} ({instrument})")
    r = _new(DiseaseAssessment)
    _setattr(r, "date", day)
    _setattr(r, "instrument", instrument)
    _setattr(r, "score", score)
    _setattr(r, "items", items)
    return r


def _emit(
    out: list[LabResult],
    cal: _Calendar,
    analyte: str,
    days: Any,
    values: np.ndarray,
    decimals: int,
    lloq: float | None = None,
) -> None:
    """Append one analyte's results (canonical unit); below ``lloq`` store the LLOQ, flagged."""
    vals = np.round(values, decimals)
    if lloq is not None:
        vals = np.maximum(vals, lloq)
    unit = _check_bulk(analyte, vals)
    dates = cal.many(days)
    if lloq is None:
        out.extend(
            _lab(d, analyte, v, unit, None, False)
            for d, v in zip(dates, vals.tolist(), strict=True)
        )
        return
    below = (np.round(values, decimals) < lloq).tolist()
    out.extend(
        _lab(d, analyte, v, unit, lloq, b)
        for d, v, b in zip(dates, vals.tolist(), below, strict=True)
    )


def _spread(total: int, maxima: tuple[tuple[str, int], ...]) -> dict[str, float]:
    """Integer item scores (each ≤ its maximum) that sum to ``total``."""
    cap = sum(m for _, m in maxima)
    frac = total / cap
    items = [int(frac * m) for _, m in maxima]
    rest = total - sum(items)
    i = 0
    while rest > 0:
        if items[i] < maxima[i][1]:
            items[i] += 1
            rest -= 1
        i = (i + 1) % len(items)
    return {name: float(v) for (name, _), v in zip(maxima, items, strict=True)}


def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-(((t - centre) / width) ** 2))


def _crs_shape(t: np.ndarray, peak: float, decay: float) -> np.ndarray:
    rise = np.exp(-(((t - peak) / 1.5) ** 2))
    fall = np.exp(-np.maximum(t - peak, 0) / decay)
    return np.where(t < peak, rise, fall)


# --------------------------------------------------------------------------- ANC
def _anc_early(plan: _Plan, base: float, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Daily ANC on days −7…30; returns values and the ≤ 500 run (start, length)."""
    t = np.arange(-7, 31, dtype=float)
    run = {0: 0, 1: int(rng.integers(1, 7)), 2: int(rng.integers(7, 14))}.get(
        plan.early_icaht, int(rng.integers(14, 21))
    )
    if run == 0:
        nadir_day = float(rng.integers(5, 10))
        kx = [-7.0, -3.0, nadir_day, nadir_day + 9, 60.0]
        ky = [base, base * 0.95, plan.anc_nadir, 0.8 * base, base]
        v = np.exp(np.interp(t, kx, np.log(ky))) * _noise(rng, t.size, 0.05)
        return np.maximum(v, 560.0), 0, 0
    start = int(rng.integers(1, 6))
    end = start + run - 1
    low = float(rng.uniform(120, 300) if plan.early_icaht >= 3 else rng.uniform(150, 400))
    kx = [-7.0, -3.0, start - 1.0]
    ky = [base, base, 650.0]
    if run >= 3:
        kx += [float(start), (start + end) // 2 + 0.0, float(end)]
        ky += [480.0, low, 480.0]
    else:
        kx += [float(d) for d in range(start, end + 1)]
        ky += [low] * run
    kx += [end + 1.0, end + 10.0, end + 40.0]
    ky += [650.0, 0.8 * base, base]
    v = np.exp(np.interp(t, kx, np.log(ky))) * _noise(rng, t.size, 0.05)
    inside = (t >= start) & (t <= end)
    v = np.where(inside, np.clip(v, 110.0, 490.0), np.maximum(v, 520.0))
    return v, start, run


def _anc_late(
    plan: _Plan, base: float, days: list[int], rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """ANC after day 30 on ``days``; returns values and the days of the late dip."""
    t = np.asarray(days, dtype=float)
    v = np.maximum(base * rng.uniform(0.85, 1.1, t.size), 1600.0)
    lo, hi = _LATE_WINDOW
    window = [i for i, d in enumerate(days) if lo <= d <= hi]
    dip: list[int] = []
    if plan.late_icaht and len(window) >= 2:
        k = int(rng.integers(2, 4))
        first = int(rng.integers(0, max(1, len(window) - k + 1)))
        idx = window[first : first + k]
        band = (1050.0, 1480.0) if plan.late_icaht == 1 else (620.0, 980.0)
        v[idx] = rng.uniform(*band, len(idx))
        dip = [days[i] for i in idx]
    return v, dip
