"""Opening and migrating a registry: atomic schema changes under SIGKILL, no implicit migration.

Every migration (and the whole chain from an empty file, and ``db upgrade`` of a populated
registry from 0001) is killed after each of its SQL statements in turn; after every kill the
registry must be at the old or the new revision with exactly that revision's schema, keep its
rows, and upgrade and accept writes afterwards.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from immunoreset.registry import Registry, system_actor
from immunoreset.registry.db import (
    SchemaError,
    _config,
    check_schema,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from immunoreset.registry.schema import metadata
from tests.factories import small_course
from tests.registry.killpoints import sweep

ADMIN = system_actor("tester")
REVISIONS = [
    r.revision for r in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))
]


def _shape(engine: sa.Engine) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Tables -> (columns, indexes): what a revision's schema looks like."""
    insp = sa.inspect(engine)
    out = {}
    for t in insp.get_table_names():
        cols = tuple(sorted(c["name"] for c in insp.get_columns(t)))
        idx = tuple(sorted(str(i["name"]) for i in insp.get_indexes(t)))
        out[t] = (cols, idx)
    return out


def _populate(engine: sa.Engine) -> None:
    """Rows present since 0001: a site, a user and an audit entry."""
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (code, name) VALUES ('KEEP', 'Kept site')"))
        conn.execute(
            sa.text(
                "INSERT INTO users (username, role, active, failed_logins, created_at) "
                "VALUES ('keeper', 'admin', true, 0, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (ts, username, action, table_name, record_key) "
                "VALUES (:now, 'keeper', 'insert', 'sites', 'KEEP')"
            ),
            {"now": now},
        )


class _Databases:
    """Fresh registries at a given revision, copied from a template (SQLite or PostgreSQL)."""

    def __init__(self, kind: str, tmp: Path, server: str | None) -> None:
        self.kind, self.tmp, self.server = kind, tmp, server
        self.templates: dict[tuple[str | None, bool], str] = {}
        self.shapes: dict[str | None, dict] = {None: {}}

    def _new_url(self, template: str | None = None) -> str:
        name = "k_" + uuid.uuid4().hex[:12]
        if self.kind == "sqlite":
            path = self.tmp / f"{name}.db"
            if template is not None and Path(template).exists():
                shutil.copy(template, path)
            return str(path)
        admin = sa.create_engine(f"{self.server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            tpl = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{tpl}'))
        admin.dispose()
        return f"{self.server}/{name}"

    def at(self, revision: str | None, populated: bool) -> Callable[[], str]:
        key = (revision, populated)
        if key not in self.templates:
            url = self._new_url()
            engine = make_engine(url, migrate=False)
            if revision is not None:
                upgrade(engine, revision)
                self.shapes[revision] = _shape(engine)
                if populated:
                    _populate(engine)
            engine.dispose()
            self.templates[key] = url
        return lambda: self._new_url(self.templates[key])

    def shape(self, revision: str) -> dict:
        if revision not in self.shapes:
            url = self._new_url()
            engine = make_engine(url, migrate=False)
            upgrade(engine, revision)
            self.shapes[revision] = _shape(engine)
            engine.dispose()
        return self.shapes[revision]


def _checker(dbs: _Databases, old: str | None, new: str, populated: bool):  # type: ignore[no-untyped-def]
    expected = {old: dbs.shape(old) if old else {}, new: dbs.shape(new)}

    def check(url: str) -> str | None:
        engine = make_engine(url, migrate=False)
        try:
            rev = current_revision(engine)
            if rev not in expected:
                return f"at revision {rev}, neither {old} nor {new}"
            if _shape(engine) != expected[rev]:
                return f"at revision {rev} with a different schema"
            if populated:
                with engine.connect() as conn:
                    n = conn.execute(sa.text("SELECT count(*) FROM sites WHERE code='KEEP'"))
                    if n.scalar_one() != 1:
                        return "a stored row was lost"
            reg = Registry(engine=engine, upgrade=True)  # `db upgrade` after the crash
            reg.add_site(ADMIN, "ROME", "Rome")
            if reg.list_sites()[-1] != ("ROME", "Rome"):
                return "a write after the upgrade was lost"
            return None
        except Exception as err:  # the registry is unusable: report, do not raise
            return f"unusable: {type(err).__name__}: {err}"
        finally:
            engine.dispose()

    return check


def _sweeps(dbs: _Databases, *, per_migration: bool = True) -> list:
    out = []
    previous: list[str | None] = [None, *REVISIONS[:-1]]
    for old, new in zip(previous, REVISIONS, strict=True):
        if not per_migration:
            break
        for populated in (False, True) if old is not None else (False,):
            out.append(
                sweep(
                    f"{old or 'empty'} → {new}{' (populated)' if populated else ''}",
                    dbs.at(old, populated),
                    lambda engine, new=new: upgrade(engine, new),
                    _checker(dbs, old, new, populated),
                )
            )
    head = head_revision()
    out.append(
        sweep(
            f"db upgrade: 0001 (populated) → {head}",
            dbs.at("0001", True),
            upgrade,
            _checker(dbs, "0001", head, True),
        )
    )
    return out


def _assert_all_survived(results: list) -> None:
    for r in results:
        print(f"{r.name}: {r.survived}/{r.tried} kill points survived")
    failed = [f"{r.name}: {f}" for r in results for f in r.failures]
    assert not failed, "\n".join(failed[:20])
    assert all(r.tried >= 2 for r in results)


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch folder in memory when there is one: SIGKILL keeps the OS cache, so fsync
    adds nothing to this probe but minutes on a busy disk."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="immunoreset-kill-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_every_migration_survives_sigkill_after_every_statement_sqlite(fast_tmp: Path) -> None:
    dbs = _Databases("sqlite", fast_tmp, None)
    _assert_all_survived(_sweeps(dbs))
    # and the registry the kills ran on is then fully current and writable
    url = dbs.at("0001", True)()
    with Registry(url, upgrade=True) as reg:
        with reg.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_course(ADMIN, small_course(), reason="after the sweep")


@pytest.mark.postgres
def test_every_migration_survives_sigkill_after_every_statement_postgres(
    tmp_path: Path, postgres_server: str
) -> None:
    # PostgreSQL's DDL is transactional by itself; one sweep of the whole `db upgrade` of a
    # populated registry keeps the suite fast (each kill point needs a new database)
    _assert_all_survived(
        _sweeps(_Databases("postgres", tmp_path, postgres_server), per_migration=False)
    )


def test_opening_never_migrates(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = make_engine(path, migrate=False)
    upgrade(engine, "0001")
    with pytest.raises(SchemaError) as info:
        check_schema(engine)
    assert "run `immunoreset db upgrade" in str(info.value)
    assert current_revision(engine) == "0001"
    with pytest.raises(SchemaError, match="immunoreset db upgrade"):
        Registry(engine=engine, upgrade=False)
    assert current_revision(engine) == "0001"
    upgrade(engine)
    check_schema(engine)
    engine.dispose()


def test_a_new_file_is_not_created_by_opening(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "new.db", migrate=False)
    with pytest.raises(SchemaError, match=r"no registry at .*db upgrade"):
        check_schema(engine)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


def test_sqlite_is_durable_and_transactional(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "r.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
        raise RuntimeError("roll back the DDL")
    assert "scratch" not in sa.inspect(engine).get_table_names()
    engine.dispose()
