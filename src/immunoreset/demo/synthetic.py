"""The large SYNTHETIC cohort generator: patient ``k`` depends only on ``(seed, k)``."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from immunoreset.course import Course
from immunoreset.demo.builder import _build
from immunoreset.demo.cohort import _check_seed
from immunoreset.demo.plan import (
    _DX_ADULT,
    _DX_CHILD,
    _FEMALE_FRACTION,
    _ICD10,
    _MAX_INDEX,
    DATA_CUTOFF,
    REGIMENS,
    SITES,
    _choice,
    _Plan,
    month_day,
)
from immunoreset.demo.qc import BatchQC
from immunoreset.errors import InvalidInput, check_range


def _synthetic_plan(k: int, rng: np.random.Generator) -> _Plan:
    site, prefix, regimen = SITES[int(rng.integers(0, len(SITES)))]
    child = rng.random() < 0.25
    age = float(rng.uniform(3, 18) if child else rng.uniform(18, 70))
    dx = _choice(rng, _DX_CHILD if child else _DX_ADULT)
    sex = "F" if rng.random() < _FEMALE_FRACTION[dx] else "M"
    codes = _ICD10[dx]
    months = int(rng.integers(3, 37))
    day0 = DATA_CUTOFF - dt.timedelta(days=month_day(months) + int(rng.integers(0, 3 * 365)))
    manufacturing = _choice(
        rng,
        (("pass", 0.92), ("deviation", 0.05), ("failed_retry", 0.02), ("failed_stop", 0.01)),
    )
    partial = rng.random() < 0.15
    n_inf = int(rng.poisson(0.3))
    infections = tuple(
        (
            int(rng.integers(31, month_day(months) + 1)),
            _choice(rng, ((1, 0.77), (2, 0.20), (3, 0.03))),
            str(
                rng.choice(
                    (
                        "upper respiratory tract infection",
                        "urinary tract infection",
                        "herpes zoster",
                        "gastroenteritis",
                        "lung infection",
                    )
                )
            ),
        )
        for _ in range(n_inf)
    )
    return _Plan(
        study_id=f"{prefix}-{k:06d}",
        site=site,
        sex=sex,
        diagnosis=dx,
        icd10=codes[int(rng.integers(0, len(codes)))],
        age=age,
        day0=day0,
        followup_months=months,
        years_since_dx=float(min(rng.uniform(2, 6), age - 1.0)),
        prior_lines=int(rng.integers(3, 9)),
        regimen=REGIMENS[regimen],
        manufacturing=manufacturing,
        crs_grade=_choice(rng, ((0, 0.29), (1, 0.60), (2, 0.10), (3, 0.01))),
        crs_onset=int(rng.integers(1, 7)),
        crs_days=int(rng.integers(1, 5)),
        icans_grade=_choice(rng, ((0, 0.94), (1, 0.05), (2, 0.01))),
        icans_onset=int(rng.integers(3, 9)),
        icans_days=int(rng.integers(1, 4)),
        early_icaht=_choice(rng, ((0, 0.75), (1, 0.17), (2, 0.06), (3, 0.02))),
        late_icaht=_choice(rng, ((0, 0.82), (1, 0.14), (2, 0.04))),
        cmax=float(np.clip(30 * math.exp(0.6 * rng.standard_normal()), 3, 300)),
        tmax=_choice(rng, ((5, 0.1), (7, 0.35), (9, 0.25), (10, 0.2), (14, 0.1))),
        b_return_day=float(np.clip(rng.normal(110, 35), 40, 400)),
        response="partial" if partial else "complete",
        restart=rng.random() < (0.4 if partial else 0.05),
        status=_choice(rng, (("alive", 0.96), ("lost_to_follow_up", 0.03), ("withdrawn", 0.01))),
        infections=infections,
        operator=f"OP-{prefix}{int(rng.integers(1, 5))}",
        anc_nadir=float(rng.uniform(550, 1800)),
    )


def _check_cohort_args(n: Any, seed: Any, start_index: Any) -> tuple[int, int, int]:
    n = int(check_range("n", n, 0, _MAX_INDEX, integer=True))
    seed = _check_seed(seed)
    start_index = int(check_range("start_index", start_index, 1, _MAX_INDEX, integer=True))
    if start_index + n - 1 > _MAX_INDEX:
        raise InvalidInput(
            "n", n, f"at most {_MAX_INDEX - start_index + 1} from start_index {start_index}"
        )
    return n, seed, start_index


def _synthetic(seed: int, k: int) -> tuple[Course, tuple[BatchQC, ...]]:
    rng = np.random.default_rng([seed, k])
    return _build(_synthetic_plan(k, rng), rng)


def synthetic_course(k: int, seed: int = 0) -> Course:
    """Return SYNTHETIC course number ``k`` (1–999,999) of the large cohort of ``seed``.

    The course depends only on ``(seed, k)``: ``synthetic_course(k, seed)`` equals the
    ``k``-th course of ``synthetic_cohort(n, seed)`` for every ``n ≥ k``.

    Raises
    ------
    InvalidInput
        ``k`` outside 1–999,999 or ``seed`` negative / not an integer.

    Examples
    --------
    >>> synthetic_course(7).patient.synthetic
    True
    """
    k = int(check_range("k", k, 1, _MAX_INDEX, integer=True))
    return _synthetic(_check_seed(seed), k)[0]


def synthetic_cohort_with_qc(
    n: int, seed: int = 0, *, start_index: int = 1
) -> Iterator[tuple[Course, tuple[BatchQC, ...]]]:
    """Yield ``(course, batch QC results)`` for courses ``start_index … start_index + n − 1``.

    Failed batches have ``Batch.status == "failed"`` and ``BatchQC.outcome == "failed"``;
    batches released with a documented deviation have ``Batch.status == "released"`` and
    ``BatchQC.outcome == "deviation"`` (the out-of-spec attribute in ``out_of_spec``).
    Arguments as :func:`synthetic_cohort`.
    """
    n, seed, start_index = _check_cohort_args(n, seed, start_index)
    return (_synthetic(seed, k) for k in range(start_index, start_index + n))


def synthetic_cohort(n: int, seed: int = 0, *, start_index: int = 1) -> Iterator[Course]:
    """Yield ``n`` SYNTHETIC courses for tests and benchmarks.

    Parameters
    ----------
    n : int
        Number of courses, 0–999,999.
    seed : int, default 0
        Cohort seed (≥ 0). Course ``k`` uses ``numpy.random.default_rng([seed, k])`` only, so
        it does not depend on ``n`` or on how many courses were drawn before it.
    start_index : int, default 1
        Index ``k`` of the first course (study IDs are ``<site prefix>-<k:06d>``).

    Returns
    -------
    Iterator of Course
        Lazily built courses; the rates of each event are in the module docstring.

    Raises
    ------
    InvalidInput
        ``n``, ``seed`` or ``start_index`` out of range or not integers (raised on the call,
        before iteration).

    Examples
    --------
    >>> [c.study_id for c in synthetic_cohort(2, seed=1)]
    ['TU-000001', 'HD-000002']
    """
    return (course for course, _ in synthetic_cohort_with_qc(n, seed, start_index=start_index))
