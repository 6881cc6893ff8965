"""QC store: results replaced with audit, bad inputs, site and role rules."""

from __future__ import annotations

from typing import Any

import pytest

from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.registry.gmp.factories import ADMIN, MONA, ROSA, add_batch, last_audit


def test_qc_result_replaced_with_audit(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-Q")
    gmp.record_qc(ADMIN, "BT-Q", {"cd3_viability": 79.9}, "first")
    qc = gmp.record_qc(ADMIN, "BT-Q", {"cd3_viability": 80.0}, "transcription error")
    assert qc.result("cd3_viability").status == "pass"
    entry = last_audit(registry)
    assert (entry["action"], entry["field"]) == ("update", "value")
    assert (entry["old_value"], entry["new_value"]) == ("79.9", "80.0")
    assert entry["reason"] == "transcription error"
    n = registry.count_rows()["audit_log"]
    gmp.record_qc(ADMIN, "BT-Q", {"cd3_viability": 80.0}, "same again")
    assert registry.count_rows()["audit_log"] == n


@pytest.mark.parametrize(
    ("results", "field"),
    [
        ({"viability": 90.0}, "results"),
        ({"cd3_viability": 101.0}, "cd3_viability"),
        ({"cd3_viability": "high"}, "cd3_viability"),
        ({"sterility_interim": "maybe"}, "sterility_interim"),
        ({"cd3_viability": None}, "cd3_viability"),
        ({}, "results"),
    ],
)
def test_record_qc_bad_inputs(
    registry: Registry, gmp: Gmp, results: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        gmp.record_qc(ADMIN, "BT-RM001", results, "entry")
    assert err.value.field == field


def test_qc_site_and_role_rules(registry: Registry, gmp: Gmp) -> None:
    with pytest.raises(PermissionDenied):
        gmp.record_qc(MONA, "BT-RM001", {"cd3_viability": 90.0}, "entry")
    with pytest.raises(NotFound):
        gmp.record_qc(ROSA, "BT-ER001", {"cd3_viability": 90.0}, "entry")
    with pytest.raises(NotFound):
        gmp.evaluate(ROSA, "BT-ER001")
    with pytest.raises(NotFound):
        gmp.release(ROSA, "BT-NONE", password="x")
    assert gmp.evaluate(MONA, "BT-RM001").status == "pending"
