"""ICAHT (Rejeski et al., Blood 2023; Liang's operationalisation; spec clinical.md §3)."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.clinical.ctcae import grade_lab
from immunoreset.clinical.icaht import (
    grade_early_icaht,
    grade_icaht_many,
    grade_late_icaht,
    late_anc_grade,
)
from immunoreset.clinical.settings import ToxicitySettings
from immunoreset.errors import InvalidInput

SPEC = "clinical.md §3.4"
TABLE = "clinical.md §3.1 (Liang; Rejeski 2023)"


def series(*spans: tuple[int, int, float], last: int = 35, base: float = 2000.0):
    """Daily ANC on days 0..last at ``base``, with (first, last, value) spans overriding it."""
    days = np.arange(0, last + 1, dtype=float)
    anc = np.full(days.shape, base)
    for lo, hi, value in spans:
        anc[(days >= lo) & (days <= hi)] = value
    return days, anc


EARLY = [
    # (spans, mode, expected grade, source)
    ([(2, 7, 300)], "cumulative", 1, f"{SPEC} #1: 6 days"),
    ([(1, 7, 300)], "cumulative", 2, f"{SPEC} #2: 7 days"),
    ([(1, 10, 300), (2, 8, 50)], "cumulative", 3, f"{SPEC} #3: ≤ 100 for 7 days"),
    ([(1, 5, 300), (6, 7, 600), (8, 12, 300)], "cumulative", 2, f"{SPEC} #4: joined 12"),
    ([(1, 5, 300), (6, 7, 600), (8, 12, 300)], "longest_joined", 2, f"{SPEC} #4: joined 12"),
    ([(1, 20, 300), (3, 16, 50)], "cumulative", 4, f"{SPEC} #5: ≤ 100 for 14 days"),
    ([(1, 7, 500)], "cumulative", 2, f"{SPEC} #6: 500 counts (≤)"),
    ([(1, 8, 300), (15, 20, 300)], "cumulative", 3, f"{SPEC} #9: cumulative 14"),
    ([(1, 8, 300), (15, 20, 300)], "longest_joined", 2, f"{SPEC} #9: longest 8"),
    # threshold boundaries
    ([(1, 7, 501)], "cumulative", 0, f"{TABLE}: 501 is above 500"),
    ([(1, 7, 499)], "cumulative", 2, TABLE),
    ([(1, 7, 100)], "cumulative", 3, f"{TABLE}: 100 counts as ≤ 100"),
    ([(1, 7, 101)], "cumulative", 2, f"{TABLE}: 101 is above 100"),
    # duration boundaries (≤ 500)
    ([(1, 13, 300)], "cumulative", 2, f"{TABLE}: 13 days"),
    ([(1, 14, 300)], "cumulative", 3, f"{TABLE}: 14 days"),
    ([(1, 30, 300)], "cumulative", 3, f"{TABLE}: 30 days"),
    ([(0, 30, 300)], "cumulative", 4, f"{TABLE}: 31 days (≥ 31)"),
    # duration boundaries (≤ 100)
    ([(1, 6, 50)], "cumulative", 1, f"{TABLE}: ≤ 100 for 6 days"),
    ([(1, 13, 50)], "cumulative", 3, f"{TABLE}: ≤ 100 for 13 days"),
    ([(1, 14, 50)], "cumulative", 4, f"{TABLE}: ≤ 100 for 14 days"),
    # recovery of exactly 3 days is stable (not joined); 2 days is joined
    ([(1, 4, 300), (5, 7, 600), (8, 10, 300)], "longest_joined", 1, f"{TABLE}: 3-day recovery"),
    ([(1, 4, 300), (5, 6, 600), (7, 9, 300)], "longest_joined", 2, f"{TABLE}: 2-day joined"),
    ([], "cumulative", 0, TABLE),
]


@pytest.mark.parametrize(("spans", "mode", "expected", "source"), EARLY, ids=[e[3] for e in EARLY])
def test_early(spans: list, mode: str, expected: int, source: str) -> None:
    days, anc = series(*spans)
    result = grade_early_icaht(days, anc, duration_mode=mode)
    assert result.grade == expected, source
    assert result.reasons
    assert result.flags == ()


def test_durations_are_reported() -> None:
    days, anc = series((1, 8, 300), (15, 20, 300))
    cumulative = grade_early_icaht(days, anc)
    longest = grade_early_icaht(days, anc, duration_mode="longest_joined")
    assert (cumulative.days_anc_le_500, longest.days_anc_le_500) == (14, 8)
    assert cumulative.days_missing == 0


def test_same_value_under_ctcae_is_grade_3() -> None:
    """clinical.md §3.4 #6: ANC exactly 500 is ICAHT-countable but CTCAE grade 3, not 4."""
    assert grade_lab("neutrophil_count_decreased", 500) == 3


