"""Cached SYNTHETIC cohorts and series helpers shared by the demo tests."""

from __future__ import annotations

from functools import cache

import numpy as np

from immunoreset.course import Course
from immunoreset.demo import DAYS_PER_MONTH, published_cohort, synthetic_cohort_with_qc


@cache
def published() -> tuple[Course, ...]:
    return tuple(published_cohort())


@cache
def large() -> tuple[tuple[Course, tuple], ...]:
    return tuple(synthetic_cohort_with_qc(600, seed=11))


def by_id(study_id: str) -> Course:
    return next(c for c in published() if c.study_id == study_id)


def followup_months(c: Course) -> float:
    return (c.followup.last_contact - c.day0).days / DAYS_PER_MONTH


def lab_values(c: Course, analyte: str, lo: int, hi: int) -> np.ndarray:
    days, values = c.lab_series(analyte)
    return values[(days >= lo) & (days <= hi)]
