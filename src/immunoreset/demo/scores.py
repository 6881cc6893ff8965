"""SYNTHETIC disease-activity assessments (SLEDAI-2K items, CMAS, MMT8, mRSS, globals)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from immunoreset.clinical.sledai import SLEDAI2K_WEIGHTS
from immunoreset.course import DiseaseAssessment
from immunoreset.demo.plan import (
    _DISEASE_MONTHS,
    _INSTRUMENTS,
    _ITEM_MAXIMA,
    _SLEDAI_POOL,
    ANTI_DSDNA_ULN,
    C3_LLN,
    C4_LLN,
    _Plan,
    month_day,
)
from immunoreset.demo.records import _assessment, _Calendar, _spread


def _disease(
    plan: _Plan,
    cal: _Calendar,
    fu_days: int,
    lab_at: Mapping[tuple[str, int], float],
    rng: np.random.Generator,
) -> list[DiseaseAssessment]:
    days = [-7, *(month_day(m) for m in _DISEASE_MONTHS if month_day(m) <= fu_days)]
    t = np.asarray(days, dtype=float)
    partial = plan.response == "partial"
    slow = plan.diagnosis == "SSc"
    tau = float(rng.uniform(50, 90) if slow else rng.uniform(30, 60))
    f = np.where(t > 0, 1 - np.exp(-np.maximum(t, 0) / tau), 0.0)
    out = []
    for inst, b_lo, b_hi, c_lo, c_hi, p_lo, p_hi, step in _INSTRUMENTS[plan.diagnosis]:
        base = round(float(rng.uniform(b_lo, b_hi)) / step) * step
        target = float(rng.uniform(p_lo, p_hi) if partial else rng.uniform(c_lo, c_hi))
        target = round(target / step) * step
        span = abs(target - base)
        vals = base + (target - base) * f + 0.02 * span * rng.standard_normal(t.size) * (t > 0)
        vals = np.clip(np.round(vals / step) * step, min(base, target), max(base, target))
        maxima = _ITEM_MAXIMA.get(inst)
        for d, v in zip(days, vals.tolist(), strict=True):
            v = round(v, 3)
            items = _spread(int(v), maxima) if maxima else {}
            out.append(_assessment(cal(d), inst, float(v), items))
    if plan.diagnosis == "SLE":
        out += _sledai(plan, cal, days, lab_at, rng)
    return out


def _sledai(
    plan: _Plan,
    cal: _Calendar,
    days: list[int],
    lab_at: Mapping[tuple[str, int], float],
    rng: np.random.Generator,
) -> list[DiseaseAssessment]:
    target = int(rng.integers(8, 21)) - 4  # the serologic items give 4 at baseline
    chosen: list[str] = []
    total = 0
    for name in rng.permutation(_SLEDAI_POOL).tolist():
        w = SLEDAI2K_WEIGHTS[name]
        if total + w <= target:
            chosen.append(name)
            total += w
    persistent = set(chosen[:1]) if plan.response == "partial" else set()
    out = []
    for d in days:
        present: set[str] = set()
        if d < 0:
            present.update(chosen)
        elif d <= 31:
            present.update(c for c in chosen if rng.random() < 0.4)
        present.update(c for c in persistent if rng.random() < 0.7)
        if lab_at[("c3", d)] < C3_LLN or lab_at[("c4", d)] < C4_LLN:
            present.add("low_complement")
        if lab_at[("anti_dsdna", d)] > ANTI_DSDNA_ULN:
            present.add("increased_dna_binding")
        items = {name: float(name in present) for name in SLEDAI2K_WEIGHTS}
        score = sum(SLEDAI2K_WEIGHTS[name] for name in present)
        out.append(_assessment(cal(d), "sledai2k", float(score), items))
    return out
