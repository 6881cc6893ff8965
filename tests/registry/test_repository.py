"""Registry round trip, audit trail, soft delete and access rules — on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest

from immunoreset import course as c
from immunoreset.errors import ChainOfIdentityError, InvalidInput, NotFound, PermissionDenied
from immunoreset.registry import Registry, system_actor
from tests.factories import day, small_course

ADMIN = system_actor("tester")


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Ospedale Pediatrico Bambino Gesù")
        reg.add_site(ADMIN, "ERLANGEN", "Universitätsklinikum Erlangen")
        yield reg


def test_round_trip(registry: Registry) -> None:
    rome, erl = small_course("RM-001"), small_course("ER-001", "ERLANGEN")
    stats = registry.save_courses(ADMIN, [rome, erl], reason="test entry")
    assert stats.inserted["patients"] == 2
    assert stats.inserted["labs"] == 8
    assert registry.load_course(ADMIN, "RM-001") == rome
    assert registry.load_course(ADMIN, "ER-001") == erl
    assert [co.study_id for co in registry.iter_courses(ADMIN)] == ["ER-001", "RM-001"]


def test_resave_is_idempotent(registry: Registry) -> None:
    course = small_course()
    registry.save_course(ADMIN, course, reason="first")
    n_audit = registry.count_rows()["audit_log"]
    stats = registry.save_course(ADMIN, course, reason="again")
    assert stats.total_inserted == 0 and stats.total_updated == 0
    assert registry.count_rows()["audit_log"] == n_audit


def test_audit_records_every_change(registry: Registry) -> None:
    registry.save_course(ADMIN, small_course(), reason="entry")
    inserts = registry.audit_trail(ADMIN, study_id="RM-001", limit=1000)
    assert {e["action"] for e in inserts} == {"insert"}
    assert (
        len(inserts) == 1 + 20
    )  # the patient and each of its 20 records (incl. infection, LTFU visit)
    registry.update_record(
        ADMIN, "RM-001", "labs", (day(2), "anc"), {"value": 520.0}, reason="transcription error"
    )
    entry = registry.audit_trail(ADMIN, study_id="RM-001", limit=1)[0]
    assert entry["action"] == "update"
    assert entry["username"] == "tester"
    assert entry["table_name"] == "labs"
    assert entry["record_key"] == f"RM-001/{day(2).isoformat()}/anc"
    assert entry["field"] == "value"
    assert (entry["old_value"], entry["new_value"]) == ("480.0", "520.0")
    assert entry["reason"] == "transcription error"
    assert entry["ts"] is not None


def test_update_is_validated_before_writing(registry: Registry) -> None:
    registry.save_course(ADMIN, small_course(), reason="entry")
    with pytest.raises(InvalidInput) as info:
        registry.update_record(
            ADMIN,
            "RM-001",
            "daily_assessments",
            (day(2),),
            {"temperature_max_c": 55.0},
            reason="typo",
        )
    assert info.value.field == "temperature_max_c"
    assert registry.load_course(ADMIN, "RM-001") == small_course()
    with pytest.raises(InvalidInput):
        registry.update_record(ADMIN, "RM-001", "labs", (day(2), "anc"), {"value": 1.0}, reason="")


def test_soft_delete_keeps_row(registry: Registry) -> None:
    registry.save_course(ADMIN, small_course(), reason="entry")
    registry.delete_record(ADMIN, "RM-001", "labs", (day(2), "anc"), reason="wrong patient")
    course = registry.load_course(ADMIN, "RM-001")
    assert all(r.analyte != "anc" for r in course.labs)
    assert registry.count_rows()["labs"] == 4  # still stored
    entry = registry.audit_trail(ADMIN, study_id="RM-001", limit=1)[0]
    assert entry["action"] == "delete" and entry["reason"] == "wrong patient"
    with pytest.raises(NotFound):
        registry.delete_record(ADMIN, "RM-001", "labs", (day(2), "anc"), reason="again")


def test_add_record_refuses_existing_key(registry: Registry) -> None:
    registry.save_course(ADMIN, small_course(), reason="entry")
    new = c.LabResult(date=day(3), analyte="anc", value=900.0, unit="cells/uL")
    registry.add_record(ADMIN, "RM-001", "labs", new, reason="new lab")
    assert new in registry.load_course(ADMIN, "RM-001").labs
    with pytest.raises(InvalidInput):
        registry.add_record(ADMIN, "RM-001", "labs", new, reason="twice")


def test_site_scoping_and_roles(registry: Registry) -> None:
    registry.save_courses(
        ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
    )
    registry.add_user(ADMIN, "rosa", "investigator", ["ROME"], password="correct horse 1")
    registry.add_user(ADMIN, "mona", "monitor", ["ROME", "ERLANGEN"], password="correct horse 2")
    rosa = registry.actor_for("rosa")
    mona = registry.actor_for("mona")
    assert [p.study_id for p in registry.list_patients(rosa)] == ["RM-001"]
    with pytest.raises(NotFound):
        registry.load_course(rosa, "ER-001")  # another site: not found, no enumeration
    with pytest.raises(NotFound):
        registry.audit_trail(rosa, study_id="ER-001")
    assert {a["study_id"] for a in registry.audit_trail(rosa, limit=500)} == {"RM-001"}
    # a monitor reads everything of its sites but writes nothing
    assert len(registry.list_patients(mona)) == 2
    with pytest.raises(PermissionDenied):
        registry.update_record(
            mona, "RM-001", "labs", (day(2), "anc"), {"value": 1.0}, reason="monitor edit"
        )
    with pytest.raises(PermissionDenied):
        registry.save_course(mona, small_course("RM-002"), reason="monitor entry")
    # an investigator cannot write to another site's patient, even a new one
    with pytest.raises(PermissionDenied):
        registry.save_course(rosa, small_course("ER-002", "ERLANGEN"), reason="wrong site")
    with pytest.raises(PermissionDenied):
        registry.add_user(rosa, "eve", "admin", [], password="0123456789")
    assert {p.study_id for p in registry.list_patients(ADMIN)} == {"RM-001", "ER-001"}


def test_bag_of_another_patient_is_refused(registry: Registry) -> None:
    registry.save_course(ADMIN, small_course("RM-001"), reason="entry")
    other = small_course("RM-002")
    stolen = dataclasses.replace(other.bags[0], bag_id="BG-RM001-1", batch_id="BT-RM002")
    thief = dataclasses.replace(other, bags=(stolen,))
    with pytest.raises(ChainOfIdentityError):
        registry.save_course(ADMIN, thief, reason="entry")
    with pytest.raises(NotFound):
        registry.load_course(ADMIN, "RM-002")  # whole save rolled back


def test_unknown_site_refused(registry: Registry) -> None:
    with pytest.raises(InvalidInput) as info:
        registry.save_course(ADMIN, small_course("XX-001", "NOWHERE"), reason="entry")
    assert info.value.field == "site"


def test_unknown_user_and_bad_role(registry: Registry) -> None:
    with pytest.raises(NotFound):
        registry.actor_for("nobody")
    with pytest.raises(InvalidInput):
        registry.add_user(ADMIN, "x1", "superuser", [], password="0123456789")
    with pytest.raises(InvalidInput):
        registry.add_user(ADMIN, "x2", "monitor", ["MARS"], password="0123456789")
    with pytest.raises(InvalidInput):
        registry.add_user(ADMIN, "x3", "monitor", [], password="short")


def test_dates_are_dates(registry: Registry) -> None:
    registry.save_course(ADMIN, small_course(), reason="entry")
    course = registry.load_course(ADMIN, "RM-001")
    assert isinstance(course.labs[0].date, dt.date)
    assert isinstance(course.daily_assessments[0].temperature_max_c, float)


def test_page_patients(registry: Registry) -> None:
    registry.save_courses(
        ADMIN,
        [small_course(f"RM-00{i}") for i in range(1, 6)] + [small_course("ER-001", "ERLANGEN")],
        reason="entry",
    )
    page, total = registry.page_patients(ADMIN, offset=2, limit=2)
    assert total == 6 and [p.study_id for p in page] == ["RM-002", "RM-003"]
    registry.add_user(ADMIN, "eva", "investigator", ["ERLANGEN"], password="correct horse 3")
    page, total = registry.page_patients(registry.actor_for("eva"))
    assert total == 1 and [p.study_id for p in page] == ["ER-001"]
    _, total = registry.page_patients(ADMIN, site="ROME")
    assert total == 5
    with pytest.raises(InvalidInput):
        registry.page_patients(ADMIN, limit=0)


def test_page_batches_is_site_scoped(registry: Registry) -> None:
    registry.save_courses(
        ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
    )
    rows, total = registry.page_batches(ADMIN)
    assert total == 2 and {sid for sid, _, _ in rows} == {"RM-001", "ER-001"}
    assert all(len(bags) == 2 for _, _, bags in rows)
    registry.add_user(ADMIN, "rosa", "investigator", ["ROME"], password="correct horse 1")
    rows, total = registry.page_batches(registry.actor_for("rosa"))
    assert total == 1 and rows[0][1].batch_id == "BT-RM001"
    rows, total = registry.page_batches(ADMIN, offset=1, limit=1)
    assert total == 2 and len(rows) == 1
