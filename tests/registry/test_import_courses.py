"""The importers of other formats (FHIR, REDCap) write through the same rule gate as CSV.

They hand validated courses to :func:`csvio.import_courses`; an infusion of another patient's
bag must be refused there as it is for ``import csv``, ``infuse`` and the web (issue 14 item 2),
and nothing may be written.
"""

from __future__ import annotations

import dataclasses

import pytest

from immunoreset.registry import Registry, system_actor
from immunoreset.registry.csvio import import_courses
from immunoreset.registry.rules import RuleViolation
from tests.factories import small_course

ADMIN = system_actor()


def _courses():  # type: ignore[no-untyped-def]
    rm, er = small_course("RM-001"), small_course("ER-001", "ERLANGEN")
    stolen = dataclasses.replace(rm.infusions[0], bag_ids=(er.bags[0].bag_id,))
    return rm, er, dataclasses.replace(rm, infusions=(stolen,))


def test_import_courses_refuses_another_patients_bag(db_url: str) -> None:
    rm, er, bad = _courses()
    with Registry(db_url, upgrade=True) as reg:
        sites = [("ROME", "Rome"), ("ERLANGEN", "Erlangen")]
        with pytest.raises(RuleViolation) as info:
            import_courses(reg, ADMIN, [bad, er], sites=sites, reason="FHIR import")
        assert info.value.reason == "wrong_patient"
        assert reg.count_rows()["patients"] == 0 and reg.count_rows()["audit_log"] == 0
        import_courses(reg, ADMIN, [rm, er], sites=sites, reason="FHIR import")
        assert reg.load_course(ADMIN, "RM-001") == rm
