"""Non-compartmental analysis (NCA) of CAR T cellular kinetics, following PKNCA conventions.

Source
------
Denney W, Duvvuri S, Buckeridge C. "Simple, automatic noncompartmental analysis: the PKNCA R
package." *J Pharmacokinet Pharmacodyn* 2015;42(1):11–107 (abstract). Conventions taken from the
PKNCA documentation (``PKNCA.options()``, ``pk.calc.auc``, ``clean.conc.blq``,
``pk.calc.half.life``) as summarised in the project's ``specs/ecosystem.md``
("Non-compartmental analysis: PKNCA conventions"):

* **AUC** — "linear-up/log-down": the linear trapezoid while the level rises or stays flat, the
  log trapezoid ``Δt·(C1 − C2)/ln(C1/C2)`` while it falls and both values are > 0; linear when
  either value is 0 (PKNCA ``auc.method = "lin up/log down"``, its default).
* **Tmax** — the first time of Cmax on ties (PKNCA ``first.tmax = TRUE``).
* **Below the LLOQ (BLQ)** — PKNCA's default ``conc.blq = list(first = "keep", middle = "drop",
  last = "keep")``, where "keep" means *kept as 0* (PKNCA codes BLQ as 0). Note that PKNCA keeps
  **every** BLQ value after the last quantifiable one (not only the first); an area then only
  accrues on the segment from Tlast down to the first of them. That is ``blq_rule =
  "keep_first_last"`` here. The other choices are explicit settings (see :data:`BLQ_RULES`).
  Every BLQ value kept as 0 or dropped is **flagged** in ``NcaResult.flags``.
* **λz** — see :func:`terminal_slope` (PKNCA ``adj.r.squared.factor = 1e-4``,
  ``min.hl.points = 3``, ``allow.tmax.in.half.life = FALSE``, ``min.hl.r.squared = 0.9``,
  ``min.span.ratio = 2``, ``max.aucinf.pext = 20``).

Choices of this project (not PKNCA's; each is a setting or a flag)
-----------------------------------------------------------------
* A value is *quantifiable* when ``value ≥ lloq``; ``value < lloq`` is BLQ (whatever number the
  lab reported below the LLOQ, including 0).
* Only samples on or after ``start`` (default study day 0, the infusion) enter any parameter.
  Cmax/Tmax, Clast/Tlast and persistence use every such sample; the AUC uses ``[start, end]``.
* No sample at ``start``: CAR T cells are absent from blood before the infusion, so by default
  a level of 0 is imputed at ``start`` (PKNCA's ``start_conc0`` imputation), flagged
  ``start_imputed_zero``; ``impute_start_zero=False`` instead leaves the AUC undefined
  (``auc_window_not_covered``).
* The last usable sample before ``end``: the AUC is **not extrapolated**; it is ``None`` and
  flagged ``auc_window_not_covered``. When samples straddle ``end`` the level at ``end`` is
  interpolated (log when falling between two values > 0, otherwise linear), flagged
  ``end_interpolated``.
* ``persistence_day`` is the last day with a quantifiable value (``= tlast``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput, check_choice, check_range
from immunoreset.vocab import ANALYTES

__all__ = [
    "AGGREGATES",
    "ASSAYS",
    "BLQ_RULES",
    "NCA_FLAGS",
    "NcaResult",
    "TerminalSlope",
    "compute_nca",
    "compute_nca_cohort",
    "terminal_slope",
]

#: Assay -> canonical unit (from :data:`immunoreset.vocab.ANALYTES`).
ASSAYS: dict[str, str] = {
    "flow": ANALYTES["car_t_flow"][0],
    "qpcr": ANALYTES["car_t_qpcr"][0],
}

#: BLQ handling: rule -> (first, middle, last) action, each "zero" (kept as 0) or "drop".
#: "first" = BLQ before the first quantifiable value (all of them when none is quantifiable),
#: "middle" = between the first and last quantifiable values, "last" = after the last one.
BLQ_RULES: dict[str, tuple[str, str, str]] = {
    # PKNCA default: conc.blq = list(first="keep", middle="drop", last="keep")
    "keep_first_last": ("zero", "drop", "zero"),
    # PKNCA conc.blq = "keep": every BLQ value counts as 0
    "zero": ("zero", "zero", "zero"),
    # PKNCA conc.blq = "drop": every BLQ value is ignored
    "drop": ("drop", "drop", "drop"),
}
_BLQ_CODES = {name: i for i, name in enumerate(BLQ_RULES)}

#: How repeated samples on the same study day are combined ("error" refuses them).
AGGREGATES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None] = {
    "error": None,
    "min": np.minimum.reduceat,
    "max": np.maximum.reduceat,
    "mean": lambda v, starts: np.add.reduceat(v, starts) / np.diff(np.append(starts, v.size)),
}

#: Flags an NCA result can carry (bit i of the kernel's mask is flag i).
NCA_FLAGS: tuple[str, ...] = (
    "no_samples",  # no sample on or after start
    "single_sample",  # exactly one sample on or after start
    "all_blq",  # no quantifiable value
    "blq_first_set_to_zero",
    "blq_first_dropped",
    "blq_in_middle_set_to_zero",
    "blq_in_middle_dropped",
    "blq_last_set_to_zero",
    "blq_last_dropped",
    "start_imputed_zero",
    "auc_window_not_covered",
    "end_interpolated",
)
_FLAG_BIT = {name: 1 << i for i, name in enumerate(NCA_FLAGS)}

_MAX_DAY = 36_525.0  # 100 years of follow-up, in days
_MIN_DAY = -3_653.0  # 10 years before infusion


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True, slots=True)
class NcaResult:
    """NCA parameters of one patient and one assay.

    Attributes
    ----------
    cmax, tmax : float | None
        Highest quantifiable value (``unit``) and the first study day it was seen.
    auc : float | None
        AUC from ``auc_start`` to ``auc_end`` (``unit``·day), lin-up/log-down; ``None`` when
        the samples do not cover the window (never extrapolated).
    auc_start, auc_end : float
        The AUC window (study days), e.g. 0–28 or 0–84.
    clast, tlast : float | None
        Last quantifiable value and its day.
    persistence_day : float | None
        Last study day with a quantifiable value (``= tlast``).
    n_samples, n_blq : int
        Samples on or after ``auc_start``, and how many were below the LLOQ.
    lloq : float
        The assay's lower limit of quantification (``unit``).
    assay, unit, blq_rule : str
        ``"flow"`` (cells/uL) or ``"qpcr"`` (copies/ug), and the BLQ rule used.
    flags : tuple[str, ...]
        Caveats, from :data:`NCA_FLAGS`.
    """

    cmax: float | None
    tmax: float | None
    auc: float | None
    auc_start: float
    auc_end: float
    clast: float | None
    tlast: float | None
    persistence_day: float | None
    n_samples: int
    n_blq: int
    lloq: float
    assay: str
    unit: str
    blq_rule: str
    flags: tuple[str, ...]

    @property
    def auc_unit(self) -> str:
        """Unit of the AUC (``unit``·day)."""
        return f"{self.unit}*day"

    @property
    def reasons(self) -> tuple[str, ...]:
        """The flags (the project-wide name for a result's explanations)."""
        return self.flags


@dataclass(frozen=True, slots=True)
class TerminalSlope:
    """Terminal elimination rate constant λz chosen as PKNCA does.

    Attributes
    ----------
    lambda_z : float | None
        Rate constant (1/day), > 0; ``None`` when no acceptable fit exists.
    half_life : float | None
        ``ln 2 / λz`` (days).
    r_squared, adj_r_squared : float | None
        Fit quality of ``ln(value)`` on day.
    n_points : int
        Points in the chosen fit (0 when none).
    first_day, last_day : float | None
        Days of the first and last point of the fit.
    span_ratio : float | None
        ``(last_day − first_day) / half_life``.
    auc_pct_extrapolated : float | None
        ``100 · (Clast/λz) / (AUClast + Clast/λz)`` with AUClast from ``start`` to Tlast.
    flags : tuple[str, ...]
        ``too_few_points``, ``no_positive_slope``, ``adj_r_squared_below_0.9``,
        ``span_ratio_below_2``, ``auc_extrapolated_above_20pct``.
    """

    lambda_z: float | None
    half_life: float | None
    r_squared: float | None
    adj_r_squared: float | None
    n_points: int
    first_day: float | None
    last_day: float | None
    span_ratio: float | None
    auc_pct_extrapolated: float | None
    flags: tuple[str, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """The flags (the project-wide name for a result's explanations)."""
        return self.flags


# ------------------------------------------------------------------------------ validation
def _float_array(field: str, x: Any) -> np.ndarray:
    """1-D float64 array from a sequence of real numbers, or raise naming ``field``."""
    if isinstance(x, str | bytes) or x is None:
        raise InvalidInput(field, x, "a 1-D sequence of numbers")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        raise InvalidInput(field, x, "a 1-D sequence of numbers") from None
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        raise InvalidInput(field, _short(x), "a 1-D sequence of numbers (not bool or text)")
    return arr.astype(np.float64, copy=False)


def _short(x: Any) -> Any:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_values(field: str, arr: np.ndarray, *, nonnegative: bool = True) -> None:
    bad = ~np.isfinite(arr)
    if nonnegative:
        bad |= arr < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        allowed = "finite numbers ≥ 0" if nonnegative else "finite numbers"
        raise InvalidInput(
            field,
            float(arr[i]),
            allowed,
            message=f"{field} must be {allowed}; got {float(arr[i])!r} at position {i}",
        )


def _check_days(field: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr) | (arr < _MIN_DAY) | (arr > _MAX_DAY)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        allowed = f"study days within {_MIN_DAY:g}–{_MAX_DAY:g}"
        raise InvalidInput(
            field,
            float(arr[i]),
            allowed,
            message=f"{field} must be {allowed}; got {float(arr[i])!r} at position {i}",
        )


def _prepare_series(
    days: Any,
    columns: dict[str, Any],
    *,
    aggregate: str = "error",
    nonnegative: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Validate one patient's series; return days sorted (stable) and the columns aligned.

    Unsorted days are sorted. Two samples on the same day raise :class:`InvalidInput`
    (field ``days``) unless ``aggregate`` names a combination in :data:`AGGREGATES`.
    """
    check_choice("aggregate", aggregate, AGGREGATES)
    d = _float_array("days", days)
    _check_days("days", d)
    cols = {}
    for name, x in columns.items():
        arr = _float_array(name, x)
        if arr.size != d.size:
            raise InvalidInput(
                name,
                arr.size,
                f"as long as days ({d.size})",
                message=f"{name} must have as many entries as days ({d.size}); got {arr.size}",
            )
        _check_values(name, arr, nonnegative=nonnegative)
        cols[name] = arr
    if d.size > 1 and np.any(d[1:] < d[:-1]):
        order = np.argsort(d, kind="stable")
        d = d[order]
        cols = {k: v[order] for k, v in cols.items()}
    if d.size > 1:
        dup = d[1:] == d[:-1]
        if dup.any():
            d, cols = _aggregate_runs(d, cols, np.concatenate(([True], ~dup)), aggregate)
    return d, cols


def _aggregate_runs(
    d: np.ndarray, cols: dict[str, np.ndarray], run_start: np.ndarray, aggregate: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    reducer = AGGREGATES[aggregate]
    if reducer is None:
        i = int(np.flatnonzero(~run_start)[0])
        raise InvalidInput(
            "days",
            float(d[i]),
            "distinct study days (or pass aggregate='min'|'max'|'mean')",
            message=(
                f"days must be distinct per patient (or pass aggregate='min'|'max'|'mean'); "
                f"got {float(d[i])!r} twice"
            ),
        )
    starts = np.flatnonzero(run_start)
    return d[starts], {k: reducer(v, starts) for k, v in cols.items()}


@dataclass(frozen=True, slots=True)
class _Cohort:
    ids: np.ndarray  # unique patient ids, sorted
    offsets: np.ndarray  # int64, len(ids) + 1
    days: np.ndarray
    cols: dict[str, np.ndarray]


def _prepare_cohort(
    patient_ids: Any,
    days: Any,
    columns: dict[str, Any],
    *,
    aggregate: str = "error",
    nonnegative: bool = True,
) -> _Cohort:
    """Validate long-format cohort arrays; sort by (patient, day); aggregate same-day repeats."""
    check_choice("aggregate", aggregate, AGGREGATES)
    if isinstance(patient_ids, str | bytes) or patient_ids is None:
        raise InvalidInput("patient_ids", patient_ids, "a 1-D sequence of patient ids")
    pid = np.asarray(patient_ids)
    if pid.ndim != 1:
        raise InvalidInput("patient_ids", _short(patient_ids), "a 1-D sequence of patient ids")
    d = _float_array("days", days)
    if d.size != pid.size:
        raise InvalidInput(
            "days",
            d.size,
            f"as long as patient_ids ({pid.size})",
            message=f"days must have as many entries as patient_ids ({pid.size}); got {d.size}",
        )
    _check_days("days", d)
    cols = {}
    for name, x in columns.items():
        arr = _float_array(name, x)
        if arr.size != d.size:
            raise InvalidInput(
                name,
                arr.size,
                f"as long as days ({d.size})",
                message=f"{name} must have as many entries as days ({d.size}); got {arr.size}",
            )
        _check_values(name, arr, nonnegative=nonnegative)
        cols[name] = arr
    try:
        inv, uniques = pd.factorize(pid, sort=True)  # faster than np.unique on object ids
    except TypeError:
        raise InvalidInput("patient_ids", _short(patient_ids), "comparable patient ids") from None
    if inv.size and inv.min() < 0:
        raise InvalidInput("patient_ids", None, "patient ids (no missing values)")
    ids = np.asarray(uniques)
    inv = inv.astype(np.int64, copy=False)
    order = np.lexsort((d, inv))
    inv, d = inv[order], d[order]
    cols = {k: v[order] for k, v in cols.items()}
    if d.size > 1:
        dup = (inv[1:] == inv[:-1]) & (d[1:] == d[:-1])
        if dup.any():
            run_start = np.concatenate(([True], ~dup))
            d, cols = _aggregate_runs(d, cols, run_start, aggregate)
            inv = inv[run_start]
    offsets = np.searchsorted(inv, np.arange(ids.size + 1)).astype(np.int64)
    return _Cohort(ids=ids, offsets=offsets, days=d, cols=cols)


def _check_lloq(lloq: Any) -> float:
    return float(check_range("lloq", lloq, 0, None, "(assay unit)", lo_open=True))


def _check_window(start: Any, end: Any) -> tuple[float, float]:
    s = float(check_range("start", start, _MIN_DAY, _MAX_DAY, "study days"))
    e = float(check_range("end", end, _MIN_DAY, _MAX_DAY, "study days"))
    if e <= s:
        raise InvalidInput("end", end, f"> start ({s:g})")
    return s, e


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise InvalidInput(field, value, "True or False")
    return bool(value)


def _decode(masks: np.ndarray, names: Sequence[str]) -> list[tuple[str, ...]]:
    """Bit masks -> tuples of flag names (decoded once per distinct mask)."""
    uniq, inv = np.unique(masks, return_inverse=True)
    table = [tuple(n for i, n in enumerate(names) if int(m) >> i & 1) for m in uniq]
    return [table[i] for i in inv.reshape(-1)]


# ------------------------------------------------------------------------------ kernel
def _nca_groups_py(offsets, d, v, lq, start, end, rule, impute0):  # pragma: no cover - jitted
    """Per-patient NCA over grouped arrays (numba-compiled; plain loops on purpose)."""
    n_groups = offsets.size - 1
    cmax = np.full(n_groups, np.nan)
    tmax = np.full(n_groups, np.nan)
    auc = np.full(n_groups, np.nan)
    clast = np.full(n_groups, np.nan)
    tlast = np.full(n_groups, np.nan)
    n_samp = np.zeros(n_groups, np.int64)
    n_blq = np.zeros(n_groups, np.int64)
    flags = np.zeros(n_groups, np.int64)
    # rule: 0 keep_first_last, 1 zero, 2 drop  -> action 0 = zero, 1 = drop
    first_act = 1 if rule == 2 else 0
    mid_act = 0 if rule == 1 else 1
    last_act = 1 if rule == 2 else 0
    tt = np.empty(d.size + 1)
    cc = np.empty(d.size + 1)
    for g in range(n_groups):
        lo = offsets[g]
        hi = offsets[g + 1]
        while lo < hi and d[lo] < start:
            lo += 1
        n = hi - lo
        n_samp[g] = n
        f = 0
        if n == 0:
            flags[g] = 1  # no_samples
            continue
        if n == 1:
            f |= 2  # single_sample
        i_first = -1
        i_last = -1
        nb = 0
        for i in range(lo, hi):
            if v[i] >= lq[i]:
                if i_first < 0:
                    i_first = i
                i_last = i
                if np.isnan(cmax[g]) or v[i] > cmax[g]:
                    cmax[g] = v[i]
                    tmax[g] = d[i]
            else:
                nb += 1
        n_blq[g] = nb
        if i_first < 0:
            f |= 4  # all_blq
        else:
            clast[g] = v[i_last]
            tlast[g] = d[i_last]
        # cleaned series
        m = 0
        for i in range(lo, hi):
            if v[i] >= lq[i]:
                tt[m] = d[i]
                cc[m] = v[i]
                m += 1
                continue
            if i_first < 0 or i < i_first:
                act = first_act
                f |= 8 if act == 0 else 16
            elif i < i_last:
                act = mid_act
                f |= 32 if act == 0 else 64
            else:
                act = last_act
                f |= 128 if act == 0 else 256
            if act == 0:
                tt[m] = d[i]
                cc[m] = 0.0
                m += 1
        # window coverage
        if m == 0:
            flags[g] = f | 1024  # auc_window_not_covered
            continue
        k0 = 0
        if tt[0] > start:
            if not impute0:
                flags[g] = f | 1024
                continue
            f |= 512  # start_imputed_zero
            for j in range(m, 0, -1):
                tt[j] = tt[j - 1]
                cc[j] = cc[j - 1]
            tt[0] = start
            cc[0] = 0.0
            m += 1
        if tt[m - 1] < end:
            flags[g] = f | 1024
            continue
        area = 0.0
        for j in range(k0, m - 1):
            t1 = tt[j]
            t2 = tt[j + 1]
            c1 = cc[j]
            c2 = cc[j + 1]
            if t1 >= end:
                break
            logdown = c2 < c1 and c1 > 0.0 and c2 > 0.0
            if t2 > end:
                frac = (end - t1) / (t2 - t1)
                if logdown:
                    c2 = np.exp(np.log(c1) + frac * (np.log(c2) - np.log(c1)))
                else:
                    c2 = c1 + frac * (c2 - c1)
                t2 = end
                f |= 2048  # end_interpolated
            if logdown:
                area += (t2 - t1) * (c1 - c2) / np.log(c1 / c2)
            else:
                area += (t2 - t1) * (c1 + c2) / 2.0
        auc[g] = area
        flags[g] = f
    return cmax, tmax, auc, clast, tlast, n_samp, n_blq, flags


@functools.cache
def _kernel() -> Callable[..., Any]:
    import numba  # heavy: imported on first use only

    return numba.njit(cache=True)(_nca_groups_py)


def _run_kernel(offsets, d, v, lq, start, end, rule, impute0):
    return _kernel()(
        offsets.astype(np.int64),
        np.ascontiguousarray(d, dtype=np.float64),
        np.ascontiguousarray(v, dtype=np.float64),
        np.ascontiguousarray(lq, dtype=np.float64),
        float(start),
        float(end),
        int(rule),
        bool(impute0),
    )


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


# ------------------------------------------------------------------------------ public API
def compute_nca(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    lloq: float,
    start: float = 0.0,
    end: float = 28.0,
    assay: str = "flow",
    blq_rule: str = "keep_first_last",
    impute_start_zero: bool = True,
    aggregate: str = "error",
) -> NcaResult:
    """Cmax, Tmax, AUC(start–end), Clast/Tlast and persistence of one CAR T profile.

    Parameters
    ----------
    days : sequence of float
        Study days of the samples (day 0 = infusion), within −3653–36525; sorted if unsorted.
    values : sequence of float
        CAR T level per sample, ≥ 0, in the assay's unit (flow: cells/uL; qPCR: copies/ug).
    lloq : float
        Lower limit of quantification of the assay, > 0 (same unit). ``value < lloq`` is BLQ.
    start, end : float
        AUC window in study days (default 0–28; use ``end=84`` for AUC0–84), ``end > start``.
        Samples before ``start`` are ignored by every parameter.
    assay : {"flow", "qpcr"}
        Decides the unit reported (:data:`ASSAYS`).
    blq_rule : {"keep_first_last", "zero", "drop"}
        BLQ handling (:data:`BLQ_RULES`): ``"keep_first_last"`` (PKNCA default) counts BLQ values
        before the first and after the last quantifiable value as 0 and drops those in the
        middle; ``"zero"`` counts every BLQ value as 0; ``"drop"`` ignores every BLQ value.
    impute_start_zero : bool
        With no sample at ``start``, assume a level of 0 there (flagged) instead of leaving the
        AUC undefined.
    aggregate : {"error", "min", "max", "mean"}
        What to do with two samples on the same day (default: refuse).

    Returns
    -------
    NcaResult
        ``None`` parameters where undefined. With every value BLQ, Cmax/Clast/Tlast are
        ``None`` (flag ``all_blq``); the AUC is 0 under ``"keep_first_last"``/``"zero"`` (all
        BLQ values count as 0, PKNCA "first") and ``None`` under ``"drop"``.

    Raises
    ------
    InvalidInput
        Naming the field: mismatched lengths, NaN/negative values, days out of range, repeated
        days (with ``aggregate="error"``), ``lloq ≤ 0``, ``end ≤ start``, unknown words.

    Examples
    --------
    >>> r = compute_nca([0, 7, 14, 28], [0.0, 40.0, 10.0, 2.0], lloq=0.5)
    >>> r.cmax, r.tmax, r.tlast
    (40.0, 7.0, 28.0)
    >>> round(r.auc, 3)  # 7*20 + 7*30/ln 4 + 14*8/ln 5
    361.072
    >>> r.flags
    ('blq_first_set_to_zero',)
    """
    lq = _check_lloq(lloq)
    s, e = _check_window(start, end)
    check_choice("assay", assay, ASSAYS)
    check_choice("blq_rule", blq_rule, BLQ_RULES)
    imp = _check_bool("impute_start_zero", impute_start_zero)
    d, cols = _prepare_series(days, {"values": values}, aggregate=aggregate)
    v = cols["values"]
    offsets = np.array([0, d.size], dtype=np.int64)
    out = _run_kernel(offsets, d, v, np.full(d.size, lq), s, e, _BLQ_CODES[blq_rule], imp)
    cmax, tmax, auc, clast, tlast, n_samp, n_blq, flags = (x[0] for x in out)
    return NcaResult(
        cmax=_opt(cmax),
        tmax=_opt(tmax),
        auc=_opt(auc),
        auc_start=s,
        auc_end=e,
        clast=_opt(clast),
        tlast=_opt(tlast),
        persistence_day=_opt(tlast),
        n_samples=int(n_samp),
        n_blq=int(n_blq),
        lloq=lq,
        assay=assay,
        unit=ASSAYS[assay],
        blq_rule=blq_rule,
        flags=_decode(np.array([flags]), NCA_FLAGS)[0],
    )


def compute_nca_cohort(
    patient_ids: Sequence[Any] | np.ndarray,
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    lloq: float | Sequence[float] | np.ndarray,
    *,
    start: float = 0.0,
    end: float = 28.0,
    assay: str = "flow",
    blq_rule: str = "keep_first_last",
    impute_start_zero: bool = True,
    aggregate: str = "error",
) -> pd.DataFrame:
    """:func:`compute_nca` for every patient of a long-format table, in one compiled pass.

    Parameters
    ----------
    patient_ids : sequence
        Patient id of each row (any sortable type, e.g. ``"RM-003"``). Rows need not be sorted.
    days, values : sequence of float
        As in :func:`compute_nca`, one entry per row.
    lloq : float or sequence of float
        One LLOQ (> 0) for all rows, or one per row (e.g. when sites use different assays).
    start, end, assay, blq_rule, impute_start_zero, aggregate
        As in :func:`compute_nca`.

    Returns
    -------
    pandas.DataFrame
        One row per patient (index ``patient_id``, sorted) with columns ``cmax``, ``tmax``,
        ``auc``, ``clast``, ``tlast``, ``persistence_day`` (NaN where :class:`NcaResult` has
        ``None``), ``n_samples``, ``n_blq``, ``flags`` (tuple of str); ``auc_start``,
        ``auc_end``, ``unit``, ``blq_rule`` are in ``DataFrame.attrs``.

    Raises
    ------
    InvalidInput
        As :func:`compute_nca`, and for ``patient_ids`` of the wrong length or shape.

    Examples
    --------
    >>> df = compute_nca_cohort(["A", "A", "B"], [0, 28, 28], [1.0, 1.0, 3.0], 0.5)
    >>> df["auc"].tolist()
    [28.0, 42.0]
    """
    s, e = _check_window(start, end)
    check_choice("assay", assay, ASSAYS)
    check_choice("blq_rule", blq_rule, BLQ_RULES)
    imp = _check_bool("impute_start_zero", impute_start_zero)
    if np.ndim(lloq) == 0:
        lq_col = np.full(np.shape(np.asarray(days))[:1] or (0,), _check_lloq(lloq))
    else:
        lq_col = _float_array("lloq", lloq)
        if lq_col.size and not np.all(lq_col > 0):
            raise InvalidInput("lloq", float(lq_col[~(lq_col > 0)][0]), "> 0 (assay unit)")
    c = _prepare_cohort(patient_ids, days, {"values": values, "lloq": lq_col}, aggregate=aggregate)
    out = _run_kernel(
        c.offsets, c.days, c.cols["values"], c.cols["lloq"], s, e, _BLQ_CODES[blq_rule], imp
    )
    cmax, tmax, auc, clast, tlast, n_samp, n_blq, flags = out
    df = pd.DataFrame(
        {
            "cmax": cmax,
            "tmax": tmax,
            "auc": auc,
            "clast": clast,
            "tlast": tlast,
            "persistence_day": tlast.copy(),
            "n_samples": n_samp,
            "n_blq": n_blq,
            "flags": _decode(flags, NCA_FLAGS),
        },
        index=pd.Index(c.ids, name="patient_id"),
    )
    df.attrs.update(auc_start=s, auc_end=e, unit=ASSAYS[assay], blq_rule=blq_rule, assay=assay)
    return df


def terminal_slope(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    lloq: float,
    start: float = 0.0,
    adj_r_squared_factor: float = 1e-4,
    min_points: int = 3,
    aggregate: str = "error",
) -> TerminalSlope:
    """Terminal slope λz of ``ln(value)`` after Tmax, chosen the way PKNCA chooses it.

    Every window made of the last ``k`` quantifiable points strictly after Tmax
    (``k ≥ min_points``) is fitted by least squares. Fits with λz ≤ 0 are discarded; among the
    rest the best adjusted R² wins, and among fits within ``adj_r_squared_factor`` of it the one
    with the most points. Flags (not errors): adjusted R² < 0.9, span ratio < 2, > 20 % of
    AUC∞ extrapolated.

    Parameters
    ----------
    days, values : sequence of float
        As in :func:`compute_nca` (values ≥ 0).
    lloq : float
        LLOQ (> 0); only values ≥ lloq are fitted.
    start : float
        Study day from which samples are used (AUClast for the extrapolated share starts here,
        with 0 at ``start`` if no sample is there).
    adj_r_squared_factor : float
        Tolerance on adjusted R² (PKNCA default 1e-4), within 0–1.
    min_points : int
        Fewest points in a fit (PKNCA default 3), ≥ 3.
    aggregate : {"error", "min", "max", "mean"}
        Same-day repeats, as in :func:`compute_nca`.

    Returns
    -------
    TerminalSlope

    Examples
    --------
    >>> ts = terminal_slope([0, 7, 14, 21, 28], [0, 80, 40, 20, 10], lloq=1)
    >>> round(ts.half_life, 6), ts.n_points
    (7.0, 3)
    """
    lq = _check_lloq(lloq)
    s = float(check_range("start", start, _MIN_DAY, _MAX_DAY, "study days"))
    fac = float(check_range("adj_r_squared_factor", adj_r_squared_factor, 0, 1))
    k_min = int(check_range("min_points", min_points, 3, None, integer=True))
    d, cols = _prepare_series(days, {"values": values}, aggregate=aggregate)
    v = cols["values"]
    keep = d >= s
    d, v = d[keep], v[keep]
    q = v >= lq
    none = TerminalSlope(None, None, None, None, 0, None, None, None, None, ())
    if not q.any():
        return _replace_flags(none, ("too_few_points",))
    i_max = int(np.flatnonzero(v == v[q].max())[0])
    after = np.flatnonzero(q & (np.arange(d.size) > i_max))
    if after.size < k_min:
        return _replace_flags(none, ("too_few_points",))
    t_all, y_all = d[after], np.log(v[after])
    best: tuple[float, int, float, float] | None = None  # adj r2, k, slope, r2
    fits = []
    for k in range(k_min, after.size + 1):
        t, y = t_all[-k:], y_all[-k:]
        tm, ym = t.mean(), y.mean()
        sxx = float(((t - tm) ** 2).sum())
        syy = float(((y - ym) ** 2).sum())
        slope = float(((t - tm) * (y - ym)).sum() / sxx)
        r2 = 1.0 if syy == 0 else float(slope * slope * sxx / syy)
        adj = 1 - (1 - r2) * (k - 1) / (k - 2)
        if -slope > 0:
            fits.append((adj, k, slope, r2))
    if not fits:
        return _replace_flags(none, ("no_positive_slope",))
    top = max(f[0] for f in fits)
    best = max((f for f in fits if f[0] >= top - fac), key=lambda f: f[1])
    adj, k, slope, r2 = best
    lz = -slope
    hl = float(np.log(2) / lz)
    first, last = float(t_all[-k]), float(t_all[-1])
    span = (last - first) / hl
    # AUClast (start -> Tlast), lin-up/log-down, BLQ per PKNCA default
    i_last = int(np.flatnonzero(q)[-1])
    extra = float(v[i_last]) / lz
    pct = None
    if d[i_last] > s:
        nca = compute_nca(d[: i_last + 1], v[: i_last + 1], lloq=lq, start=s, end=d[i_last])
        if nca.auc is not None and nca.auc + extra > 0:
            pct = 100.0 * extra / (nca.auc + extra)
    flags = []
    if adj < 0.9:
        flags.append("adj_r_squared_below_0.9")
    if span < 2 * (1 - 1e-9):  # tolerance: a fitted exact 2.0 comes back as 1.9999999999999996
        flags.append("span_ratio_below_2")
    if pct is not None and pct > 20:
        flags.append("auc_extrapolated_above_20pct")
    return TerminalSlope(lz, hl, r2, adj, k, first, last, span, pct, tuple(flags))


def _replace_flags(ts: TerminalSlope, flags: tuple[str, ...]) -> TerminalSlope:
    return TerminalSlope(
        ts.lambda_z,
        ts.half_life,
        ts.r_squared,
        ts.adj_r_squared,
        ts.n_points,
        ts.first_day,
        ts.last_day,
        ts.span_ratio,
        ts.auc_pct_extrapolated,
        flags,
    )
