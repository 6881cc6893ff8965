"""Opening a registry database: SQLite file by default, PostgreSQL by URL, same code.

``--db`` takes a path (``immunoreset.db``) or a SQLAlchemy URL
(``postgresql+psycopg://user@host/db``); without it, ``IMMUNORESET_DB_URL`` or
``immunoreset.db`` in the current folder. The schema is created and upgraded by Alembic, and
only on request (:func:`upgrade`, i.e. ``immunoreset db upgrade``): opening a registry never
changes its schema; :func:`check_schema` says what to run when it is not current.

SQLite durability and atomicity
-------------------------------
* Python's ``sqlite3`` driver commits on its own before DDL, so a crash in the middle of a
  migration left half-built schemas. Here the driver's own transaction handling is switched
  off and SQLAlchemy emits ``BEGIN`` itself (the recipe in SQLAlchemy's pysqlite dialect
  documentation, "Serializable isolation / Savepoints / Transactional DDL"), so every
  migration runs in one real transaction: after a crash the registry is at the old revision
  or the new one, never between.
* Write transactions (:func:`write_transaction`) start with ``BEGIN IMMEDIATE``: the write lock
  is taken before anything is read, so a read-modify-write cannot interleave with another
  writer (the audit trail's old values are always the values replaced).
* ``journal_mode=WAL`` with ``synchronous=FULL``: a transaction acknowledged as committed
  survives a power loss (``NORMAL`` may lose the last transactions in WAL mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection

from immunoreset.errors import ImmunoresetError

__all__ = [
    "DEFAULT_DB",
    "SchemaError",
    "check_schema",
    "current_revision",
    "head_revision",
    "make_engine",
    "resolve_url",
    "upgrade",
    "write_transaction",
]

DEFAULT_DB = "immunoreset.db"
MIGRATIONS = Path(__file__).with_name("migrations")

#: Execution option marking a connection whose transactions write (``BEGIN IMMEDIATE``).
_WRITE = "immunoreset_write"


class SchemaError(ImmunoresetError):
    """The registry's schema is missing or older (or newer) than this version of the code."""


def resolve_url(db: str | os.PathLike[str] | None = None) -> str:
    """Turn a ``--db`` value (path or URL) into a SQLAlchemy URL."""
    value = str(db) if db is not None else os.environ.get("IMMUNORESET_DB_URL") or DEFAULT_DB
    if "://" in value:
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def display_url(url: str) -> str:
    """The URL without user and password (for messages)."""
    return url.split("@")[-1] if "@" in url else url.removeprefix("sqlite:///")


def make_engine(db: str | os.PathLike[str] | None = None, *, migrate: bool = True) -> Engine:
    """Create an engine for ``db``; with ``migrate`` bring its schema to the newest migration."""
    url = resolve_url(db)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # SQLAlchemy, not the driver, begins transactions (transactional DDL)
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA cache_size=-200000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get(_WRITE)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            hide_parameters=True,  # never write clinical values into logs or error messages
        )
    from immunoreset.registry import audit

    audit.install(engine)
    if migrate:
        upgrade(engine)
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: on SQLite it holds the write lock from its first statement.

    Before it commits, the chain-of-identity, release and plausibility rules
    (:func:`.rules.enforce`) check every patient the transaction wrote; a refusal rolls it back.
    """
    from immunoreset.registry import rules

    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        try:
            with conn.begin():
                yield conn
                rules.enforce(conn)
        finally:
            rules.clear(conn)


def _config():  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest migration this code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The registry's schema revision (None: no registry schema yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaError` (naming the command to run) unless the schema is current."""
    from alembic.script import ScriptDirectory

    where = display_url(str(engine.url))
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaError(
            f"no registry at {where}: create it with `immunoreset db upgrade --db {where}`"
        )
    known = {r.revision for r in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current not in known:
        raise SchemaError(
            f"registry {where} is at schema {current}, newer than this version of immunoreset "
            f"({head}): upgrade immunoreset"
        )
    raise SchemaError(
        f"registry {where} is at schema {current}, this version needs {head}: "
        f"run `immunoreset db upgrade --db {where}` (take a backup first: "
        "`immunoreset db backup FILE`)"
    )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` in one transaction (idempotent)."""
    from alembic import command

    if revision == "head" and current_revision(engine) == head_revision():
        return
    cfg = _config()
    with write_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()
