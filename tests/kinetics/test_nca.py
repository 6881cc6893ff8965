"""NCA against hand-computed cases (arithmetic written out), PKNCA conventions (ecosystem.md)."""

from __future__ import annotations

import math

import pytest

from immunoreset.kinetics.nca import compute_nca, terminal_slope

LN = math.log

# (id, days, values, kwargs, expected auc, expected flags, source/arithmetic)
AUC_CASES = [
    (
        "rise_then_fall_log_down",
        [0, 3, 7, 14, 28],
        [0, 10, 40, 20, 5],
        {},
        3 * (0 + 10) / 2 + 4 * (10 + 40) / 2 + 7 * (40 - 20) / LN(40 / 20) + 14 * 15 / LN(4),
        ("blq_first_set_to_zero",),
        "lin up (0→3→7), log down (7→14→28): PKNCA 'lin up/log down'",
    ),
    (
        "flat_is_linear",
        [0, 7, 14],
        [5, 5, 5],
        {"end": 14},
        7 * 5 + 7 * 5,
        (),
        "equal values use the linear trapezoid",
    ),
    (
        "blq_middle_dropped_pknca_default",
        [0, 7, 14, 21, 28],
        [0, 20, 0.5, 10, 2],
        {},
        7 * 20 / 2 + 14 * (20 - 10) / LN(2) + 7 * (10 - 2) / LN(5),
        ("blq_first_set_to_zero", "blq_in_middle_dropped"),
        "PKNCA conc.blq middle='drop': day 14 removed, 7→21 log down",
    ),
    (
        "blq_middle_zero_rule",
        [0, 7, 14, 21, 28],
        [0, 20, 0.5, 10, 2],
        {"blq_rule": "zero"},
        7 * 20 / 2 + 7 * 20 / 2 + 7 * 10 / 2 + 7 * (10 - 2) / LN(5),
        ("blq_first_set_to_zero", "blq_in_middle_set_to_zero"),
        "every BLQ = 0; segments touching 0 are linear",
    ),
    (
        "blq_drop_rule_imputes_start",
        [0, 7, 14, 21, 28],
        [0, 20, 0.5, 10, 2],
        {"blq_rule": "drop"},
        7 * 20 / 2 + 14 * (20 - 10) / LN(2) + 7 * (10 - 2) / LN(5),
        ("blq_first_dropped", "blq_in_middle_dropped", "start_imputed_zero"),
        "day-0 BLQ dropped, 0 imputed at day 0 (PKNCA start_conc0)",
    ),
    (
        "blq_last_kept_as_zero_end_interpolated",
        [0, 7, 14, 21, 35],
        [0, 30, 10, 0.2, 0],
        {},
        7 * 30 / 2 + 7 * (30 - 10) / LN(3) + 7 * 10 / 2 + 0.0,
        ("blq_first_set_to_zero", "blq_last_set_to_zero", "end_interpolated"),
        "after Tlast: first BLQ as 0 (linear 14→21), zeros to day 28",
    ),
    (
        "blq_last_dropped_not_covered",
        [0, 7, 14, 21, 35],
        [0, 30, 10, 0.2, 0],
        {"blq_rule": "drop"},
        None,
        ("blq_first_dropped", "blq_last_dropped", "start_imputed_zero", "auc_window_not_covered"),
        "last usable sample day 14 < 28: never extrapolated",
    ),
    (
        "end_interpolated_log",
        [0, 7, 35],
        [0, 40, 10],
        {},
        7 * 40 / 2 + 21 * (40 - 40 * 0.25 ** (21 / 28)) / LN(40 / (40 * 0.25 ** (21 / 28))),
        ("blq_first_set_to_zero", "end_interpolated"),
        "C(28) = 40·(10/40)^(21/28) on the log scale, then log trapezoid 7→28",
    ),
    (
        "end_interpolated_linear_rising",
        [0, 20, 40],
        [0, 10, 30],
        {},
        20 * 10 / 2 + 8 * (10 + 18) / 2,
        ("blq_first_set_to_zero", "end_interpolated"),
        "C(28) = 10 + 8/20·20 = 18 (linear while rising)",
    ),
    (
        "auc_0_84",
        [0, 7, 28, 84, 90],
        [0, 50, 10, 1, 0.5],
        {"end": 84},
        7 * 50 / 2 + 21 * 40 / LN(5) + 56 * 9 / LN(10),
        ("blq_first_set_to_zero", "blq_last_set_to_zero"),
        "AUC0–84 via end=84; day-90 BLQ after Tlast kept as 0 but outside the window",
    ),
    (
        "single_sample_not_covered",
        [14],
        [50],
        {},
        None,
        ("single_sample", "start_imputed_zero", "auc_window_not_covered"),
        "one sample at day 14 < end 28",
    ),
    (
        "single_sample_window_to_it",
        [14],
        [50],
        {"end": 14},
        14 * 50 / 2,
        ("single_sample", "start_imputed_zero"),
        "0 imputed at day 0, linear to day 14",
    ),
    (
        "no_start_imputation",
        [3, 7, 28],
        [10, 40, 5],
        {"impute_start_zero": False},
        None,
        ("auc_window_not_covered",),
        "first sample after start and imputation off",
    ),
    (
        "all_blq_keep",
        [0, 7, 14, 28],
        [0.1, 0.2, 0, 0.3],
        {},
        0.0,
        ("all_blq", "blq_first_set_to_zero"),
        "all BLQ are 'first' (PKNCA): kept as 0, area 0",
    ),
    (
        "all_blq_drop",
        [0, 7, 14, 28],
        [0.1, 0.2, 0, 0.3],
        {"blq_rule": "drop"},
        None,
        ("all_blq", "blq_first_dropped", "auc_window_not_covered"),
        "nothing left after dropping",
    ),
]


