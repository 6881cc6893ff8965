"""Actors and record builders shared by the GMP store tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from immunoreset import course as c
from immunoreset.manufacturing import Deviation
from immunoreset.registry import Actor, Registry, system_actor
from tests.factories import day, small_course

ADMIN = system_actor("tester")
ROSA = Actor("rosa", "investigator", frozenset({"ROME"}))
MONA = Actor("mona", "monitor", frozenset({"ROME"}))
#: qa users (the GMP unit's quality assurance / qualified person) and their password
QA = Actor("qa.rome", "qa", frozenset({"ROME"}))
QA2 = Actor("qa.rome2", "qa", frozenset({"ROME"}))
QA_ER = Actor("qa.erlangen", "qa", frozenset({"ERLANGEN"}))
PASSWORD = "signing-password-1"


def add_people(registry: Registry) -> None:
    """Registry users behind the actors above (the qa users sign with :data:`PASSWORD`)."""
    registry.add_user(ADMIN, "rosa", "investigator", ["ROME"], password=PASSWORD)
    registry.add_user(ADMIN, "mona", "monitor", ["ROME"], password=PASSWORD)
    for qa in (QA, QA2, QA_ER):
        registry.add_user(ADMIN, qa.username, "qa", sorted(qa.sites or ()), password=PASSWORD)


def release(gmp: Any, batch_id: str, when: dt.date | None = None, actor: Actor = QA) -> Any:
    """Release as a qa user of the batch's site, signing with the right password."""
    return gmp.release(actor, batch_id, password=PASSWORD, when=when)


def approved_deviation(gmp: Any, batch_id: str, *attributes: str) -> int:
    """A release deviation raised by rosa and approved (signed) by qa.rome."""
    dev = gmp.raise_deviation(
        ROSA, batch_id, "risk assessed", attributes=attributes or None, reference="DEV-7"
    )
    gmp.approve_deviation(QA, dev, PASSWORD)
    return dev


def add_batch(
    registry: Registry,
    batch_id: str,
    *,
    status: str = "quarantined",
    bags: tuple[tuple[str, str, dt.date | None], ...] = (),
    study_id: str = "RM-001",
) -> None:
    """A batch of the patient's apheresis with bags (bag_id, status, expiry) of 4e7 in 20 mL."""
    aph = "AP-" + study_id.replace("-", "")
    batch = c.Batch(batch_id, aph, "CliniMACS Prodigy", day(-34), day(-22), "op07", status=status)
    registry.add_record(ADMIN, study_id, "batches", batch, reason="test")
    for bag_id, bag_status, expiry in bags:
        bag = c.Bag(bag_id, batch_id, 4e7, 20.0, status=bag_status, expiry=expiry)
        registry.add_record(ADMIN, study_id, "bags", bag, reason="test")


def last_audit(registry: Registry, study_id: str = "RM-001") -> dict[str, Any]:
    return registry.audit_trail(ADMIN, study_id=study_id, limit=1)[0]


def deviation(*attributes: str, when: dt.date = day(-21)) -> Deviation:
    return Deviation(attributes, "gmp.lead", "risk assessed", "qa.person", when, "DEV-7")


def two_site_registry(db_url: str) -> Iterator[Registry]:
    """A registry with sites ROME and ERLANGEN and one small course at each (RM-001, ER-001)."""
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Ospedale Pediatrico Bambino Gesù")
        reg.add_site(ADMIN, "ERLANGEN", "Universitätsklinikum Erlangen")
        reg.save_courses(
            ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
        )
        yield reg
