"""Authorisation store: hospital-exemption authorisations and overdue reports."""

from __future__ import annotations

import dataclasses

import pytest

from immunoreset.errors import InvalidInput, NotFound
from immunoreset.manufacturing import HospitalExemption, RequiredReport
from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.factories import day
from tests.registry.gmp.factories import ADMIN, ROSA, last_audit


# --------------------------------------------------------------------------- reports
def test_authorisation_and_overdue_reports(registry: Registry, gmp: Gmp) -> None:
    pending = HospitalExemption("RM-001", "AIFA", "HE-2024-7", day(-60))
    gmp.add_authorisation(ADMIN, pending)
    approved = HospitalExemption(
        "RM-001", "AIFA", "HE-2024-7", day(-60), "approved", day(-40), ("annual report",)
    )
    gmp.add_authorisation(ADMIN, approved, reason="decision received")
    assert gmp.authorisations(ADMIN, "RM-001") == [approved]
    assert last_audit(registry)["field"] in {"decision", "decision_date", "conditions"}
    sae = RequiredReport("RM-001", "sae_notification", "CRS grade 3", day(17), None, "HE-2024-7")
    annual = RequiredReport("RM-001", "annual_report", "period 1", day(325))
    gmp.add_report(ADMIN, sae)
    gmp.add_report(ADMIN, annual)
    gmp.add_report(ADMIN, RequiredReport("ER-001", "annual_report", "period 1", day(10)))
    assert gmp.overdue_reports(ADMIN, day(17)) == [
        RequiredReport("ER-001", "annual_report", "period 1", day(10))
    ]
    assert gmp.overdue_reports(ROSA, day(17)) == []  # due today is not overdue
    assert gmp.overdue_reports(ROSA, day(18)) == [sae]
    gmp.add_report(ROSA, dataclasses.replace(sae, submitted=day(19)))
    assert gmp.overdue_reports(ROSA, day(20)) == []
    entry = last_audit(registry)
    assert (entry["action"], entry["field"], entry["username"]) == ("update", "submitted", "rosa")
    with pytest.raises(NotFound):
        gmp.add_report(ROSA, RequiredReport("ER-001", "other", "x", day(1)))
    with pytest.raises(InvalidInput):
        gmp.add_report(ADMIN, "report")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        gmp.overdue_reports(ADMIN, "2024-01-01")  # type: ignore[arg-type]
