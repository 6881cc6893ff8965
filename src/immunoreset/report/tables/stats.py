"""Statistics rows of the tables: counts with exact (Clopper–Pearson) CIs, medians and ranges."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from immunoreset.errors import check_range
from immunoreset.report.tables.settings import STAT_COLUMNS


def clopper_pearson(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) confidence interval of a proportion ``k/n``.

    Parameters
    ----------
    k : int
        Events, 0 ≤ k ≤ n.
    n : int
        Patients, ≥ 1.
    confidence : float
        Two-sided level, 0.5–0.999 (default 0.95).

    Returns
    -------
    tuple of float
        (lower, upper), proportions 0–1.

    Examples
    --------
    >>> [round(x, 4) for x in clopper_pearson(6, 8)]
    [0.3491, 0.9681]
    >>> clopper_pearson(0, 8)[0]
    0.0
    """
    from scipy.stats import binomtest

    nn = check_range("n", n, 1, None, integer=True)
    kk = check_range("k", k, 0, nn, integer=True)
    conf = check_range("confidence", confidence, 0.5, 0.999)
    ci = binomtest(kk, nn).proportion_ci(confidence_level=conf, method="exact")
    return float(ci.low), float(ci.high)


def _row(section: str, item: str, level: str = "", **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(STAT_COLUMNS, np.nan)
    row.update(section=section, item=item, level=level, kind="text", unit="", note="")
    row.update(kw)
    return row


def _count(
    section: str,
    item: str,
    level: str,
    k: int,
    n: int,
    *,
    ci: bool = False,
    confidence: float = 0.95,
    note: str = "",
) -> dict[str, Any]:
    lo = hi = np.nan
    if ci and n > 0:
        lo, hi = clopper_pearson(int(k), int(n), confidence=confidence)
    return _row(
        section,
        item,
        level,
        kind="count_ci" if ci else "count",
        n=int(k),
        total=int(n),
        percent=100.0 * k / n if n else np.nan,
        ci_low=lo,
        ci_high=hi,
        note=note,
    )


def _summary(
    section: str, item: str, values: Any, unit: str = "", level: str = "", note: str = ""
) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return _row(section, item, level, kind="median", n=0, unit=unit, note=note or "no data")
    return _row(
        section,
        item,
        level,
        kind="median",
        n=int(v.size),
        median=float(np.median(v)),
        min=float(v.min()),
        max=float(v.max()),
        unit=unit,
        note=note,
    )


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(STAT_COLUMNS))
