"""Success rules and binomial intervals.

Oracle: R 4.2.2 ``binom.test(x, n, conf.level)`` (Clopper–Pearson) and
``prop.test(x, n, conf.level, correct = FALSE)`` (Wilson score), values printed to 10 digits.
"""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.model.trial.design import Condition, SuccessRule
from immunoreset.model.trial.rules import clopper_pearson, evaluate_condition, evaluate_rule, wilson

# (x, n, level, CP low, CP high, Wilson low, Wilson high) from R 4.2.2
R_INTERVALS = [
    (0, 10, 0.95, 0.0000000000, 0.3084971078, 0.0000000000, 0.2775327999),
    (1, 10, 0.95, 0.0025285785, 0.4450161170, 0.0178762131, 0.4041500268),
    (5, 10, 0.95, 0.1870860284, 0.8129139716, 0.2365930905, 0.7634069095),
    (10, 10, 0.95, 0.6915028922, 1.0000000000, 0.7224672001, 1.0000000000),
    (7, 12, 0.90, 0.3152377907, 0.8189752428, 0.3559810149, 0.7800221193),
    (80, 100, 0.90, 0.7227997503, 0.8633386748, 0.7266961912, 0.8574981763),
    (3, 40, 0.99, 0.0086277888, 0.2483722748, 0.0191632553, 0.2517689762),
]


@pytest.mark.parametrize(("x", "n", "level", "cl", "ch", "wl", "wh"), R_INTERVALS)
def test_intervals_match_r(x, n, level, cl, ch, wl, wh):
    lo, hi = clopper_pearson(np.array([x]), np.array([n]), level)
    assert (lo[0], hi[0]) == pytest.approx((cl, ch), abs=1e-9)
    lo, hi = wilson(np.array([x]), np.array([n]), level)
    assert (lo[0], hi[0]) == pytest.approx((wl, wh), abs=1e-9)


@pytest.mark.parametrize(("x", "n"), [(-1, 10), (11, 10), (0, 0)])
def test_interval_refuses_impossible_counts(x, n):
    with pytest.raises(InvalidInput):
        clopper_pearson(np.array([x]), np.array([n]))


def _cond(**kw):
    return Condition.model_validate({"arm": "A", **kw})


def test_min_proportion_is_inclusive_ci_bound_strict():
    v = np.array([[1.0] * 8 + [0.0] * 2])  # 8/10 responders
    ok, p = evaluate_condition(_cond(endpoint="b_clear_d7", min_proportion=0.8), v)
    assert ok[0] and p[0] == 0.8
    ok, _ = evaluate_condition(_cond(endpoint="b_clear_d7", min_proportion=0.81), v)
    assert not ok[0]
    # CP 90 % lower bound of 8/10 is 0.4930...: above 0.49 holds, above 0.4931 does not
    lo = clopper_pearson(np.array([8]), np.array([10]), 0.9)[0][0]
    ci_ok = _cond(endpoint="b_clear_d7", ci={"level": 0.9, "lower_above": float(lo) - 1e-9})
    ci_no = _cond(endpoint="b_clear_d7", ci={"level": 0.9, "lower_above": float(lo)})
    assert evaluate_condition(ci_ok, v)[0][0]
    assert not evaluate_condition(ci_no, v)[0][0]


@pytest.mark.parametrize(
    ("op", "thr", "expected"),
    [("le", 4.0, 3), ("lt", 4.0, 2), ("ge", 4.0, 2), ("gt", 4.0, 1)],
)
def test_responder_threshold_both_sides(op, thr, expected):
    v = np.array([[1.0, 3.0, 4.0, 5.0, np.nan]])  # NaN never responds
    _ok, p = evaluate_condition(
        _cond(endpoint="disease_m6", responder={op: thr}, min_proportion=0.0), v
    )
    assert p[0] * 5 == pytest.approx(expected)


def test_statistic_condition_median_and_mean_skip_nan():
    v = np.array([[100.0, 200.0, np.nan, 300.0], [np.nan] * 4])
    ok, s = evaluate_condition(
        _cond(endpoint="aplasia_days", statistic="median", compare={"le": 200}), v
    )
    assert s[0] == 200.0 and ok[0]
    assert np.isnan(s[1]) and not ok[1]  # no value: the condition fails
    ok, s = evaluate_condition(
        _cond(endpoint="aplasia_days", statistic="mean", compare={"gt": 200}), v
    )
    assert s[0] == 200.0 and not ok[0]


def test_combine_all_and_any():
    conds = [
        {"arm": "A", "endpoint": "b_clear_d7", "min_proportion": 0.5},
        {"arm": "A", "endpoint": "recon_m6", "min_proportion": 0.5},
    ]
    vals = {"A": {"b_clear_d7": np.array([[1.0, 1.0]]), "recon_m6": np.array([[0.0, 0.0]])}}
    all_rule = SuccessRule.model_validate({"combine": "all", "conditions": conds})
    any_rule = SuccessRule.model_validate({"combine": "any", "conditions": conds})
    assert not evaluate_rule(all_rule, vals)[0][0]
    assert evaluate_rule(any_rule, vals)[0][0]
