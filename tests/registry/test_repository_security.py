"""Attacks on the repository's single save path: site takeover by import, audit record keys.

Issue 13 items 1 and 9, on SQLite and PostgreSQL. Each attack asserts the refusal *and* that
nothing stored changed.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.csvio import export_csv, import_csv
from tests.factories import small_course

ADMIN = system_actor("tester")


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        reg.add_site(ADMIN, "ERLANGEN", "Erlangen")
        reg.save_courses(
            ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
        )
        reg.add_user(ADMIN, "dana", "data_manager", ["ROME"], password="correct horse 1")
        reg.add_user(ADMIN, "rosa", "investigator", ["ROME"], password="correct horse 2")
        yield reg


def _snapshot(reg: Registry) -> tuple[object, ...]:
    return (
        [(p.study_id, p.site) for p in reg.list_patients(ADMIN)],
        reg.load_course(ADMIN, "ER-001"),
        reg.count_rows(),
    )


def _set_site(folder: Path, study_id: str, site: str) -> None:
    path = folder / "patients.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["study_id"] == study_id:
            row["site"] = site
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize("who", ["dana", "rosa"])
def test_import_cannot_take_over_another_sites_patient(
    registry: Registry, tmp_path: Path, who: str
) -> None:
    folder = tmp_path / "export"
    export_csv(registry, ADMIN, folder)
    _set_site(folder, "ER-001", "ROME")
    before = _snapshot(registry)
    with pytest.raises(PermissionDenied, match="cannot see"):
        import_csv(registry, registry.actor_for(who), folder, reason="takeover")
    assert _snapshot(registry) == before
    with pytest.raises(NotFound):
        registry.load_course(registry.actor_for(who), "ER-001")


def test_save_cannot_take_over_or_move_a_patient(registry: Registry) -> None:
    before = _snapshot(registry)
    dana = registry.actor_for("dana")
    with pytest.raises(PermissionDenied, match="cannot see"):
        registry.save_course(dana, small_course("ER-001", "ROME"), reason="takeover")
    # even an admin's save never moves a patient: that is a transfer
    with pytest.raises(PermissionDenied, match="patient transfer"):
        registry.save_course(ADMIN, small_course("ER-001", "ROME"), reason="silent move")
    assert _snapshot(registry) == before


def test_an_admin_import_cannot_move_a_patient_either(registry: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    export_csv(registry, ADMIN, folder)
    _set_site(folder, "ER-001", "ROME")
    before = _snapshot(registry)
    with pytest.raises(PermissionDenied, match="patient transfer"):
        import_csv(registry, ADMIN, folder, reason="bulk move")
    assert _snapshot(registry) == before


def test_transfer_is_admin_only_and_audited(registry: Registry) -> None:
    before = _snapshot(registry)
    for who in ("dana", "rosa"):
        with pytest.raises((PermissionDenied, NotFound)):
            registry.transfer_patient(registry.actor_for(who), "ER-001", "ROME", reason="referral")
    with pytest.raises(InvalidInput, match="reason"):
        registry.transfer_patient(ADMIN, "ER-001", "ROME", reason=" ")
    with pytest.raises(InvalidInput, match="known site"):
        registry.transfer_patient(ADMIN, "ER-001", "MARS", reason="referral")
    assert _snapshot(registry) == before
    course = registry.load_course(ADMIN, "ER-001")
    assert registry.transfer_patient(ADMIN, "ER-001", "ROME", reason="referral") == "ERLANGEN"
    moved = registry.load_course(registry.actor_for("dana"), "ER-001")
    assert moved.patient.site == "ROME" and moved.labs == course.labs
    entry = registry.audit_trail(ADMIN, study_id="ER-001", limit=1)[0]
    assert (entry["action"], entry["field"]) == ("update", "site")
    assert (entry["old_value"], entry["new_value"]) == ('"ERLANGEN"', '"ROME"')
    assert entry["reason"] == "patient transfer: referral"


def test_every_bulk_audit_row_names_exactly_its_record(registry: Registry, tmp_path: Path) -> None:
    """Item 9: set-based audit keys were ``(study_id || '/') + date`` — numbers on SQLite."""
    # import into a fresh registry so that every row goes through the set-based bulk audit
    folder = tmp_path / "export"
    export_csv(registry, ADMIN, folder)
    fresh_url = str(tmp_path / "fresh.db")
    with Registry(fresh_url, upgrade=True) as fresh:
        import_csv(fresh, ADMIN, folder, reason="bulk")
        _check_audit_keys(fresh)
    _check_audit_keys(registry)


def _check_audit_keys(reg: Registry) -> None:
    course = reg.load_course(ADMIN, "RM-001")
    trail = reg.audit_trail(ADMIN, study_id="RM-001", limit=10_000)
    labs = {e["record_key"] for e in trail if e["table_name"] == "labs"}
    expected = {f"RM-001/{lab.date.isoformat()}/{lab.analyte}" for lab in course.labs}
    assert labs == expected
    daily = [e["record_key"] for e in trail if e["table_name"] == "daily_assessments"]
    assert sorted(daily) == sorted(f"RM-001/{d.date.isoformat()}" for d in course.daily_assessments)
    # reading the audit back for one given record finds exactly that record's insert
    lab = course.labs[0]
    key = f"RM-001/{lab.date.isoformat()}/{lab.analyte}"
    rows = [e for e in trail if e["record_key"] == key]
    assert len(rows) == 1 and rows[0]["action"] == "insert"


def test_bulk_import_audit_keys_on_this_database(db_url: str, tmp_path: Path) -> None:
    """The same check through the bulk path on each database (SQLite and PostgreSQL)."""
    with Registry(str(tmp_path / "src.db"), upgrade=True) as src:
        src.add_site(ADMIN, "ROME", "Bambino Gesù")
        src.save_course(ADMIN, small_course("RM-001"), reason="entry")
        export_csv(src, ADMIN, tmp_path / "export")
    with Registry(db_url, upgrade=True) as reg:
        import_csv(reg, ADMIN, tmp_path / "export", reason="bulk")
        _check_audit_keys(reg)
    shutil.rmtree(tmp_path / "export")
