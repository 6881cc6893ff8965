"""Opening a registry database: SQLite file by default, PostgreSQL by URL, same code.

``--db`` takes a path (``immunoreset.db``) or a SQLAlchemy URL
(``postgresql+psycopg://user@host/db``); without it, ``IMMUNORESET_DB_URL`` or
``immunoreset.db`` in the current folder. The schema is created and upgraded by Alembic.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect

__all__ = ["DEFAULT_DB", "make_engine", "resolve_url", "upgrade"]

DEFAULT_DB = "immunoreset.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def resolve_url(db: str | os.PathLike[str] | None = None) -> str:
    """Turn a ``--db`` value (path or URL) into a SQLAlchemy URL."""
    value = str(db) if db is not None else os.environ.get("IMMUNORESET_DB_URL") or DEFAULT_DB
    if "://" in value:
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def make_engine(db: str | os.PathLike[str] | None = None, *, migrate: bool = True) -> Engine:
    """Create an engine for ``db`` and bring its schema to the newest migration."""
    url = resolve_url(db)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-200000")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if migrate:
        upgrade(engine)
    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (idempotent)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == script.get_current_head() and revision == "head":
        return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()