def test_lowest_value_per_day_is_kept() -> None:
    days = [0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    anc = [2000, 2000, 300, 300, 300, 300, 300, 300, 300, 2000, 2000, 2000]
    assert grade_early_icaht(days, anc).days_anc_le_500 == 7


GAPS = [
    # (consecutive missing days, ≤ 500 days counted, incomplete)
    (6, 8, False),
    (7, 9, False),
    (8, 2, True),
]


@pytest.mark.parametrize(
    ("missing", "expected_days", "incomplete"), GAPS, ids=[f"{g[0]} missing days" for g in GAPS]
)
def test_liang_maxgap_7_interpolates_up_to_7_missing_days(
    missing: int, expected_days: int, incomplete: bool
) -> None:
    """Liang (automatedicahtgrading, zoo::na.approx maxgap = 7): ≤ 7 consecutive missing days
    are interpolated between two values ≤ 500; 8 stay missing (and the result is incomplete)."""
    gap_end = 2 + missing + 1
    days = [0, 1, 2, gap_end, *range(gap_end + 1, 36)]
    anc = [2000, 2000, 300, 300, *[2000] * (35 - gap_end)]
    result = grade_early_icaht(days, anc)
    assert result.days_anc_le_500 == expected_days
    assert ("incomplete" in result.flags) is incomplete


def test_rejeski_2023_series_ending_early_in_a_live_patient_is_not_grade_4() -> None:
    """Rejeski 2023: grade 4 only for > 30 days ≤ 500 or ≥ 14 days ≤ 100. A live patient whose
    data end early is graded on the observed days and flagged incomplete (a lower bound)."""
    single = grade_early_icaht([2], [480])
    assert single.grade == 1
    assert "incomplete" in single.flags and "never_recovered" not in single.flags
    days, anc = series((0, 12, 300), last=12)  # ≤ 500 on days 0–12, data end on day 12
    result = grade_early_icaht(days, anc)
    assert (result.grade, result.days_anc_le_500, result.days_missing) == (2, 13, 18)
    assert set(result.flags) == {"incomplete", "not_recovered_at_last_value"}
    assert any("lower bound" in r for r in result.reasons)


@pytest.mark.parametrize(("end", "grade"), [("death", 4), ("end_of_follow_up", 4)])
def test_liang_never_recovered_applies_to_death_or_end_of_follow_up_before_day_30(
    end: str, grade: int
) -> None:
    """Liang: a day 0–3 nadir without recovery until death / end of follow-up before day 30."""
    days, anc = series((1, 10, 300), last=10)
    result = grade_early_icaht(days, anc, followup_end_day=10, followup_end=end)
    assert (result.grade, "never_recovered" in result.flags) == (grade, True)
    assert "incomplete" in result.flags  # never suppressed, grade 4 included
    assert "before day 30" in result.reasons[0]
    off = grade_early_icaht(
        days,
        anc,
        followup_end_day=10,
        followup_end=end,
        settings=ToxicitySettings(icaht_never_recovered=False),
    )
    assert (off.grade, "incomplete" in off.flags) == (2, True)
    later, anc_later = series((4, 10, 300), last=10)  # onset day 4: the rule does not apply
    assert grade_early_icaht(later, anc_later, followup_end_day=10, followup_end=end).grade == 2
    # follow-up ending on day 30 or later is not "before day 30"
    full, anc_full = series((1, 30, 300), last=30)
    assert grade_early_icaht(full, anc_full, followup_end_day=30, followup_end=end).grade == 3


def test_rejeski_2023_incomplete_flag_is_kept_for_grade_4() -> None:
    """Rejeski 2023: ≤ 100 for ≥ 14 days is grade 4; the missing tail still flags incomplete."""
    days, anc = series((1, 20, 50), last=20)
    result = grade_early_icaht(days, anc)
    assert result.grade == 4 and "incomplete" in result.flags


def test_follow_up_end_fields_go_together() -> None:
    with pytest.raises(InvalidInput) as info:
        grade_early_icaht([1], [300], followup_end_day=5)
    assert info.value.field == "followup_end"


def test_censoring_drops_later_values() -> None:
    days, anc = series((1, 20, 300))
    assert grade_early_icaht(days, anc).grade == 3
    censored = grade_early_icaht(days, anc, censor_day=5)
    assert censored.grade == 1 and "incomplete" in censored.flags
    died = grade_early_icaht(days, anc, censor_day=5, followup_end_day=5, followup_end="death")
    assert died.grade == 4


def test_no_values_in_window() -> None:
    result = grade_early_icaht([40, 50], [300, 300])
    assert result.grade is None and result.flags == ("no_values", "incomplete")


LATE = [
    # (days, anc, expected, source)
    ([45, 52], [900, 1200], 2, f"{SPEC} #7"),
    ([40, 50], [1500, 1500], 1, "clinical.md §3.2: ≤ 1500"),
    ([40, 50], [1501, 1501], 0, "clinical.md §3.2"),
    ([40, 50], [1000, 1400], 2, "clinical.md §3.2: ≤ 1000"),
    ([40, 50], [1001, 1400], 1, "clinical.md §3.2"),
    ([40, 50], [500, 1400], 3, "clinical.md §3.2: ≤ 500"),
    ([40, 50], [501, 1400], 2, "clinical.md §3.2"),
    ([40, 50], [100, 1400], 4, "clinical.md §3.2: ≤ 100"),
    ([40, 50], [101, 1400], 3, "clinical.md §3.2"),
    ([40, 50], [400, 1600], 0, "Liang: second lowest must be ≤ 1500"),
    ([30, 101, 60, 70], [50, 50, 2000, 2000], 0, "window days 31–100"),
    ([31, 100], [900, 900], 2, "window days 31–100 inclusive"),
]


@pytest.mark.parametrize(("days", "anc", "expected", "source"), LATE)
def test_late(days: list, anc: list, expected: int, source: str) -> None:
    assert grade_late_icaht(days, anc).grade == expected, source


def test_late_single_value() -> None:
    """clinical.md §3.4 #8: consensus → not gradable; Liang mode → grade 3."""
    result = grade_late_icaht([60], [400])
    assert result.grade is None
    assert set(result.flags) == {"single_value", "incomplete"}
    liang = grade_late_icaht(
        [60], [400], settings=ToxicitySettings(late_icaht_single_value="grade")
    )
    assert (liang.grade, liang.flags) == (3, ("single_value",))


def test_late_transient_flag() -> None:
    assert "transient" in grade_late_icaht([40, 50], [400, 1600]).flags


@pytest.mark.parametrize(("anc", "grade"), [(1501, 0), (1500, 1), (1000, 2), (500, 3), (100, 4)])
def test_late_anc_grade(anc: float, grade: int) -> None:
    assert late_anc_grade(anc) == grade


def test_batch_equals_scalar_on_random_series() -> None:
    rng = np.random.default_rng(11)
    n_patients = 300
    pid, days, anc = [], [], []
    for p in range(n_patients):
        n = int(rng.integers(1, 60))
        d = np.sort(rng.choice(np.arange(-10, 120), n, replace=False)).astype(float)
        d = d + rng.random(n) * 0.5
        v = rng.choice([50, 100, 101, 300, 500, 501, 900, 1500, 1600, 3000], n).astype(float)
        pid += [p] * n
        days += d.tolist()
        anc += v.tolist()
    order = rng.permutation(len(pid))
    pid_a, days_a, anc_a = np.array(pid)[order], np.array(days)[order], np.array(anc)[order]
    for mode in ("cumulative", "longest_joined"):
        batch = grade_icaht_many(pid_a, days_a, anc_a, duration_mode=mode)
        assert batch.patient.tolist() == list(range(n_patients))
        for p in range(n_patients):
            mask = pid_a == p
            early = grade_early_icaht(days_a[mask], anc_a[mask], duration_mode=mode)
            late = grade_late_icaht(days_a[mask], anc_a[mask])
            assert batch.early_grade[p] == (-1 if early.grade is None else early.grade), p
            assert batch.late_grade[p] == (-1 if late.grade is None else late.grade), p
            if early.grade is not None:
                assert batch.days_anc_le_500[p] == early.days_anc_le_500


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (([0, 1], [300]), {}, "anc_per_ul"),
        (([0, 1], [300, -1]), {}, "anc_per_ul"),
        (([0, float("nan")], [300, 300]), {}, "days"),
        (([0, True], [300, 300]), {}, "days"),
        (("0,1", [300, 300]), {}, "days"),
        (([0, 1], [300, 300]), {"duration_mode": "longest"}, "duration_mode"),
    ],
)
def test_bad_input(args: tuple, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        grade_early_icaht(*args, **kwargs)
    assert err.value.field == field


def test_rejeski_2023_anc_in_10e9_per_l_needs_its_unit() -> None:
    """Rejeski 2023 thresholds are cells/µL: ANC 0.3 × 10⁹/L = 300/µL, never 0.3/µL."""
    days = list(range(0, 31))
    anc = [1.5] + [0.3] * 7 + [2.0] * 23
    assert grade_early_icaht(days, anc, unit="10^9/L").grade == 2
    with pytest.raises(InvalidInput) as info:
        grade_early_icaht(days, anc)
    assert info.value.field == "anc_per_ul" and "10^9/L" in str(info.value)
    with pytest.raises(InvalidInput):
        grade_late_icaht([45, 52], [0.9, 1.2])
    assert grade_late_icaht([45, 52], [0.9, 1.2], unit="10^9/L").grade == 2
    with pytest.raises(InvalidInput) as info:
        grade_icaht_many([1, 1], [1, 2], [0.3, 0.4])
    assert info.value.field == "anc_per_ul"
