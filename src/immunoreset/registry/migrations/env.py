"""Alembic environment: runs on the connection handed in by ``registry.db.upgrade``."""

from alembic import context

from immunoreset.registry.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through db.upgrade
    raise RuntimeError("run migrations through immunoreset.registry.db.upgrade")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
