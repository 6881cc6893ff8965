"""Demo GMP seeding (immunoreset.demo.gmp): SYNTHETIC QC results and release decisions."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from immunoreset.demo.gmp import seed_demo_qc
from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.factories import small_course
from tests.registry.gmp.factories import ADMIN, two_site_registry


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    yield from two_site_registry(db_url)


def test_seed_demo_qc(registry: Registry) -> None:
    courses = [small_course("RM-001"), small_course("ER-001", "ERLANGEN")]
    given = {
        "BT-ER001": SimpleNamespace(
            outcome="deviation",
            results={
                "viability_percent": 75.0,
                "cd3_percent": 95.0,
                "car_percent": 30.0,
                "vcn_copies_per_transduced_cell": 2.0,
                "endotoxin_eu_ml": 0.4,
                "dose_deviation_percent": 3.0,
                "sterility": "negative",
                "mycoplasma": "negative",
            },
        )
    }
    counts = seed_demo_qc(registry, ADMIN, courses, np.random.default_rng(1), qc=given)
    assert counts == {"released": 1, "released_with_deviation": 1, "refused": 0}
    gmp = Gmp(registry)
    assert gmp.evaluate(ADMIN, "BT-RM001").status == "pass"
    dev = gmp.decision(ADMIN, "BT-ER001")
    assert dev is not None and dev.deviation is not None
    assert dev.deviation.attributes == ("cd3_viability",)


def test_seed_demo_qc_lives_in_the_demo_package_only() -> None:
    # The registry sits below the demo: it must not offer the demo's seeding.
    from immunoreset import demo
    from immunoreset.registry import gmp

    assert demo.seed_demo_qc is seed_demo_qc
    assert not hasattr(gmp, "seed_demo_qc")
