"""Kaplan–Meier estimate of time to B-cell reconstitution.

Source
------
Kaplan EL, Meier P. "Nonparametric estimation from incomplete observations." *J Am Stat Assoc*
1958;53(282):457–481 (the product-limit estimator Ŝ(t) = ∏_{t_i ≤ t} (1 − d_i / n_i)), computed
with lifelines' ``KaplanMeierFitter`` (Davidson-Pilon C. *J Open Source Softw* 2019;4(40):1317),
whose default pointwise confidence interval is the exponential Greenwood ("log(−log)") interval.

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

    from lifelines import KaplanMeierFitter  # heavy: imported on first use only
    from lifelines.utils import median_survival_times

    kmf = KaplanMeierFitter(alpha=a).fit(t, event_observed=ev)
    et = kmf.event_table
    et = et[(et["observed"] > 0) | (et["censored"] > 0)]
    times = et.index.to_numpy(dtype=float)
    ci = kmf.confidence_interval_survival_function_.loc[times]
    table = pd.DataFrame(
        {
            "time": times,
            "at_risk": et["at_risk"].to_numpy(dtype=int),
            "events": et["observed"].to_numpy(dtype=int),
            "censored": et["censored"].to_numpy(dtype=int),
            "survival": kmf.survival_function_.loc[times].iloc[:, 0].to_numpy(),
            "ci_lower": ci.iloc[:, 0].to_numpy(),
            "ci_upper": ci.iloc[:, 1].to_numpy(),
        }
    )
    mci = median_survival_times(kmf.confidence_interval_survival_function_)
    return KMResult(
        table=table,
        median=_finite(kmf.median_survival_time_),
        median_ci=(_finite(mci.iloc[0, 0]), _finite(mci.iloc[0, 1])),
        n=int(t.size),
        n_events=int(ev.sum()),
        alpha=a,
    )
