"""append-only audit trail with a hash chain

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 13:00:00

Adds ``audit_log.chain_seq`` / ``row_hash`` (see ``registry/audit.py``), seals the rows already
stored into the chain (in id order) and installs triggers that refuse ``DELETE``, ``TRUNCATE``
and every ``UPDATE`` of ``audit_log`` other than sealing an unsealed row.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OTHER = (
    "id",
    "ts",
    "username",
    "action",
    "table_name",
    "record_key",
    "study_id",
    "field",
    "old_value",
    "new_value",
    "reason",
)

SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log "
    "WHEN OLD.chain_seq IS NOT NULL OR OLD.row_hash IS NOT NULL OR NEW.chain_seq IS NULL "
    "OR NEW.row_hash IS NULL OR "
    + " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _OTHER)
    + " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be changed'); END",
    "CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted'); END",
)

POSTGRES_TRIGGERS = (
    """
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.chain_seq IS NULL AND OLD.row_hash IS NULL
           AND NEW.chain_seq IS NOT NULL AND NEW.row_hash IS NOT NULL
           AND ROW("""
    + ", ".join(f"NEW.{c}" for c in _OTHER)
    + ") IS NOT DISTINCT FROM ROW("
    + ", ".join(f"OLD.{c}" for c in _OTHER)
    + """) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    "CREATE TRIGGER audit_log_append_only_rows BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_append_only_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def upgrade() -> None:
    from immunoreset.registry.audit import CONTENT, GENESIS, seal_rows

    op.add_column("audit_log", sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.add_column("audit_log", sa.Column("row_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_chain_seq", "audit_log", ["chain_seq"], unique=True)
    op.create_index(
        "ix_audit_unsealed",
        "audit_log",
        ["id"],
        unique=False,
        sqlite_where=sa.text("chain_seq IS NULL"),
        postgresql_where=sa.text("chain_seq IS NULL"),
    )
    bind = op.get_bind()
    rows = bind.exec_driver_sql(
        f"SELECT {', '.join(CONTENT)} FROM audit_log ORDER BY id"
    ).fetchall()
    sealed = seal_rows(rows, 0, GENESIS)
    if sealed:
        mark = "?" if bind.dialect.name == "sqlite" else "%s"
        bind.exec_driver_sql(
            f"UPDATE audit_log SET chain_seq = {mark}, row_hash = {mark} WHERE id = {mark}",
            sealed,
        )
    for statement in SQLITE_TRIGGERS if bind.dialect.name == "sqlite" else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_append_only_update")
        op.execute("DROP TRIGGER audit_log_append_only_delete")
    else:
        op.execute("DROP TRIGGER audit_log_append_only_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_append_only_rows ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index("ix_audit_unsealed", table_name="audit_log")
    op.drop_index("ix_audit_chain_seq", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_column("row_hash")
        batch_op.drop_column("chain_seq")
