"""The Alembic migrations build exactly the tables the code declares (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from immunoreset.registry.db import make_engine
from immunoreset.registry.schema import metadata


def test_migrations_match_metadata(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
        make_engine(db_url).dispose()  # upgrading an up-to-date registry is a no-op
    finally:
        engine.dispose()
