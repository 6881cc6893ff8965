"""Dose planning from bags against hand-computed cases (cap and both deviation bounds)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.bags import plan_dose
from tests.manufacturing.factories import D, bag

# Each row: (case, plan_dose kwargs, expected) — arithmetic done by hand in the comments.
CASES = [
    # 30 kg × 1e6/kg = 3e7, window 2.4e7–3.6e7. Both bags 5e7/20 mL (2.5e6/mL) exceed the
    # window → partial from the smallest sufficient bag (tie → lower ID): 3e7 / 2.5e6 = 12 mL.
    (
        "partial from smallest sufficient bag",
        {"weight_kg": 30, "bags": [bag("B-1-01", 5e7, 20), bag("B-1-02", 5e7, 20)]},
        {
            "grade": "partial_bag",
            "target_total_cells": 3e7,
            "draws": [("B-1-01", 3e7, 12.0, False)],
            "dose_cells_per_kg": 1e6,
            "deviation": 0.0,
            "remaining": ["B-1-02"],
            "discarded": [("B-1-01", 2e7, 8.0)],
        },
    ),
    # Smallest sufficient: 6e7/12 mL (5e6/mL) rather than 2e8; 3e7/5e6 = 6 mL.
    (
        "smallest sufficient, not the biggest",
        {"weight_kg": 30, "bags": [bag("B-1-01", 2e8, 40), bag("B-1-02", 6e7, 12)]},
        {
            "grade": "partial_bag",
            "target_total_cells": 3e7,
            "draws": [("B-1-02", 3e7, 6.0, False)],
            "dose_cells_per_kg": 1e6,
            "deviation": 0.0,
            "remaining": ["B-1-01"],
            "discarded": [("B-1-02", 3e7, 6.0)],
        },
    ),
    # 40 kg → 4e7, window 3.2e7–4.8e7: whole bag 4.5e7 (+12.5 %) → 1.125e6/kg.
    (
        "whole bag within window",
        {"weight_kg": 40, "bags": [bag("B-1-01", 1e8, 30), bag("B-1-02", 4.5e7, 15)]},
        {
            "grade": "whole_bag",
            "target_total_cells": 4e7,
            "draws": [("B-1-02", 4.5e7, 15.0, True)],
            "dose_cells_per_kg": 1.125e6,
            "deviation": 0.125,
            "remaining": ["B-1-01"],
            "discarded": [],
        },
    ),
    # 50 kg → 5e7; a 6e7 bag is exactly +20 % → accepted whole.
    (
        "exactly +20 % accepted",
        {"weight_kg": 50, "bags": [bag("B-1-01", 6e7, 10)]},
        {
            "grade": "whole_bag",
            "target_total_cells": 5e7,
            "draws": [("B-1-01", 6e7, 10.0, True)],
            "dose_cells_per_kg": 1.2e6,
            "deviation": 0.2,
            "remaining": [],
            "discarded": [],
        },
    ),
    # 6.005e7 is +20.1 % → not whole; draw 5e7 at 6.005e6/mL = 8.32639... mL.
    (
        "+20.1 % not accepted as a whole bag",
        {"weight_kg": 50, "bags": [bag("B-1-01", 6.005e7, 10)]},
        {
            "grade": "partial_bag",
            "target_total_cells": 5e7,
            "draws": [("B-1-01", 5e7, 5e7 / 6.005e6, False)],
            "dose_cells_per_kg": 1e6,
            "deviation": 0.0,
            "remaining": [],
            "discarded": [("B-1-01", 1.005e7, 10 - 5e7 / 6.005e6)],
        },
    ),
    # 50 kg → 5e7; a 4e7 bag is exactly −20 % → accepted whole.
    (
        "exactly -20 % accepted",
        {"weight_kg": 50, "bags": [bag("B-1-01", 4e7, 10)]},
        {
            "grade": "whole_bag",
            "target_total_cells": 5e7,
            "draws": [("B-1-01", 4e7, 10.0, True)],
            "dose_cells_per_kg": 8e5,
            "deviation": -0.2,
            "remaining": [],
            "discarded": [],
        },
    ),
    # Cap: 120 kg × 1e6 = 1.2e8 capped at 1e8; window 8e7–1.2e8; 2e8/40 mL = 5e6/mL → 20 mL;
    # 1e8 / 120 kg = 833,333.3 cells/kg.
    (
        "cap for a heavy patient",
        {"weight_kg": 120, "bags": [bag("B-1-01", 2e8, 40)], "max_total_cells": 1e8},
        {
            "grade": "partial_bag",
            "target_total_cells": 1e8,
            "draws": [("B-1-01", 1e8, 20.0, False)],
            "dose_cells_per_kg": 1e8 / 120,
            "deviation": 0.0,
            "remaining": [],
            "discarded": [("B-1-01", 1e8, 20.0)],
        },
    ),
    # Cap not binding: 80 kg → 8e7 < 1e8; whole 8e7 bag.
    (
        "cap above the weight-based dose",
        {"weight_kg": 80, "bags": [bag("B-1-01", 8e7, 16)], "max_total_cells": 1e8},
        {
            "grade": "whole_bag",
            "target_total_cells": 8e7,
            "draws": [("B-1-01", 8e7, 16.0, True)],
            "dose_cells_per_kg": 1e6,
            "deviation": 0.0,
            "remaining": [],
            "discarded": [],
        },
    ),
    # 60 kg → 6e7, window 4.8e7–7.2e7; three 2.5e7 bags: no single; two whole = 5e7 (−16.7 %).
    (
        "two whole bags",
        {"weight_kg": 60, "bags": [bag(f"B-1-0{i}", 2.5e7, 10) for i in (1, 2, 3)]},
        {
            "grade": "whole_bags",
            "target_total_cells": 6e7,
            "draws": [("B-1-01", 2.5e7, 10.0, True), ("B-1-02", 2.5e7, 10.0, True)],
            "dose_cells_per_kg": 5e7 / 60,
            "deviation": 5e7 / 6e7 - 1,
            "remaining": ["B-1-03"],
            "discarded": [],
        },
    ),
    # ±5 %: window 5.7e7–6.3e7; 5e7 and 7.5e7 both outside → 2 whole (5e7) + 1e7 from the
    # third at 2.5e6/mL = 4 mL.
    (
        "whole bags topped up with a partial",
        {
            "weight_kg": 60,
            "bags": [bag(f"B-1-0{i}", 2.5e7, 10) for i in (1, 2, 3)],
            "permitted_deviation": 0.05,
        },
        {
            "grade": "bags_with_partial",
            "target_total_cells": 6e7,
            "draws": [
                ("B-1-01", 2.5e7, 10.0, True),
                ("B-1-02", 2.5e7, 10.0, True),
                ("B-1-03", 1e7, 4.0, False),
            ],
            "dose_cells_per_kg": 1e6,
            "deviation": 0.0,
            "remaining": [],
            "discarded": [("B-1-03", 1.5e7, 6.0)],
        },
    ),
    # Unusable bags are skipped: quarantined 1e9, expired on the day, infused; usable 3e7/10 mL.
    (
        "only released, unexpired bags are used",
        {
            "weight_kg": 30,
            "on_date": D(2025, 6, 2),
            "bags": [
                bag("B-1-01", 1e9, 100, status="quarantined"),
                bag("B-1-02", 3e7, 10, expiry=D(2025, 6, 1)),
                bag("B-1-03", 3e7, 10, status="infused"),
                bag("B-1-04", 3e7, 10, status="stored_for_redosing", expiry=D(2025, 6, 2)),
            ],
        },
        {
            "grade": "whole_bag",
            "target_total_cells": 3e7,
            "draws": [("B-1-04", 3e7, 10.0, True)],
            "dose_cells_per_kg": 1e6,
            "deviation": 0.0,
            "remaining": [],
            "discarded": [],
        },
    ),
]


@pytest.mark.parametrize(("case", "kwargs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_dose_hand_computed(
    case: str, kwargs: dict[str, Any], expected: dict[str, Any]
) -> None:
    p = plan_dose(**kwargs)
    assert p.grade == expected["grade"], case
    assert p.target_total_cells == pytest.approx(expected["target_total_cells"])
    got = [(d.bag_id, d.cells, d.volume_ml, d.whole) for d in p.draws]
    assert len(got) == len(expected["draws"])
    for (gid, gcells, gvol, gwhole), (eid, ecells, evol, ewhole) in zip(
        got, expected["draws"], strict=True
    ):
        assert (gid, gwhole) == (eid, ewhole)
        assert gcells == pytest.approx(ecells)
        assert gvol == pytest.approx(evol)
    assert p.dose_cells_per_kg == pytest.approx(expected["dose_cells_per_kg"])
    assert p.deviation == pytest.approx(expected["deviation"], abs=1e-12)
    assert [r.bag_id for r in p.remaining] == expected["remaining"]
    assert [
        (r.bag_id, pytest.approx(r.cells), pytest.approx(r.volume_ml)) for r in p.discarded
    ] == [(i, c, v) for i, c, v in expected["discarded"]]
    assert p.total_cells == pytest.approx(sum(c for _, c, _, _ in expected["draws"]))
    assert p.window_low_cells <= p.total_cells * (1 + 1e-9)
    assert p.total_cells <= p.window_high_cells * (1 + 1e-9)


def test_cap_reported() -> None:
    p = plan_dose(weight_kg=120, bags=[bag("B-1-01", 2e8, 40)], max_total_cells=1e8)
    assert p.capped and p.uncapped_total_cells == pytest.approx(1.2e8)
    assert (p.window_low_cells, p.window_high_cells) == pytest.approx((8e7, 1.2e8))
    assert "capped at 1e+08" in p.reasons[0]
    assert not plan_dose(weight_kg=80, bags=[bag("B-1-01", 8e7, 16)], max_total_cells=1e8).capped


def test_exactly_minus_20_1_percent_is_impossible() -> None:
    """50 kg: 3.995e7 cells is −20.1 % of 5e7 — below the window, nothing else to draw."""
    with pytest.raises(InvalidInput) as err:
        plan_dose(weight_kg=50, bags=[bag("B-1-01", 3.995e7, 10)])
    assert err.value.field == "bags"
    assert "at least 4e+07" in str(err.value)


def test_no_released_bag_is_impossible() -> None:
    with pytest.raises(InvalidInput) as err:
        plan_dose(weight_kg=30, bags=[bag(status="quarantined"), bag("B-1-02", status="discarded")])
    assert err.value.field == "bags"


def test_all_bags_together_below_target_but_in_window() -> None:
    """60 kg → 6e7; five 1e7 bags: the combination search stops at 4 bags (4e7 < 4.8e7), so the
    greedy step takes all five whole (5e7, −16.7 %)."""
    p = plan_dose(weight_kg=60, bags=[bag(f"B-1-0{i}", 1e7, 5) for i in range(1, 6)])
    assert p.grade == "whole_bags"
    assert len(p.draws) == 5
    assert p.total_cells == pytest.approx(5e7)
    assert p.remaining == ()


def test_keep_partial_remainder() -> None:
    p = plan_dose(weight_kg=30, bags=[bag("B-1-01", 5e7, 20)], keep_partial_remainder=True)
    assert p.discarded == ()
    assert [(r.bag_id, r.cells, r.volume_ml) for r in p.remaining] == [
        ("B-1-01", pytest.approx(2e7), pytest.approx(8.0))
    ]
    assert p.remaining_cells == pytest.approx(2e7)
    assert p.remaining_volume_ml == pytest.approx(8.0)


def test_custom_target() -> None:
    """0.5e6/kg × 20 kg = 1e7 → whole 1.1e7 bag (+10 %)."""
    p = plan_dose(weight_kg=20, bags=[bag("B-1-01", 1.1e7, 4)], target_cells_per_kg=5e5)
    assert p.grade == "whole_bag"
    assert p.deviation == pytest.approx(0.1)


BAD = [
    {"weight_kg": 0},
    {"weight_kg": 300},
    {"weight_kg": "70"},
    {"weight_kg": True},
    {"weight_kg": float("nan")},
    {"bags": "B-1-01"},
    {"bags": [bag(), "B-1-02"]},
    {"bags": [bag(), bag()]},
    {"target_cells_per_kg": 0},
    {"target_cells_per_kg": 2e9},
    {"max_total_cells": 0},
    {"max_total_cells": "1e8"},
    {"permitted_deviation": -0.1},
    {"permitted_deviation": 0.6},
    {"on_date": "2025-01-01"},
    {"on_date": dt.datetime(2025, 1, 1)},
    {"keep_partial_remainder": 1},
]


@pytest.mark.parametrize("changes", BAD)
def test_bad_inputs(changes: dict[str, Any]) -> None:
    args: dict[str, Any] = {"weight_kg": 30, "bags": [bag()]} | changes
    with pytest.raises(InvalidInput) as err:
        plan_dose(**args)
    assert err.value.field == next(iter(changes))
