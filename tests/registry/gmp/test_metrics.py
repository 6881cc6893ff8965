"""Metrics store: program metrics of the batches and courses the actor may see."""

from __future__ import annotations

from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.manufacturing.factories import PASSING_RELEASE
from tests.registry.gmp.factories import ADMIN, ROSA, add_batch


# --------------------------------------------------------------------------- metrics and demo
def test_program_metrics(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-F", status="failed")
    gmp.record_qc(ADMIN, "BT-F", {**PASSING_RELEASE, "car_transduction": 4.0}, "QC")
    m = gmp.program_metrics(ADMIN)
    assert (m.success.successes, m.success.failures) == (2, 1)
    assert m.vein_to_vein.median_days == 35.0
    row = m.qc.set_index("attribute").loc["car_transduction"]
    assert (row["n_fail"], row["n_pass"]) == (1, 0)
    assert gmp.program_metrics(ROSA).success.successes == 1
