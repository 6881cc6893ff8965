"""SYNTHETIC disease-activity scores (immunoreset.demo.scores): item sums and trajectories."""

from __future__ import annotations

import pytest

from immunoreset.clinical.sledai import SLEDAI2K_WEIGHTS
from immunoreset.demo import month_day
from tests.demo.factories import published


# --------------------------------------------------------------------------- disease scores
def test_sledai_scores_equal_weighted_item_sums_and_fall_to_zero():
    for c in published():
        if c.patient.diagnosis != "SLE":
            continue
        rows = [d for d in c.disease_assessments if d.instrument == "sledai2k"]
        for d in rows:
            assert set(d.items) == set(SLEDAI2K_WEIGHTS)
            assert d.score == sum(SLEDAI2K_WEIGHTS[k] * v for k, v in d.items.items())
        assert 8 <= rows[0].score <= 20
        assert rows[0].items["low_complement"] == rows[0].items["increased_dna_binding"] == 1
        assert all(d.score == 0 for d in rows if c.study_day(d.date) >= month_day(6))


@pytest.mark.parametrize(
    ("instrument", "baseline", "final", "n_items"),
    [
        ("cmas", (15, 35), (45, 52), 14),
        ("mmt8", (50, 65), (75, 80), 8),
        ("mrss", (20, 30), (10, 15), 17),
    ],
)
def test_item_scores_sum_and_improve(instrument, baseline, final, n_items):
    found = 0
    for c in published():
        rows = [d for d in c.disease_assessments if d.instrument == instrument]
        if not rows:
            continue
        found += 1
        for d in rows:
            assert len(d.items) == n_items and sum(d.items.values()) == d.score
        assert baseline[0] <= rows[0].score <= baseline[1]
        assert final[0] <= rows[-1].score <= final[1]
    assert found


def test_disease_visits_within_follow_up():
    for c in published():
        days = sorted({c.study_day(d.date) for d in c.disease_assessments})
        allowed = [-7, *(month_day(m) for m in (1, 3, 6, 9, 12, 18, 24))]
        assert days == [d for d in allowed if d <= c.study_day(c.followup.last_contact)]
