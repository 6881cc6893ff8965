"""Exact (Clopper–Pearson) binomial confidence intervals against R binom.test."""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.report import tables as t

# exact Clopper–Pearson values, hand-checked against R binom.test(k, n)$conf.int
CP = [
    (6, 8, 0.3491, 0.9681, "binom.test(6, 8)"),
    (1, 8, 0.0032, 0.5265, "binom.test(1, 8)"),
    (0, 8, 0.0, 0.3694, "binom.test(0, 8): upper 1 − 0.025^(1/8)"),
    (8, 8, 0.6306, 1.0, "binom.test(8, 8): lower 0.025^(1/8)"),
    (2, 8, 0.0319, 0.6509, "binom.test(2, 8)"),
]


@pytest.mark.parametrize(("k", "n", "lo", "hi", "source"), CP)
def test_clopper_pearson(k, n, lo, hi, source):
    got = t.clopper_pearson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5), source


@pytest.mark.parametrize(
    ("k", "n", "field"),
    [(9, 8, "k"), (-1, 8, "k"), (1, 0, "n"), (True, 8, "k"), (1.5, 8, "k"), ("1", 8, "k")],
)
def test_clopper_pearson_bad_input(k, n, field):
    with pytest.raises(InvalidInput) as err:
        t.clopper_pearson(k, n)
    assert err.value.field == field