@pytest.mark.parametrize(
    ("days", "values", "kwargs", "auc", "flags"),
    [c[1:6] for c in AUC_CASES],
    ids=[c[0] for c in AUC_CASES],
)
def test_auc_hand_computed(days, values, kwargs, auc, flags):
    r = compute_nca(days, values, lloq=1.0, **kwargs)
    if auc is None:
        assert r.auc is None
    else:
        assert r.auc == pytest.approx(auc, rel=1e-12)
    assert r.flags == flags


# (id, days, values, lloq, expected (cmax, tmax, clast, tlast, persistence, n_blq))
SUMMARY_CASES = [
    ("rise_fall", [0, 3, 7, 14, 28], [0, 10, 40, 20, 5], 1.0, (40, 7, 5, 28, 28, 1)),
    ("tmax_first_on_ties", [0, 7, 14, 28], [0, 40, 40, 5], 1.0, (40, 7, 5, 28, 28, 1)),
    ("pre_start_ignored", [-5, 0, 7, 28], [100, 0, 20, 5], 1.0, (20, 7, 5, 28, 28, 1)),
    ("lloq_exact_is_quantifiable", [0, 7, 14], [0, 3, 1.0], 1.0, (3, 7, 1, 14, 14, 1)),
    ("just_below_lloq_is_blq", [0, 7, 14], [0, 3, 0.999], 1.0, (3, 7, 3, 7, 7, 2)),
    ("persistence_skips_trailing_blq", [0, 7, 60, 90], [0, 9, 2, 0.5], 1.0, (9, 7, 2, 60, 60, 2)),
    ("all_blq", [0, 7], [0.5, 0.5], 1.0, (None, None, None, None, None, 2)),
]


@pytest.mark.parametrize(
    ("days", "values", "lloq", "expected"),
    [c[1:] for c in SUMMARY_CASES],
    ids=[c[0] for c in SUMMARY_CASES],
)
def test_cmax_tmax_clast_tlast(days, values, lloq, expected):
    r = compute_nca(days, values, lloq=lloq, end=7)
    got = (r.cmax, r.tmax, r.clast, r.tlast, r.persistence_day, r.n_blq)
    assert got == expected


def test_units_and_window_are_reported():
    r = compute_nca([0, 7, 28], [0, 100, 10], lloq=5, assay="qpcr", end=28)
    assert (r.unit, r.auc_unit, r.assay) == ("copies/ug", "copies/ug*day", "qpcr")
    assert (r.auc_start, r.auc_end, r.lloq, r.n_samples) == (0.0, 28.0, 5.0, 3)
    assert r.reasons == r.flags


