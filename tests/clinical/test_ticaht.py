"""T-ICAHT (Rejeski et al., Blood 2025, Table 1; clinical-addendum.md §2) and CTCAE platelets."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.clinical.ctcae import grade_lab
from immunoreset.clinical.ticaht import grade_early_ticaht, grade_late_ticaht, grade_ticaht
from immunoreset.errors import InvalidInput

SPEC = "clinical-addendum §2"
TABLE = "Rejeski 2025 Table 1"


def series(*spans: tuple[int, int, float], last: int = 30, base: float = 150_000.0):
    days = np.arange(0, last + 1, dtype=float)
    plt = np.full(days.shape, base)
    for lo, hi, value in spans:
        plt[(days >= lo) & (days <= hi)] = value
    return days, plt


EARLY = [
    ([(1, 6, 40_000)], 1, f"{SPEC} #1: < 50k on 6 days"),
    ([(1, 7, 40_000)], 2, f"{SPEC} #1: < 50k on 7 days"),
    ([(1, 7, 50_000)], 0, f"{SPEC} #2: exactly 50k is not < 50k"),
    ([(1, 7, 49_999)], 2, TABLE),
    ([(1, 13, 15_000)], 3, f"{SPEC} #3: < 20k on 13 days"),
    ([(1, 14, 15_000)], 4, f"{SPEC} #3: < 20k on 14 days"),
    ([(1, 1, 19_999)], 3, f"{TABLE}: one day < 20k"),
    ([(1, 1, 20_000)], 1, f"{TABLE}: 20k is not < 20k (but < 50k)"),
    ([(1, 3, 40_000), (4, 5, 60_000), (6, 8, 40_000)], 2, f"{TABLE} footnote: 2-day recovery"),
    ([(1, 3, 40_000), (4, 6, 60_000), (7, 9, 40_000)], 1, f"{TABLE} footnote: 3-day recovery"),
    ([], 0, TABLE),
]


@pytest.mark.parametrize(("spans", "expected", "source"), EARLY, ids=[e[2] for e in EARLY])
def test_early(spans, expected, source) -> None:
    days, plt = series(*spans)
    result = grade_early_ticaht(days, plt)
    assert result.grade == expected, source
    assert "incomplete" not in result.flags


LATE = [
    ([45, 52], [80_000, 95_000], 1, f"{SPEC} #4: late 1"),
    ([45, 60], [45_000, 48_000], 2, f"{SPEC} #4: late 2"),
    ([45, 60], [45_000, 100_000], 0, f"{TABLE}: second value not < 100k (transient)"),
    ([45, 60], [99_999, 99_999], 1, TABLE),
    ([45, 46, 50], [15_000, 15_000, 150_000], 3, f"{TABLE}: < 20k for days 45–46 (+interp)"),
    ([*range(40, 54), 60], [10_000] * 14 + [150_000], 4, f"{TABLE}: < 20k for 14 days"),
    ([40, 101], [40_000, 40_000], None, f"{TABLE}: day 101 outside the late window"),
]


@pytest.mark.parametrize(("days", "plt", "expected", "source"), LATE, ids=[c[3] for c in LATE])
def test_late(days, plt, expected, source) -> None:
    assert grade_late_ticaht(days, plt).grade == expected, source


def test_case_5_single_late_value_is_not_gradable() -> None:
    result = grade_late_ticaht([60], [40_000])
    assert result.grade is None and set(result.flags) == {"single_value", "incomplete"}


def test_late_end_day_is_configurable() -> None:
    assert grade_late_ticaht([40, 120], [40_000, 45_000], late_end_day=150).grade == 2


def test_recovery_needs_3_days_without_transfusion() -> None:
    days, plt = series((1, 10, 10_000))
    assert grade_early_ticaht(days, plt).recovery_day == 11
    with_tx = grade_early_ticaht(days, plt, transfusion_days=[10])
    assert with_tx.recovery_day == 17  # 7 days without transfusion before the 3-day run
    assert "post_transfusion_counts" in with_tx.flags


def test_ctcae_beside_t_icaht_case_6() -> None:
    """clinical-addendum §2 #6: v5, LLN 150: 75.0/74.9/25.0/24.9 → 1/2/3/4; v6 24.9 → 3, 9.9 → 4."""
    cases = [(75.0, 1), (74.9, 2), (25.0, 3), (24.9, 4)]
    for value, grade in cases:
        assert grade_lab("platelet_count_decreased", value, lln=150, unit="10^9/L") == grade
    v6 = [(24.9, 3), (9.9, 4)]
    for value, grade in v6:
        g = grade_lab("platelet_count_decreased", value, unit="10^9/L", version="6.0")
        assert g == grade
    days, plt = series((1, 3, 24_900))
    assert grade_early_ticaht(days, plt).ctcae_grade == 4
    assert grade_early_ticaht(days, plt, ctcae_version="6.0").ctcae_grade == 3


def test_units_and_implausible_values() -> None:
    days, plt = series((1, 7, 40_000))
    assert grade_early_ticaht(days, plt / 1000, unit="10^9/L").grade == 2
    with pytest.raises(InvalidInput) as info:
        grade_early_ticaht(days, plt / 1000)
    assert info.value.field == "platelets_per_ul" and "10^9/L" in str(info.value)


def test_censoring_and_incomplete() -> None:
    days, plt = series((1, 20, 15_000))
    censored = grade_early_ticaht(days, plt, censor_day=5)
    assert censored.grade == 3 and "incomplete" in censored.flags
    early, late = grade_ticaht([1, 2, 45, 52], [30_000, 30_000, 45_000, 48_000])
    assert (early.grade, late.grade) == (1, 2)
