"""Kaplan–Meier against a product-limit table computed by hand (Kaplan & Meier 1958)."""

from __future__ import annotations

import math

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.kinetics.survival import km_reconstitution

DURATIONS = [30, 45, 45, 60, 80, 80, 100, 120]
EVENTS = [1, 1, 0, 1, 1, 0, 0, 1]

# time, at risk n, events d, censored c, S(t) = S(t−)·(1 − d/n)
HAND_TABLE = [
    (30, 8, 1, 0, 7 / 8),
    (45, 7, 1, 1, 7 / 8 * 6 / 7),
    (60, 5, 1, 0, 7 / 8 * 6 / 7 * 4 / 5),
    (80, 4, 1, 1, 7 / 8 * 6 / 7 * 4 / 5 * 3 / 4),
    (100, 2, 0, 1, 7 / 8 * 6 / 7 * 4 / 5 * 3 / 4),
    (120, 1, 1, 0, 0.0),
]


def test_product_limit_table():
    km = km_reconstitution(DURATIONS, EVENTS)
    rows = list(km.table[["time", "at_risk", "events", "censored", "survival"]].itertuples(False))
    assert len(rows) == len(HAND_TABLE)
    for got, exp in zip(rows, HAND_TABLE, strict=True):
        assert tuple(got[:4]) == exp[:4]
        assert got[4] == pytest.approx(exp[4], abs=1e-12)
    assert (km.n, km.n_events) == (8, 5)
    # S drops to 0.45 ≤ 0.5 first at day 80
    assert km.median == 80.0


def test_exponential_greenwood_ci_by_hand():
    km = km_reconstitution(DURATIONS, EVENTS)
    z = 1.959963984540054
    greenwood = 0.0
    for (t, n, d, _c, s), row in zip(HAND_TABLE[:4], km.table.itertuples(False), strict=False):
        greenwood += d / (n * (n - d))
        se = math.sqrt(greenwood) / abs(math.log(s))
        lower = math.exp(-math.exp(math.log(-math.log(s)) + z * se))
        upper = math.exp(-math.exp(math.log(-math.log(s)) - z * se))
        assert row.time == t
        assert row.ci_lower == pytest.approx(lower, rel=1e-6)
        assert row.ci_upper == pytest.approx(upper, rel=1e-6)


def test_median_not_reached():
    km = km_reconstitution([100, 200, 300], [1, 0, 0])
    assert km.median is None
    assert km.median_ci[1] is None
    assert "median not reached" in km.reasons[0]


@pytest.mark.parametrize(
    ("durations", "events", "kwargs", "field"),
    [
        ([], [], {}, "durations"),
        ([10, -1], [1, 0], {}, "durations"),
        ([10, float("nan")], [1, 0], {}, "durations"),
        ([10, 20], [1], {}, "events"),
        ([10, 20], [1, 2], {}, "events"),
        ([10, 20], ["y", "n"], {}, "events"),
        ([10, 20], [1, 0], {"alpha": 0}, "alpha"),
        ([10, 20], [1, 0], {"alpha": 1.0}, "alpha"),
        ("10,20", [1, 0], {}, "durations"),
    ],
)
def test_bad_input(durations, events, kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        km_reconstitution(durations, events, **kwargs)
    assert exc.value.field == field
