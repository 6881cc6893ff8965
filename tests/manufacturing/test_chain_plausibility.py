"""check_infusion_plausible: every reason code at its boundary (both sides)."""

from __future__ import annotations

import datetime as dt

import pytest

from immunoreset.course import Bag, Batch
from immunoreset.manufacturing.chain import (
    CHAIN_REASONS,
    DOSE_ROUNDING_TOLERANCE,
    ChainViolation,
    check_infusion_plausible,
)

D = dt.date
BATCH = Batch(
    "B-1", "AP-1", "CliniMACS Prodigy", D(2025, 1, 2), D(2025, 1, 14), "op1", status="released"
)
BAG = Bag("B-1-01", "B-1", 1.04e8, 20.0, status="released", expiry=D(2025, 12, 31))
REDOSE = Bag("B-1-02", "B-1", 1.04e8, 20.0, status="stored_for_redosing", expiry=D(2025, 12, 31))


def _check(**kw):  # type: ignore[no-untyped-def]
    args = dict(
        study_id="RM-001",
        on_date=D(2025, 2, 1),
        today=D(2025, 2, 1),
        bags=[BAG],
        batches=[BATCH],
        release_dates={"B-1": D(2025, 1, 20)},
        dose_cells_per_kg=2.6e6,
        weight_kg=40.0,
    )
    args.update(kw)
    return check_infusion_plausible(**args)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"on_date": D(2025, 2, 2)}, "future_date"),
        ({"on_date": D(2025, 1, 13)}, "before_harvest"),
        ({"on_date": D(2025, 1, 19)}, "before_release"),
        ({"dose_cells_per_kg": 2.6e6 * (1 + DOSE_ROUNDING_TOLERANCE) * 1.0001}, "dose_exceeds_bag"),
        ({"dose_cells_per_kg": 5e6}, "dose_exceeds_bag"),
        ({"previous_infusions": [D(2025, 1, 25)]}, "unplanned_infusion"),
    ],
)
def test_refused(kw: dict, reason: str) -> None:
    with pytest.raises(ChainViolation) as err:
        _check(**kw)
    assert err.value.reason == reason and reason in CHAIN_REASONS


@pytest.mark.parametrize(
    "kw",
    [
        {},  # today itself
        {"on_date": D(2025, 1, 20), "today": D(2025, 3, 1)},  # the release day itself
        {"dose_cells_per_kg": 2.6e6 * (1 + DOSE_ROUNDING_TOLERANCE)},  # rounding allowance
        {"bags": [REDOSE], "previous_infusions": [D(2025, 1, 25)]},  # planned re-dose
        {"release_dates": {}},  # no stored decision: the release status check decides
    ],
)
def test_accepted(kw: dict) -> None:
    assert _check(**kw) is None
