"""Backup while running → restore into a new registry → identical, audit trail included;
the least-privilege PostgreSQL role."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from immunoreset.errors import InvalidInput
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.backup import backup, compare, restore
from tests.factories import day, small_course

ADMIN = system_actor("tester")


def _fresh(db_url: str, tmp_path: Path) -> str:
    if db_url.startswith("postgresql"):
        server, _ = db_url.rsplit("/", 1)
        name = "r_" + uuid.uuid4().hex[:10]
        admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return f"{server}/{name}"
    return str(tmp_path / "restored.db")


def test_backup_restore_verify(db_url: str, tmp_path: Path) -> None:
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_course(ADMIN, small_course(), reason="entry")
        reg.delete_record(ADMIN, "RM-001", "labs", (day(2), "anc"), reason="wrong patient")
        file = backup(db_url, tmp_path / "registry.backup")
        with pytest.raises(InvalidInput, match="does not exist yet"):
            backup(db_url, file)
        target = _fresh(db_url, tmp_path)
        restore(file, target)
        with pytest.raises(InvalidInput, match="restore never"):
            restore(file, target)
        result = compare(target, file)
        assert result.identical, result
        assert result.tables["audit_log"][0][0] == 23
        assert compare(db_url, file).identical
        # a change after the backup is seen
        reg.update_record(
            ADMIN, "RM-001", "labs", (day(7), "cd19_b_cells"), {"value": 1.0}, reason="fix"
        )
        later = compare(db_url, file)
        assert not later.identical and set(later.differing) == {"audit_log", "labs"}
    with Registry(target) as restored:  # a usable, current registry
        assert restored.load_course(ADMIN, "RM-001").labs == tuple(
            lab for lab in small_course().labs if (lab.date, lab.analyte) != (day(2), "anc")
        )


@pytest.mark.postgres
def test_app_role_has_no_ddl_and_cannot_touch_the_audit(postgres_url: str) -> None:
    from immunoreset.registry.dbroles import create_app_role

    with Registry(postgres_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
    create_app_role(postgres_url, "app_t", "a long secret")
    app_url = postgres_url.replace("postgres@", "app_t:a long secret@".replace(" ", "%20"))
    with Registry(app_url) as app:
        app.save_course(ADMIN, small_course(), reason="entry as the app role")
        app.update_record(ADMIN, "RM-001", "labs", (day(2), "anc"), {"value": 3.0}, reason="x")
        for sql in (
            "CREATE TABLE evil (x int)",
            "DROP TABLE labs",
            "DELETE FROM labs",
            "DELETE FROM audit_log",
            "UPDATE audit_log SET reason = 'x'",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        ):
            with pytest.raises(sa.exc.ProgrammingError), app.engine.begin() as conn:
                conn.exec_driver_sql(sql)
        from immunoreset.registry.audit import verify

        assert verify(app.engine).ok


@pytest.mark.parametrize(
    ("column", "before", "after"),
    [
        ("v", 0.1, 0.1 + 2**-56),  # the last bit of a double
        ("s", None, ""),  # NULL is not empty text
        ("s", "a,b", "a','b"),  # a separator inside a cell
        ("d", "2024-01-02 10:00:00+00:00", "2024-01-02 10:00:00.000001+00:00"),
    ],
)
def test_digest_tells_every_value_apart(
    db_url: str, column: str, before: object, after: object
) -> None:
    """The set-based digest (rows rendered by the database) changes with any one value."""
    from immunoreset.registry.backup import digest

    engine = sa.create_engine(sa.make_url(db_url) if "://" in db_url else f"sqlite:///{db_url}")
    stamp = "timestamptz" if engine.dialect.name == "postgresql" else "text"
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE probe (id integer primary key, v double precision, s text, "
                    f"d {stamp})"
                )
            )
            row = {"id": 1, "v": 1.5, "s": "x", "d": "2024-01-01 00:00:00+00:00", column: before}
            conn.execute(sa.text("INSERT INTO probe VALUES (:id, :v, :s, :d)"), row)
        first = digest(engine)["probe"]
        assert digest(engine)["probe"] == first  # deterministic
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE probe SET {column} = :x"), {"x": after})
        assert digest(engine)["probe"] != first
    finally:
        engine.dispose()
