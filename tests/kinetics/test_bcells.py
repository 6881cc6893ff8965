"""B-cell clearance / reconstitution at the threshold boundaries (model-physiology §2.5)."""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.kinetics.bcells import (
    PRESETS,
    aplasia_duration,
    clearance_day,
    reconstitution_day,
)

# (id, days, values, threshold, expected clearance day, source)
CLEARANCE = [
    ("exactly_1_not_cleared", [-5, 0, 7], [200, 50, 1.0], 1.0, None, "strict <, issue 5"),
    ("0.99_cleared", [-5, 0, 7], [200, 50, 0.99], 1.0, 7.0, "strict <, issue 5"),
    ("day0_counts", [-5, 0, 7], [200, 0.5, 0.1], 1.0, 0.0, "on or after infusion"),
    ("pre_infusion_ignored", [-3, 7], [0.5, 5.0], 1.0, None, "day < 0 is before infusion"),
    ("nct_aplasia_49.9", [0, 7], [80, 49.9], 50.0, 7.0, "NCT04225676 aplasia < 50/uL"),
    ("nct_aplasia_50", [0, 7], [80, 50.0], 50.0, None, "NCT04225676 aplasia < 50/uL"),
]


@pytest.mark.parametrize(
    ("days", "values", "threshold", "expected"),
    [c[1:5] for c in CLEARANCE],
    ids=[c[0] for c in CLEARANCE],
)
def test_clearance_day(days, values, threshold, expected):
    assert clearance_day(days, values, threshold=threshold) == expected


# (id, days, values, kwargs, expected reconstitution day, source)
RECON = [
    ("exactly_10_reconstituted", [0, 7, 90], [80, 0.2, 10.0], {}, 90.0, "≥, issue 5"),
    ("9.99_not", [0, 7, 90], [80, 0.2, 9.99], {}, None, "≥, issue 5"),
    ("before_clearance_ignored", [0, 3, 7], [80, 20, 0.5], {}, None, "after clearance only"),
    ("clearance_day_itself_not", [0, 7], [80, 0.5], {"threshold": 1.0}, None, "strictly after"),
    ("never_cleared", [0, 7, 90], [80, 5, 20], {}, None, "no aplasia, no reconstitution"),
    (
        "nct_50_abs",
        [0, 7, 60, 90],
        [80, 0.5, 49.9, 50],
        {"threshold": 50.0},
        90.0,
        "NCT04225676 loss of aplasia ≥ 50/uL",
    ),
    (
        "pct_lymph_exactly_10",
        [0, 7, 90],
        [80, 0.5, 30],
        {"definition": "percent_of_lymphocytes", "lymphocytes": [900, 200, 300]},
        90.0,
        "NCT04225676 ≥ 10 % of lymphocytes: 30/300",
    ),
    (
        "pct_lymph_9.99",
        [0, 7, 90],
        [80, 0.5, 29.97],
        {"definition": "percent_of_lymphocytes", "lymphocytes": [900, 200, 300]},
        None,
        "29.97/300 = 9.99 %",
    ),
    (
        "pct_lymph_zero_lymphocytes",
        [0, 7, 90],
        [80, 0, 0],
        {"definition": "percent_of_lymphocytes", "lymphocytes": [900, 0, 0]},
        None,
        "0/0 counts as 0 %",
    ),
    (
        "pct_baseline_exactly_10",
        [0, 7, 90],
        [80, 0.5, 20],
        {"definition": "percent_of_baseline", "baseline": 200.0},
        90.0,
        "20/200 = 10 % (UNCONFIRMED definition)",
    ),
    (
        "pct_baseline_below",
        [0, 7, 90],
        [80, 0.5, 19.9],
        {"definition": "percent_of_baseline", "baseline": 200.0},
        None,
        "19.9/200 < 10 %",
    ),
]


@pytest.mark.parametrize(
    ("days", "values", "kwargs", "expected"),
    [c[1:5] for c in RECON],
    ids=[c[0] for c in RECON],
)
def test_reconstitution_day(days, values, kwargs, expected):
    assert reconstitution_day(days, values, **kwargs) == expected


def test_aplasia_duration_reconstituted():
    r = aplasia_duration([-5, 0, 7, 60, 110, 120], [150, 40, 0.5, 0.2, 12, 30])
    assert (r.cleared, r.clearance_day, r.reconstitution_day) == (True, 7.0, 110.0)
    assert (r.aplasia_days, r.censored, r.last_day) == (103.0, False, 120.0)
    assert r.reasons[-1].startswith("reconstituted")


def test_aplasia_duration_censored_at_last_sample():
    r = aplasia_duration([0, 7, 60, 180], [40, 0.5, 0.2, 9.0])
    assert (r.cleared, r.reconstitution_day, r.censored) == (True, None, True)
    assert r.aplasia_days == 180 - 7
    assert r.last_day == 180.0


def test_never_cleared_is_not_censored():
    r = aplasia_duration([0, 7], [40, 5])
    assert (r.cleared, r.censored, r.aplasia_days, r.clearance_day) == (False, False, None, None)


def test_no_samples():
    r = aplasia_duration([], [])
    assert (r.cleared, r.last_day, r.reasons) == (False, None, ("no samples",))


def test_preset_nct04225676():
    r = aplasia_duration(
        [0, 7, 60, 90],
        [80, 10, 30, 40],
        lymphocytes=[900, 200, 400, 350],
        **PRESETS["nct04225676_lymphocytes"],
    )
    # cleared at day 7 (10 < 50/uL), 40/350 = 11.4 % ≥ 10 % at day 90 (30/400 = 7.5 % at 60)
    assert (r.clearance_day, r.reconstitution_day) == (7.0, 90.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"clearance_threshold": 0}, "clearance_threshold"),
        ({"clearance_threshold": float("nan")}, "clearance_threshold"),
        ({"threshold": 0.5}, "threshold"),  # absolute reconstitution below clearance threshold
        (
            {"threshold": 150, "definition": "percent_of_lymphocytes", "lymphocytes": [1, 1]},
            "threshold",
        ),
        ({"definition": "percent"}, "definition"),
        ({"definition": "percent_of_lymphocytes"}, "lymphocytes"),
        ({"definition": "percent_of_baseline"}, "baseline"),
        ({"definition": "percent_of_baseline", "baseline": 0}, "baseline"),
        ({"definition": "percent_of_lymphocytes", "lymphocytes": [10, 0.1]}, "lymphocytes"),
        ({"definition": "percent_of_lymphocytes", "lymphocytes": [10]}, "lymphocytes"),
        ({"aggregate": "median"}, "aggregate"),
    ],
)
def test_bad_settings(kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        aplasia_duration([0, 7], [5, 0.5], **kwargs)
    assert exc.value.field == field
