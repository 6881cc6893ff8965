"""A least-privilege PostgreSQL role for the application, separate from the migration owner.

The owner of the schema (who runs ``immunoreset db upgrade``) keeps DDL; the application role
created by :func:`create_app_role` (``immunoreset db roles``) may only read and write rows:

* ``SELECT, INSERT, UPDATE`` on the registry tables — no ``DELETE`` or ``TRUNCATE`` (records
  are soft-deleted), no ``CREATE`` on the schema, no ownership, so no DDL;
* on ``audit_log`` only ``SELECT, INSERT`` plus ``UPDATE`` of the two seal columns
  (``chain_seq``, ``row_hash``), which the append-only trigger allows once per new row;
* ``alembic_version`` read-only; sequences ``USAGE``.

Run the web app and the CLI with ``IMMUNORESET_DB_URL`` naming this role; run
``db upgrade`` as the owner, then ``db roles`` again to grant on tables a migration added.
"""

from __future__ import annotations

import re

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from immunoreset.errors import InvalidInput
from immunoreset.registry.db import make_engine, resolve_url

__all__ = ["create_app_role"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def create_app_role(db: str | None, role: str, password: str | None) -> list[str]:
    """Create (or refresh the grants of) application role ``role``; returns the statements run."""
    url = resolve_url(db)
    if not url.startswith("postgresql"):
        raise InvalidInput("--db", url, "a PostgreSQL registry (SQLite has no roles)")
    if not _NAME.match(role):
        raise InvalidInput("--role", role, "a lower-case SQL name such as immunoreset_app")
    database = make_url(url).database
    engine = make_engine(url, migrate=False)
    try:
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        if "audit_log" not in tables:
            raise InvalidInput("--db", database, "a registry (run `immunoreset db upgrade` first)")
        statements: list[tuple[str, dict[str, str]]] = []
        with engine.begin() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
            ).first()
            if not exists:
                statements.append((f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB '
                                   "NOCREATEROLE NOINHERIT", {}))  # fmt: skip
            if password:
                statements.append((f"ALTER ROLE \"{role}\" PASSWORD '{_quote(password)}'", {}))
            statements += [
                (f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO "{role}"', {}),
                (f'GRANT USAGE ON SCHEMA public TO "{role}"', {}),
                (f'REVOKE CREATE ON SCHEMA public FROM "{role}"', {}),
                (f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"', {}),
                (f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"', {}),
                (f'GRANT SELECT ON alembic_version TO "{role}"', {}),
            ]
            for t in sorted(tables):
                if t == "audit_log":
                    statements += [
                        (f'GRANT SELECT, INSERT ON audit_log TO "{role}"', {}),
                        (f'GRANT UPDATE (chain_seq, row_hash) ON audit_log TO "{role}"', {}),
                    ]
                else:
                    statements.append((f'GRANT SELECT, INSERT, UPDATE ON "{t}" TO "{role}"', {}))
            for sql, _ in statements:
                conn.exec_driver_sql(sql)
        return [s if "PASSWORD" not in s else s.split(" PASSWORD")[0] + " PASSWORD …"
                for s, _ in statements]  # fmt: skip
    finally:
        engine.dispose()


def _quote(value: str) -> str:
    return value.replace("'", "''")
