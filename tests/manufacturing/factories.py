"""Small builders of manufacturing domain objects for the tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from immunoreset.course import Apheresis, Bag, Batch

D = dt.date

#: A complete set of release-stage results of default-v1 that all pass.
PASSING_RELEASE = {
    "cd3_viability": 92.0,
    "cd3_purity": 96.0,
    "car_transduction": 35.0,
    "endotoxin": 0.5,
    "sterility_interim": "negative",
    "mycoplasma_interim": "negative",
    "dose_deviation": 4.0,
}
#: Post-release results of default-v1 that pass.
PASSING_POST = {"vcn": 1.8, "sterility_final": "negative", "mycoplasma_final": "negative"}


def apheresis(apheresis_id: str = "AP-1", date: dt.date = D(2025, 1, 2)) -> Apheresis:
    return Apheresis(apheresis_id, date, 2e9, 150.0)


def batch(
    batch_id: str = "B-1", apheresis_id: str = "AP-1", status: str = "released", **kw: Any
) -> Batch:
    kw.setdefault("process_start", D(2025, 1, 3))
    kw.setdefault("harvest_date", D(2025, 1, 15))
    return Batch(
        batch_id=batch_id,
        apheresis_id=apheresis_id,
        platform="CliniMACS Prodigy",
        operator="op1",
        status=status,
        **kw,
    )


def bag(
    bag_id: str = "B-1-01",
    cells: float = 5e7,
    volume_ml: float = 20.0,
    *,
    batch_id: str = "B-1",
    status: str = "released",
    expiry: dt.date | None = D(2025, 12, 31),
) -> Bag:
    return Bag(bag_id, batch_id, cells, volume_ml, status=status, expiry=expiry)
