"""The audit trail is append-only (triggers) and tamper-evident (hash chain), on both databases;
concurrent writers keep it unbroken."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from immunoreset.registry import Registry, SaveStats, system_actor
from immunoreset.registry.audit import verify
from tests.factories import day, small_course

ADMIN = system_actor("tester")


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_course(ADMIN, small_course(), reason="entry")
        yield reg


def _raw(reg: Registry, sql: str) -> None:
    with reg.engine.begin() as conn:
        conn.exec_driver_sql(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_log SET reason = 'rewritten' WHERE id = 2",
        "UPDATE audit_log SET row_hash = NULL, chain_seq = NULL WHERE id = 2",
        "UPDATE audit_log SET new_value = 'x' WHERE chain_seq IS NOT NULL",
        "DELETE FROM audit_log WHERE id = 2",
        "DELETE FROM audit_log",
    ],
)
def test_update_and_delete_are_refused(registry: Registry, sql: str) -> None:
    before = verify(registry.engine)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        _raw(registry, sql)
    rows = registry.count_rows()["audit_log"]
    assert verify(registry.engine) == before and before.ok and before.rows == rows == 22


@pytest.mark.postgres
def test_truncate_is_refused(postgres_url: str) -> None:
    with Registry(postgres_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            _raw(reg, "TRUNCATE audit_log")


def _drop_triggers(reg: Registry) -> None:
    if reg.engine.dialect.name == "sqlite":
        _raw(reg, "DROP TRIGGER audit_log_append_only_update")
        _raw(reg, "DROP TRIGGER audit_log_append_only_delete")
    else:
        _raw(reg, "DROP TRIGGER audit_log_append_only_rows ON audit_log")


def test_every_write_is_sealed_into_the_chain(registry: Registry) -> None:
    registry.update_record(ADMIN, "RM-001", "labs", (day(2), "anc"), {"value": 9.0}, reason="r")
    registry.delete_record(ADMIN, "RM-001", "labs", (day(2), "anc"), reason="r")
    report = verify(registry.engine)
    assert report.ok, str(report)
    assert report.rows == registry.count_rows()["audit_log"] == 24
    assert "intact" in str(report)


def test_a_changed_row_is_the_first_broken_link(registry: Registry) -> None:
    _drop_triggers(registry)
    _raw(registry, "UPDATE audit_log SET new_value = 'forged' WHERE id = 7")
    report = verify(registry.engine)
    assert not report.ok and report.broken_id == 7 and report.rows == 6
    assert "BROKEN at row id 7" in str(report)


def test_a_removed_row_is_found(registry: Registry) -> None:
    _drop_triggers(registry)
    _raw(registry, "DELETE FROM audit_log WHERE id = 5")
    report = verify(registry.engine)
    assert (report.broken_id, report.broken_seq, report.rows) == (6, 6, 4)
    assert "position 5 is missing" in str(report)


def test_a_removed_tail_cannot_be_rechained_silently(registry: Registry) -> None:
    """Rewriting a row and recomputing only its own hash still breaks the next link."""
    from immunoreset.registry.audit import CONTENT, link_hash

    _drop_triggers(registry)
    with registry.engine.connect() as conn:
        prev = conn.exec_driver_sql("SELECT row_hash FROM audit_log WHERE id = 3").scalar_one()
        row = list(
            conn.exec_driver_sql(f"SELECT {', '.join(CONTENT)} FROM audit_log WHERE id = 4").one()
        )
    row[9] = "forged"
    _raw(
        registry,
        f"UPDATE audit_log SET new_value = 'forged', row_hash = '{link_hash(prev, row)}' "
        "WHERE id = 4",
    )
    assert verify(registry.engine).broken_id == 5


def test_concurrent_updates_keep_every_value_chain_unbroken(registry: Registry) -> None:
    """Two users changing the same value 15 times each: no lost update, every old value is
    the value it replaced, the hash chain holds."""
    key = (day(2), "anc")
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(15):
                registry.update_record(
                    ADMIN, "RM-001", "labs", key, {"value": float(offset + i)}, reason="race"
                )
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(o,)) for o in (1000, 2000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    trail = [
        e
        for e in reversed(registry.audit_trail(ADMIN, study_id="RM-001", limit=1000))
        if e["action"] == "update" and e["record_key"].endswith("/anc")
    ]
    assert len(trail) == 30
    assert trail[0]["old_value"] == "480.0"
    for before, after in itertools.pairwise(trail):
        assert after["old_value"] == before["new_value"]
    final = next(lab for lab in registry.load_course(ADMIN, "RM-001").labs if lab.date == day(2))
    assert repr(final.value) == trail[-1]["new_value"]
    assert verify(registry.engine).ok


def test_two_imports_adding_the_same_new_site(db_url: str) -> None:
    """Both writers bring site ROME: one adds it, the other finds it; no unique-key error."""
    with Registry(db_url, upgrade=True) as reg:
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def worker(sid: str) -> None:
            try:
                barrier.wait()
                with reg.writing() as conn:
                    reg.write_patients(
                        conn,
                        ADMIN,
                        [small_course(sid).patient],
                        [("ROME", "Rome")],
                        "import",
                        SaveStats(),
                    )
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

        threads = [threading.Thread(target=worker, args=(s,)) for s in ("RM-001", "RM-002")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert reg.list_sites() == [("ROME", "Rome")]
        trail = reg.audit_trail(ADMIN, limit=100)
        assert sum(e["table_name"] == "sites" for e in trail) == 1
        assert verify(reg.engine).ok
