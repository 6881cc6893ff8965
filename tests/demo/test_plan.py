"""Shared demo figures (immunoreset.demo.plan)."""

from __future__ import annotations

import pytest

from immunoreset.demo import month_day


@pytest.mark.parametrize(
    ("month", "day"), [(0, 0), (1, 30), (9, 274), (16.5, 502), (17, 517), (24, 731)]
)
def test_month_day(month, day):
    assert month_day(month) == day
