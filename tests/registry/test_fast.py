"""Bulk paths: audit rows of a bulk insert belong to exactly the rows that insert wrote."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from immunoreset.registry import Registry, fast, system_actor
from immunoreset.registry import schema as s
from tests.factories import small_course

ADMIN = system_actor("tester")


@pytest.mark.postgres
def test_concurrent_bulk_inserts_with_equal_stamps_audit_only_their_rows(postgres_url: str) -> None:
    """Two sessions insert with the very same timestamp; each audits only its own rows."""
    with Registry(postgres_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_courses(ADMIN, [small_course("RM-001"), small_course("RM-002")], reason="x")
        ent = s.ENTITIES["anthropometrics"]
        with reg.engine.connect() as conn:
            pids = dict(conn.execute(select(s.patients.c.study_id, s.patients.c.id)).all())
        stamp = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
        cols = ["patient_id", *ent.columns, "created_at", "updated_at"]

        def rows(pid: int, day: int) -> list[tuple]:
            return [(pid, dt.date(2030, 1, day), 30.0, 140.0, stamp, stamp)]

        with reg.engine.begin() as first:
            before = fast.max_id(first, ent.table)
            mine = fast.insert_rows(first, ent.table, cols, rows(pids["RM-001"], 2))
            with reg.engine.begin() as second:  # commits while `first` is still open
                fast.insert_rows(second, ent.table, cols, rows(pids["RM-002"], 3))
            fast.audit_inserted(
                first, ent, after_id=before, stamp=stamp, username="a", reason="r", ids=mine
            )
        with reg.engine.connect() as conn:
            audited = conn.execute(
                select(func.count()).select_from(s.audit_log).where(s.audit_log.c.reason == "r")
            ).scalar_one()
        assert mine is not None and len(mine) == 1
        assert audited == 1


def test_sqlite_insert_returns_no_ids(sqlite_url: str) -> None:
    with Registry(sqlite_url, upgrade=True) as reg, reg.engine.begin() as conn:
        assert fast.insert_rows(conn, s.sites, ["code", "name"], [("X1", "x")]) is None
