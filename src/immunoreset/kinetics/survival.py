"""Kaplan–Meier estimate of time to B-cell reconstitution.

Source
------
Kaplan EL, Meier P. "Nonparametric estimation from incomplete observations." *J Am Stat Assoc*
1958;53(282):457–481 (the product-limit estimator Ŝ(t) = ∏_{t_i ≤ t} (1 − d_i / n_i)), with
Greenwood's variance and the pointwise log(−log) ("exponential Greenwood") confidence interval
(Kalbfleisch JD, Prentice RL. *The Statistical Analysis of Failure Time Data*, 2nd ed. 2002,
§4.3.1).

The median and its confidence interval follow R's ``survival`` package (Therneau T, version 3.5,
``quantile.survfit``; the Brookmeyer–Crowley construction of reading the pointwise bounds at
0.5, *Biometrics* 1982;38:29–41): the first time Ŝ ≤ 0.5, except on a plateau at exactly 0.5,
where it is the midpoint of the plateau; a bound whose curve never reaches 0.5 is "not
reached". Tested against ``survfit(conf.type = "log-log")`` outputs kept in
tests/fixtures/survfit (R 4.2.2, survival 3.5.3).

Patients still aplastic at their last sample are right-censored there (issue 5). Durations can be
measured from the infusion (``reconstitution_day``, or ``last_day`` when censored) or from
clearance (``BcellResult.aplasia_days``); the caller chooses and the report states which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput, check_range
from immunoreset.kinetics.nca import _check_values, _float_array

__all__ = ["KMResult", "km_reconstitution"]


@dataclass(frozen=True, slots=True)
class KMResult:
    """A Kaplan–Meier fit.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per distinct time (days) with an event or censoring: ``time``, ``at_risk``,
        ``events``, ``censored``, ``survival`` (probability still aplastic just after ``time``),
        ``ci_lower``, ``ci_upper`` (pointwise, level ``1 − alpha``).
    median : float | None
        Median time to reconstitution (days); ``None`` when survival never reaches 0.5.
    median_ci : tuple[float | None, float | None]
        Its confidence interval (days); ``None`` for a bound that is not reached.
    n, n_events : int
        Patients and observed reconstitutions.
    alpha : float
        ``1 − confidence level``.
    """

    table: pd.DataFrame
    median: float | None
    median_ci: tuple[float | None, float | None]
    n: int
    n_events: int
    alpha: float

    @property
    def reasons(self) -> tuple[str, ...]:
        """A one-line account of the estimate."""
        med = "not reached" if self.median is None else f"{self.median:g} d"
        return (f"{self.n_events} of {self.n} reconstituted; median {med}",)

    def at_risk(self, times: Sequence[float] | np.ndarray) -> list[int]:
        """Number still at risk (neither reconstituted nor censored before) at each time, days."""
        t = self.table
        return [
            int(t.loc[t["time"] >= x, "at_risk"].max()) if (t["time"] >= x).any() else 0
            for x in np.asarray(times, dtype=float)
        ]


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def km_reconstitution(
    durations: Sequence[float] | np.ndarray,
    events: Sequence[bool] | np.ndarray,
    *,
    alpha: float = 0.05,
) -> KMResult:
    """Kaplan–Meier estimate of time to B-cell reconstitution.

    Parameters
    ----------
    durations : sequence of float
        Days from the time origin (infusion or clearance) to reconstitution or censoring, ≥ 0.
    events : sequence of bool
        ``True`` (or 1) = reconstituted; ``False`` (or 0) = still aplastic, censored.
    alpha : float
        1 − confidence level, within 0–1 exclusive (default 0.05 → 95 % CI).

    Returns
    -------
    KMResult

    Raises
    ------
    InvalidInput
        Naming the field: empty or mismatched arrays, negative/NaN durations, events not 0/1.

    Examples
    --------
    >>> km = km_reconstitution([60, 90, 90, 120, 150], [1, 1, 0, 1, 0])
    >>> km.table["survival"].round(4).tolist()
    [0.8, 0.6, 0.3, 0.3]
    >>> km.median
    120.0
    """
    a = float(check_range("alpha", alpha, 0, 1, lo_open=True, hi_open=True))
    t = _float_array("durations", durations)
    _check_values("durations", t)
    if t.size == 0:
        raise InvalidInput("durations", [], "at least one duration")
    ev_raw = np.asarray(events)
    if ev_raw.ndim != 1 or ev_raw.size != t.size:
        raise InvalidInput(
            "events",
            int(ev_raw.size),
            f"one 0/1 per duration ({t.size})",
            message=f"events must have one 0/1 per duration ({t.size}); got {ev_raw.size}",
        )
    if ev_raw.dtype.kind not in "biuf" or not np.isin(ev_raw, (0, 1)).all():
        raise InvalidInput("events", ev_raw.tolist()[:10], "booleans or 0/1")
    ev = ev_raw.astype(bool)

    table = _product_limit(t, ev, a)
    surv = table["survival"].to_numpy()
    times = table["time"].to_numpy()
    # R leaves a bound undefined where Ŝ = 1; the quantile search must see the same gaps
    lower = np.where(surv == 1, np.nan, table["ci_lower"].to_numpy())
    upper = np.where(surv == 1, np.nan, table["ci_upper"].to_numpy())
    return KMResult(
        table=table,
        median=_quantile(times, surv, 0.5),
        median_ci=(_quantile(times, lower, 0.5), _quantile(times, upper, 0.5)),
        n=int(t.size),
        n_events=int(ev.sum()),
        alpha=a,
    )


def _product_limit(t: np.ndarray, ev: np.ndarray, alpha: float) -> pd.DataFrame:
    """The product-limit table with Greenwood variance and the log(−log) pointwise CI.

    ``var(log Ŝ) = Σ d_i / (n_i (n_i − d_i))`` (Greenwood 1926); the bounds are
    ``exp(−exp(log(−log Ŝ) ± z·se/log Ŝ))``, undefined (NaN) where Ŝ is 0 or 1, as in R's
    ``survfit(conf.type = "log-log")``.
    """
    from scipy.stats import norm

    times, inverse = np.unique(t, return_inverse=True)
    events = np.bincount(inverse, weights=ev.astype(float), minlength=times.size).astype(int)
    total = np.bincount(inverse, minlength=times.size)
    censored = total - events
    at_risk = t.size - np.concatenate([[0], np.cumsum(total)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - events / at_risk)
        greenwood = np.cumsum(np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0))
        se = np.sqrt(greenwood)
        inside = (surv > 0) & (surv < 1)
        s_in = np.where(inside, surv, 0.5)
        z = norm.ppf(1 - alpha / 2)
        shift = z * se / np.log(s_in)
        loglog = np.log(-np.log(s_in))
        lower = np.where(inside, np.exp(-np.exp(loglog - shift)), np.nan)
        upper = np.where(inside, np.exp(-np.exp(loglog + shift)), np.nan)
    # where Ŝ = 1 nothing has happened yet: the band is the point itself
    lower = np.where(surv == 1, 1.0, lower)
    upper = np.where(surv == 1, 1.0, upper)
    return pd.DataFrame(
        {
            "time": times.astype(float),
            "at_risk": at_risk.astype(int),
            "events": events,
            "censored": censored.astype(int),
            "survival": surv,
            "ci_lower": lower,
            "ci_upper": upper,
        }
    )


def _quantile(
    times: np.ndarray, surv: np.ndarray, p: float, tol: float = 1.4901161193847656e-08
) -> float | None:
    """The time where the curve ``surv`` first falls to ``1 − p``, by R's convention.

    A port of ``survival:::findq`` (survival 3.5, used by ``quantile.survfit``): on a plateau
    at exactly ``1 − p`` (within ``tol`` = √machine-ε) the quantile is the midpoint between the
    plateau's start and the next time the curve drops — or, when the curve ends on that
    plateau, the last follow-up time. ``None`` when the curve never reaches ``1 − p``
    ("not reached"); NaN points of a confidence bound are skipped.
    """
    x = np.concatenate([[0.0], times])
    y = np.concatenate([[0.0], 1.0 - surv])
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return None
    xmax = x[-1]
    # drop repeated values, the first of a run kept (R's duplicated(): NaN repeats NaN)
    keep = ~pd.Series(y).duplicated().to_numpy()
    x, y = x[keep], y[keep]
    last_is_value = not np.isnan(y[-1])
    ok = ~np.isnan(y)
    xs, ys = x[ok], y[ok]
    order = np.argsort(ys, kind="stable")

    def first_at_or_above(level: np.ndarray) -> int | None:
        # approx(level, 1:n, p, method = "constant", f = 1): the first point at or past p,
        # NA outside the range (approx sorts its x first)
        lv = level[order]
        if p < lv[0] or p > lv[-1]:
            return None
        return int(order[np.argmax(lv >= p)])

    i1 = first_at_or_above(ys + tol)
    i2 = first_at_or_above(ys - tol)
    if last_is_value and abs(p - y[-1]) < tol and i1 is not None:
        return float((xs[i1] + xmax) / 2)
    if i1 is None or i2 is None:
        return None
    return float((xs[i1] + xs[i2]) / 2)
