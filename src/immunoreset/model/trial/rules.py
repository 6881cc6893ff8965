"""Success rules of a virtual trial: responder proportions with exact or Wilson bounds.

A proportion condition holds when the observed responder proportion ``x/n`` is at least
``min_proportion`` and/or the lower bound of the two-sided ``level`` confidence interval is
above ``lower_above``. Intervals:

* ``clopper-pearson`` (exact): lower bound ``B(α/2; x, n − x + 1)`` (0 when x = 0), upper
  ``B(1 − α/2; x + 1, n − x)`` (1 when x = n), ``B`` the beta quantile (Clopper CJ, Pearson
  ES. *Biometrika* 1934;26:404–413).
* ``wilson`` (score): ``(p̂ + z²/2n ± z·√(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n)`` (Wilson EB.
  *J Am Stat Assoc* 1927;22:209–212).

The probability of success over replicates is reported with its Clopper–Pearson interval
(Monte Carlo uncertainty; parameter uncertainty is inside each replicate's draw).
"""

from __future__ import annotations

import operator

import numpy as np
from scipy.special import betaincinv, ndtri

from immunoreset.errors import InvalidInput, check_choice, check_range
from immunoreset.model.trial.design import ENDPOINTS, Condition, SuccessRule

__all__ = ["COMPARATORS", "clopper_pearson", "evaluate_condition", "evaluate_rule", "wilson"]

COMPARATORS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def clopper_pearson(
    x: np.ndarray, n: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Exact two-sided ``level`` interval of a binomial proportion (arrays broadcast).

    Examples
    --------
    >>> lo, hi = clopper_pearson(np.array([0, 5]), np.array([10, 10]), 0.95)
    >>> [round(float(v), 4) for v in lo], [round(float(v), 4) for v in hi]
    ([0.0, 0.1871], [0.3085, 0.8129])
    """
    check_range("level", level, 0.0, 1.0, lo_open=True, hi_open=True)
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 1) or np.any(x < 0) or np.any(x > n):
        raise InvalidInput("x", x, "counts within 0–n with n ≥ 1")
    a = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, betaincinv(x, n - x + 1.0, a), 0.0)
        hi = np.where(x < n, betaincinv(x + 1.0, n - x, 1.0 - a), 1.0)
    return lo, hi


def wilson(x: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score two-sided ``level`` interval of a binomial proportion.

    Examples
    --------
    >>> lo, hi = wilson(np.array([5]), np.array([10]), 0.95)
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.2366, 0.7634)
    """
    check_range("level", level, 0.0, 1.0, lo_open=True, hi_open=True)
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 1) or np.any(x < 0) or np.any(x > n):
        raise InvalidInput("x", x, "counts within 0–n with n ≥ 1")
    z = float(ndtri(1.0 - (1.0 - level) / 2.0))
    p = x / n
    den = 1.0 + z * z / n
    mid = (p + z * z / (2.0 * n)) / den
    half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / den
    return np.maximum(mid - half, 0.0), np.minimum(mid + half, 1.0)


_CI = {"clopper-pearson": clopper_pearson, "wilson": wilson}


def responders(cond: Condition, values: np.ndarray) -> np.ndarray:
    """Boolean responder flags of one arm's patients (NaN is never a responder)."""
    if ENDPOINTS[cond.endpoint][0] == "binary":
        return values > 0.5
    ((op, thr),) = cond.responder.items()
    with np.errstate(invalid="ignore"):
        return COMPARATORS[op](values, thr) & np.isfinite(values)


def evaluate_condition(cond: Condition, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether ``cond`` holds in each trial; and the value it judged, per trial.

    ``values`` is (trials, patients): one arm's patients of each trial. The value is the
    responder proportion (proportion conditions) or the median/mean (statistic conditions;
    NaN values are left out, a trial with none fails).
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    k, n = v.shape
    if n == 0:
        raise InvalidInput("patients", 0, "at least one patient")
    if cond.statistic is not None:
        fin = np.isfinite(v)
        has = fin.any(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            if cond.statistic == "median":
                stat = np.full(k, np.nan)
                if has.any():
                    stat[has] = np.nanmedian(v[has], axis=1)
            else:
                stat = np.where(fin, v, 0.0).sum(axis=1) / fin.sum(axis=1)
        ((op, thr),) = cond.compare.items()
        ok = has & COMPARATORS[op](np.where(has, stat, 0.0), thr)
        return ok, stat
    x = responders(cond, v).sum(axis=1)
    p = x / n
    ok = np.ones(k, dtype=bool)
    if cond.min_proportion is not None:
        ok &= p >= cond.min_proportion
    if cond.ci is not None:
        method = check_choice("ci.method", cond.ci.method, tuple(_CI))
        lo, _hi = _CI[method](x, np.full(k, n), cond.ci.level)
        ok &= lo > cond.ci.lower_above
    return ok, p


def evaluate_rule(
    rule: SuccessRule, arm_values: dict[str, dict[str, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate ``rule`` on ``arm_values[arm][endpoint]`` (each (trials, patients)).

    Returns success (trials,), per-condition pass (trials, conditions) and judged values.
    """
    flags = []
    vals = []
    for cond in rule.conditions:
        ok, v = evaluate_condition(cond, arm_values[cond.arm][cond.endpoint])
        flags.append(ok)
        vals.append(v)
    f = np.stack(flags, axis=1)
    success = f.all(axis=1) if rule.combine == "all" else f.any(axis=1)
    return success, f, np.stack(vals, axis=1)
