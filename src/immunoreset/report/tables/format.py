"""Display form of the tables: ``n/N (%; 95 % CI)``, ``median (range)`` as clinicians write them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput
from immunoreset.report.tables.settings import STAT_COLUMNS


def _decimals(*xs: float) -> int:
    finite = [abs(x) for x in xs if math.isfinite(x)]
    if not finite or all(float(x).is_integer() for x in finite):
        return 0
    top = max(finite)
    return 0 if top >= 100 else 1 if top >= 1 else 2


def _num(x: float, decimals: int | None = None) -> str:
    if not math.isfinite(x):
        return "—"
    d = _decimals(x) if decimals is None else decimals
    return f"{x:,.{d}f}"


_UNIT_TEXT = {"cells/uL": "cells/µL", "copies/ug": "copies/µg"}


def _unit(unit: str) -> str:
    for raw, text in _UNIT_TEXT.items():
        unit = unit.replace(raw, text)
    return f" {unit}" if unit else ""


def _fmt_count(r: Mapping[str, Any]) -> str:
    if not r["total"]:
        return f"{int(r['n'])}/0"
    text = f"{int(r['n'])}/{int(r['total'])} ({r['percent']:.1f} %"
    if np.isfinite(r["ci_low"]):
        text += f"; 95 % CI {100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f} %"
    return text + ")"


def _fmt_median(r: Mapping[str, Any]) -> str:
    if not r["n"]:
        return "—"
    unit = _unit(r["unit"])
    d = _decimals(r["median"], r["min"], r["max"])
    if r["n"] == 1:
        return f"{_num(r['median'], d)}{unit} (n = 1)"
    med, lo, hi = (_num(r[k], d) for k in ("median", "min", "max"))
    return f"{med} ({lo} to {hi}){unit}, n = {int(r['n'])}"


def _fmt_km(r: Mapping[str, Any]) -> str:
    med = "not reached" if not np.isfinite(r["median"]) else _num(r["median"])
    lo = _num(r["ci_low"]) if np.isfinite(r["ci_low"]) else "—"
    hi = _num(r["ci_high"]) if np.isfinite(r["ci_high"]) else "not reached"
    return f"{med} (95 % CI {lo} to {hi}){_unit(r['unit'])}, n = {int(r['n'])}"


_FORMATS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "count": _fmt_count,
    "count_ci": _fmt_count,
    "median": _fmt_median,
    "km": _fmt_km,
    "n": lambda r: f"{int(r['n'])}",
    "text": lambda r: r["note"] or "—",
}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The clinician's form of a tidy table: ``section``, ``characteristic``, ``value``.

    Counts read ``k/N (p %; 95 % CI lo–hi %)``, continuous values ``median (min–max) unit, n``,
    the Kaplan–Meier row ``median (95 % CI lo–hi)``.

    Examples
    --------
    >>> from immunoreset.report.tables.stats import _count
    >>> t = pd.DataFrame([_count("Safety", "CRS", "grade 1", 6, 8, ci=True)])
    >>> display_table(t)["value"].iloc[0]
    '6/8 (75.0 %; 95 % CI 34.9–96.8 %)'
    """
    if not isinstance(table, pd.DataFrame) or not set(STAT_COLUMNS) <= set(table.columns):
        raise InvalidInput("table", type(table).__name__, "a tidy table from report.tables")
    out = []
    for r in table.to_dict("records"):
        label = r["item"] + (f": {r['level']}" if r["level"] else "")
        if r["kind"] == "median" and not r["level"] and r["unit"] and r["n"] > 0:
            label += ", median (range)"
        out.append((r["section"], label, _FORMATS[r["kind"]](r)))
    return pd.DataFrame(out, columns=["section", "characteristic", "value"])
