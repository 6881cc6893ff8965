"""Small seeded designs shared by the virtual-trial tests (kept small for CI time)."""

from __future__ import annotations

import copy

import pytest

BASE = {
    "name": "small",
    "seed": 5,
    "replicates": 6,
    "patients_per_arm": 6,
    "size_curve": [3],
    "sample_days": [0, 7, 28, 91, 182, 365],
    "arms": [
        {"name": "A", "dose_per_kg": 1e6},
        {"name": "B", "flat_dose": 3e7, "lymphodepletion": {"regimen": "none"}},
    ],
    "parameters": {"rse": {"k_kill": 0.2}},
    "success": {"conditions": [{"arm": "A", "endpoint": "b_clear_d7", "min_proportion": 0.5}]},
}


@pytest.fixture
def small() -> dict:
    """A fresh, mutable copy of the small design mapping."""
    return copy.deepcopy(BASE)
