"""B-cell aplasia after CD19 CAR T: day of clearance, day of reconstitution, duration.

Definitions and their sources (project spec ``model-physiology.md`` §2.5, "B-cell recovery
after depletion")
--------------------------------------------------------------------------------------------
* **Clearance** — the first study day ≥ 0 (on or after the infusion) with CD19⁺ B cells
  *strictly below* ``clearance_threshold`` (default **< 1 cell/µL**, the project default of
  issue 5; no published source gives this number: UNCONFIRMED, hence a setting).
  The tisagenlecleucel re-infusion trial NCT04225676 (cancer.gov NCI-2020-06472) defines
  B-cell aplasia as **< 50/µL** (confidence HIGH): ``clearance_threshold=50``.
* **Reconstitution** — the first sample *after* the clearance day whose measure is *at or
  above* ``threshold``. The measure is chosen by ``definition`` (:data:`DEFINITIONS`):

  - ``"absolute"``: CD19⁺ cells/µL ≥ threshold (default **≥ 10 cells/µL**, project default of
    issue 5, UNCONFIRMED in the literature). NCT04225676 "loss of B-cell aplasia": ≥ 50/µL.
  - ``"percent_of_lymphocytes"``: 100·CD19⁺/lymphocytes ≥ threshold %; NCT04225676 "loss of
    B-cell aplasia" also counts ≥ 10 % of lymphocytes.
  - ``"percent_of_baseline"``: 100·CD19⁺/baseline ≥ threshold %, baseline given by the caller
    (pre-lymphodepletion count). No source in the spec: UNCONFIRMED, explicit threshold.

  :data:`PRESETS` holds the NCT04225676 settings by name. One sample at or above the
  threshold counts (no confirmation by a second sample: UNCONFIRMED whether sites require it).
* **Aplasia duration** — reconstitution day − clearance day (days). A patient still aplastic at
  the last sample is **censored**: the duration is then last sample day − clearance day (time
  observed in aplasia), the input Kaplan–Meier needs (:mod:`immunoreset.kinetics.survival`).

Published CD19 CAR T figures for comparison (peer-data §2.1–2.2): B-cell reappearance
110 ± 32 d (Mackensen A, et al. *Nat Med* 2022;28:2124–2132); aplasia 112 ± 47 d (Müller F,
et al. *N Engl J Med* 2024;390:687–700).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput, check_choice, check_range
from immunoreset.kinetics.nca import _float_array, _prepare_cohort, _prepare_series

__all__ = [
    "DEFINITIONS",
    "PRESETS",
    "BcellResult",
    "aplasia_cohort",
    "aplasia_duration",
    "clearance_day",
    "reconstitution_day",
]

#: Reconstitution definitions: name -> (unit of the measure, largest threshold allowed, source).
DEFINITIONS: dict[str, tuple[str, float, str]] = {
    "absolute": (
        "cells/uL",
        100_000.0,
        "CD19+ cells/uL; default 10 (issue 5, UNCONFIRMED); NCT04225676 uses 50",
    ),
    "percent_of_lymphocytes": (
        "% of lymphocytes",
        100.0,
        "CD19+ as % of lymphocytes; NCT04225676 loss of aplasia >= 10 %",
    ),
    "percent_of_baseline": (
        "% of baseline",
        1_000.0,
        "CD19+ as % of the pre-lymphodepletion count; no published source (UNCONFIRMED)",
    ),
}

#: Named settings for :func:`aplasia_duration` from model-physiology §2.5.
PRESETS: dict[str, dict[str, Any]] = {
    "project_default": {
        "clearance_threshold": 1.0,
        "threshold": 10.0,
        "definition": "absolute",
    },
    "nct04225676_absolute": {
        "clearance_threshold": 50.0,
        "threshold": 50.0,
        "definition": "absolute",
    },
    "nct04225676_lymphocytes": {
        "clearance_threshold": 50.0,
        "threshold": 10.0,
        "definition": "percent_of_lymphocytes",
    },
}


@dataclass(frozen=True, slots=True)
class BcellResult:
    """B-cell aplasia of one patient.

    Attributes
    ----------
    cleared : bool
        B cells fell below the clearance threshold on or after day 0.
    clearance_day : float | None
        First such study day.
    reconstitution_day : float | None
        First later day at or above the reconstitution threshold.
    aplasia_days : float | None
        ``reconstitution_day − clearance_day``; when censored ``last_day − clearance_day``;
        ``None`` when never cleared.
    censored : bool
        Cleared and still aplastic at the last sample.
    last_day : float | None
        Day of the last sample (``None`` when there is none).
    definition : str
        The reconstitution definition used.
    reasons : tuple[str, ...]
        How the result came about, in words.
    """

    cleared: bool
    clearance_day: float | None
    reconstitution_day: float | None
    aplasia_days: float | None
    censored: bool
    last_day: float | None
    definition: str
    reasons: tuple[str, ...]


# ------------------------------------------------------------------------------ kernel
def _aplasia_groups_py(offsets, d, v, metric, cthr, rthr):  # pragma: no cover - jitted
    n_groups = offsets.size - 1
    clear = np.full(n_groups, np.nan)
    recon = np.full(n_groups, np.nan)
    last = np.full(n_groups, np.nan)
    for g in range(n_groups):
        lo = offsets[g]
        hi = offsets[g + 1]
        if hi == lo:
            continue
        last[g] = d[hi - 1]
        i = lo
        while i < hi and (d[i] < 0.0 or not v[i] < cthr):
            i += 1
        if i == hi:
            continue
        clear[g] = d[i]
        j = i + 1
        while j < hi and not metric[j] >= rthr:
            j += 1
        if j < hi:
            recon[g] = d[j]
    return clear, recon, last


@functools.cache
def _kernel() -> Callable[..., Any]:
    import numba  # heavy: imported on first use only

    return numba.njit(cache=True)(_aplasia_groups_py)


def _run(offsets, d, v, metric, cthr, rthr):
    return _kernel()(
        offsets.astype(np.int64),
        np.ascontiguousarray(d, dtype=np.float64),
        np.ascontiguousarray(v, dtype=np.float64),
        np.ascontiguousarray(metric, dtype=np.float64),
        float(cthr),
        float(rthr),
    )


# ------------------------------------------------------------------------------ checks
def _check_thresholds(clearance_threshold: Any, threshold: Any, definition: str) -> tuple:
    check_choice("definition", definition, DEFINITIONS)
    unit, hi, _ = DEFINITIONS[definition]
    c = check_range("clearance_threshold", clearance_threshold, 0, 1e5, "cells/uL", lo_open=True)
    c = float(c)
    r = float(check_range("threshold", threshold, 0, hi, unit, lo_open=True))
    if definition == "absolute" and r < c:
        raise InvalidInput(
            "threshold", threshold, f"≥ clearance_threshold ({c:g} cells/uL) for 'absolute'"
        )
    return c, r


def _metric(
    definition: str,
    values: np.ndarray,
    lymphocytes: np.ndarray | None,
    baseline: np.ndarray | float | None,
) -> np.ndarray:
    """The reconstitution measure per sample (cells/uL or %)."""
    if definition == "absolute":
        return values
    if definition == "percent_of_lymphocytes":
        assert lymphocytes is not None
        if np.any(values > lymphocytes):
            i = int(np.flatnonzero(values > lymphocytes)[0])
            raise InvalidInput(
                "lymphocytes",
                float(lymphocytes[i]),
                f"≥ the CD19+ count of the same sample ({float(values[i]):g} cells/uL)",
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(lymphocytes > 0, 100.0 * values / lymphocytes, 0.0)
        return pct
    assert baseline is not None
    return 100.0 * values / baseline


def _need(definition: str, lymphocytes: Any, baseline: Any) -> None:
    if definition == "percent_of_lymphocytes" and lymphocytes is None:
        raise InvalidInput(
            "lymphocytes", None, "lymphocyte counts (cells/uL) per sample for this definition"
        )
    if definition == "percent_of_baseline" and baseline is None:
        raise InvalidInput("baseline", None, "the baseline CD19+ count (cells/uL), > 0")


def _reasons(res: tuple[float, float, float], cthr: float, rthr: float, definition: str):
    clear, recon, last = res
    unit = DEFINITIONS[definition][0]
    if np.isnan(last):
        return ("no samples",)
    if np.isnan(clear):
        return (f"never < {cthr:g} cells/uL on or after day 0",)
    out = [f"cleared: first < {cthr:g} cells/uL on day {clear:g}"]
    if np.isnan(recon):
        out.append(f"censored: still < {rthr:g} {unit} at last sample (day {last:g})")
    else:
        out.append(f"reconstituted: first ≥ {rthr:g} {unit} on day {recon:g}")
    return tuple(out)


def _result(res: tuple[float, float, float], cthr: float, rthr: float, definition: str):
    clear, recon, last = res
    cleared = not bool(np.isnan(clear))
    censored = cleared and bool(np.isnan(recon))
    if not cleared:
        aplasia = None
    elif censored:
        aplasia = float(last - clear)
    else:
        aplasia = float(recon - clear)
    return BcellResult(
        cleared=cleared,
        clearance_day=float(clear) if cleared else None,
        reconstitution_day=None if np.isnan(recon) else float(recon),
        aplasia_days=aplasia,
        censored=censored,
        last_day=None if np.isnan(last) else float(last),
        definition=definition,
        reasons=_reasons(res, cthr, rthr, definition),
    )


# ------------------------------------------------------------------------------ public API
def aplasia_duration(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    clearance_threshold: float = 1.0,
    threshold: float = 10.0,
    definition: str = "absolute",
    lymphocytes: Sequence[float] | np.ndarray | None = None,
    baseline: float | None = None,
    aggregate: str = "error",
) -> BcellResult:
    """Clearance, reconstitution and duration of B-cell aplasia of one patient.

    Parameters
    ----------
    days : sequence of float
        Study days of the samples (day 0 = infusion); sorted if unsorted.
    values : sequence of float
        CD19⁺ B cells, cells/uL, ≥ 0.
    clearance_threshold : float
        Cleared when strictly below this (cells/uL, > 0; default 1).
    threshold : float
        Reconstituted when the measure is at or above this (default 10), in the unit of
        ``definition``: cells/uL (≥ ``clearance_threshold``, ≤ 100000), % of lymphocytes
        (≤ 100) or % of baseline (≤ 1000).
    definition : {"absolute", "percent_of_lymphocytes", "percent_of_baseline"}
        The measure compared with ``threshold`` (:data:`DEFINITIONS`).
    lymphocytes : sequence of float, optional
        Absolute lymphocytes (cells/uL) per sample; required for ``"percent_of_lymphocytes"``.
    baseline : float, optional
        Pre-lymphodepletion CD19⁺ count (cells/uL, > 0); required for ``"percent_of_baseline"``.
    aggregate : {"error", "min", "max", "mean"}
        Same-day repeats: refuse (default) or combine.

    Returns
    -------
    BcellResult

    Raises
    ------
    InvalidInput
        Naming the field: bad thresholds, unknown definition, missing lymphocytes/baseline,
        NaN or negative counts, lengths that differ, repeated days.

    Examples
    --------
    >>> r = aplasia_duration([-5, 0, 7, 60, 110, 120], [150, 40, 0.5, 0.2, 12, 30])
    >>> r.clearance_day, r.reconstitution_day, r.aplasia_days, r.censored
    (7.0, 110.0, 103.0, False)
    """
    cthr, rthr = _check_thresholds(clearance_threshold, threshold, definition)
    _need(definition, lymphocytes, baseline)
    cols: dict[str, Any] = {"values": values}
    if lymphocytes is not None and definition == "percent_of_lymphocytes":
        cols["lymphocytes"] = lymphocytes
    base = None
    if definition == "percent_of_baseline":
        base = float(check_range("baseline", baseline, 0, 100_000, "cells/uL", lo_open=True))
    d, c = _prepare_series(days, cols, aggregate=aggregate)
    metric = _metric(definition, c["values"], c.get("lymphocytes"), base)
    offsets = np.array([0, d.size], dtype=np.int64)
    clear, recon, last = _run(offsets, d, c["values"], metric, cthr, rthr)
    return _result((clear[0], recon[0], last[0]), cthr, rthr, definition)


def clearance_day(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    threshold: float = 1.0,
    aggregate: str = "error",
) -> float | None:
    """First study day ≥ 0 with CD19⁺ B cells strictly below ``threshold`` (cells/uL).

    Examples
    --------
    >>> clearance_day([-5, 0, 3, 7], [200, 1.0, 0.99, 0.0])
    3.0
    >>> clearance_day([0, 7], [1.0, 1.0]) is None
    True
    """
    return aplasia_duration(
        days, values, clearance_threshold=threshold, threshold=threshold, aggregate=aggregate
    ).clearance_day


def reconstitution_day(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    threshold: float = 10.0,
    definition: str = "absolute",
    clearance_threshold: float = 1.0,
    lymphocytes: Sequence[float] | np.ndarray | None = None,
    baseline: float | None = None,
    aggregate: str = "error",
) -> float | None:
    """First day after clearance at or above ``threshold``; ``None`` if never (or never cleared).

    Parameters are those of :func:`aplasia_duration`.

    Examples
    --------
    >>> reconstitution_day([0, 7, 90, 100], [50, 0.5, 9.99, 10.0])
    100.0
    >>> reconstitution_day([0, 7, 90], [50, 0.5, 4.0], threshold=10,
    ...                    definition="percent_of_lymphocytes", lymphocytes=[900, 300, 40])
    90.0
    """
    return aplasia_duration(
        days,
        values,
        clearance_threshold=clearance_threshold,
        threshold=threshold,
        definition=definition,
        lymphocytes=lymphocytes,
        baseline=baseline,
        aggregate=aggregate,
    ).reconstitution_day


def aplasia_cohort(
    patient_ids: Sequence[Any] | np.ndarray,
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    clearance_threshold: float = 1.0,
    threshold: float = 10.0,
    definition: str = "absolute",
    lymphocytes: Sequence[float] | np.ndarray | None = None,
    baseline: Mapping[Any, float] | pd.Series | None = None,
    aggregate: str = "error",
) -> pd.DataFrame:
    """:func:`aplasia_duration` for every patient of a long-format table, in one compiled pass.

    Parameters
    ----------
    patient_ids, days, values : sequence
        One entry per sample (rows need not be sorted).
    lymphocytes : sequence of float, optional
        Lymphocytes (cells/uL) per row, for ``"percent_of_lymphocytes"``.
    baseline : mapping or pandas.Series, optional
        Patient id -> baseline CD19⁺ count (cells/uL, > 0), for ``"percent_of_baseline"``;
        every patient must have one.
    clearance_threshold, threshold, definition, aggregate
        As in :func:`aplasia_duration`.

    Returns
    -------
    pandas.DataFrame
        Index ``patient_id`` (sorted); columns ``cleared``, ``clearance_day``,
        ``reconstitution_day``, ``aplasia_days``, ``censored``, ``last_day`` (NaN for None).

    Examples
    --------
    >>> df = aplasia_cohort(["A", "A", "A", "B", "B"], [0, 7, 100, 0, 7], [80, 0.2, 15, 90, 0.1])
    >>> df[["clearance_day", "reconstitution_day", "aplasia_days", "censored"]].to_numpy().tolist()
    [[7.0, 100.0, 93.0, False], [7.0, nan, 0.0, True]]
    """
    cthr, rthr = _check_thresholds(clearance_threshold, threshold, definition)
    _need(definition, lymphocytes, baseline)
    cols: dict[str, Any] = {"values": values}
    if definition == "percent_of_lymphocytes":
        cols["lymphocytes"] = lymphocytes
    c = _prepare_cohort(patient_ids, days, cols, aggregate=aggregate)
    base_rows = None
    if definition == "percent_of_baseline":
        base = pd.Series(baseline) if not isinstance(baseline, pd.Series) else baseline
        per_patient = base.reindex(c.ids)
        arr = _float_array("baseline", per_patient.to_numpy(dtype=np.float64))
        bad = ~(arr > 0) | ~np.isfinite(arr)
        if bad.any():
            pid = c.ids[np.flatnonzero(bad)[0]]
            raise InvalidInput(
                "baseline",
                pid,
                "a baseline count > 0 cells/uL for every patient",
                message=f"baseline must give a count > 0 cells/uL for every patient; "
                f"missing or invalid for {pid!r}",
            )
        base_rows = np.repeat(arr, np.diff(c.offsets))
    metric = _metric(definition, c.cols["values"], c.cols.get("lymphocytes"), base_rows)
    clear, recon, last = _run(c.offsets, c.days, c.cols["values"], metric, cthr, rthr)
    cleared = ~np.isnan(clear)
    censored = cleared & np.isnan(recon)
    aplasia = np.where(censored, last - clear, recon - clear)
    df = pd.DataFrame(
        {
            "cleared": cleared,
            "clearance_day": clear,
            "reconstitution_day": recon,
            "aplasia_days": aplasia,
            "censored": censored,
            "last_day": last,
        },
        index=pd.Index(c.ids, name="patient_id"),
    )
    unit = DEFINITIONS[definition][0]
    df.attrs.update(clearance_threshold=cthr, threshold=rthr, definition=definition, unit=unit)
    return df