def test_unsorted_days_are_sorted():
    a = compute_nca([28, 0, 14, 7], [5, 0, 20, 40], lloq=1)
    b = compute_nca([0, 7, 14, 28], [0, 40, 20, 5], lloq=1)
    assert a == b


# (id, aggregate, expected value kept on day 7)
@pytest.mark.parametrize(("aggregate", "cmax"), [("min", 20.0), ("max", 40.0), ("mean", 30.0)])
def test_duplicate_days_aggregated_on_request(aggregate, cmax):
    r = compute_nca([0, 7, 7, 28], [0, 20, 40, 5], lloq=1, aggregate=aggregate)
    assert r.cmax == cmax
    assert r.n_samples == 3


# ------------------------------------------------------------------------- terminal slope
def test_terminal_slope_exact_exponential_uses_most_points():
    # tmax day 7 is excluded; 14, 21, 28, 35 lie on one exponential (half-life 7 d): all fits
    # have adj R² = 1, so the one with most points (4) wins.
    ts = terminal_slope([0, 7, 14, 21, 28, 35], [0, 100, 80, 40, 20, 10], lloq=1)
    assert ts.n_points == 4
    assert ts.half_life == pytest.approx(7.0)
    assert ts.lambda_z == pytest.approx(math.log(2) / 7)
    assert ts.span_ratio == pytest.approx((35 - 14) / 7)
    assert ts.flags == ()


def test_terminal_slope_prefers_better_adjusted_r2():
    # Day 14 is off the line through 21, 28, 35: the 3-point fit (adj R² = 1) beats 4 points.
    ts = terminal_slope([0, 7, 14, 21, 28, 35], [0, 100, 90, 40, 20, 10], lloq=1)
    assert ts.n_points == 3
    assert ts.first_day == 21
    assert ts.half_life == pytest.approx(7.0)
    assert ts.flags == ()  # span ratio (35 − 21)/7 = 2.0 is not < 2


def test_terminal_slope_flags():
    # 3 points, half-life 7 d over 14 days: span ratio exactly 2 → not flagged
    ts = terminal_slope([0, 7, 14, 21, 28], [0, 100, 40, 20, 10], lloq=1)
    assert ts.span_ratio == pytest.approx(2.0)
    assert "span_ratio_below_2" not in ts.flags
    # same half-life over 6 days: span ratio 6/7 < 2 → flagged
    short = terminal_slope(
        [0, 7, 14, 17, 20], [0, 100, 40, 40 * 2 ** (-3 / 7), 40 * 2 ** (-6 / 7)], lloq=1
    )
    assert short.span_ratio == pytest.approx(6 / 7)
    assert "span_ratio_below_2" in short.flags
    # noisy tail: adjusted R² < 0.9
    noisy = terminal_slope([0, 7, 14, 21, 28, 35], [0, 100, 50, 10, 30, 5], lloq=1)
    assert noisy.adj_r_squared < 0.9
    assert "adj_r_squared_below_0.9" in noisy.flags
    # auc extrapolated: Clast/λz vs AUC(0–tlast)
    ts2 = terminal_slope([0, 1, 2, 3, 4], [0, 100, 80, 64, 51.2], lloq=1)
    lz = -math.log(0.8)
    auc = 50 + (100 - 80) / lz + (80 - 64) / lz + (64 - 51.2) / lz
    assert ts2.auc_pct_extrapolated == pytest.approx(100 * (51.2 / lz) / (auc + 51.2 / lz))
    assert "auc_extrapolated_above_20pct" in ts2.flags


@pytest.mark.parametrize(
    ("days", "values", "flag"),
    [
        ([0, 7, 14, 21], [0, 100, 50, 25], "too_few_points"),  # only 2 points after tmax
        ([0, 7, 14, 21, 28], [0, 100, 10, 20, 30], "no_positive_slope"),
        ([0, 7], [0.1, 0.2], "too_few_points"),  # all BLQ
    ],
)
def test_terminal_slope_no_fit(days, values, flag):
    ts = terminal_slope(days, values, lloq=1)
    assert ts.lambda_z is None
    assert ts.flags == (flag,)
