"""an electronic signature carried by a CSV import says so

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 18:40:00

``signatures.imported_by`` / ``signatures.imported_at``: NULL for a signature made on this
registry (the signer re-entered their password here); set for one carried by a CSV import
from another registry — the historic signature (signer, meaning, time, content hash) as it was
made there, its hash checked against the imported record, and marked with who imported it and
when, so an import can never pass for a fresh signature (21 CFR Part 11 §11.70).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("signatures", sa.Column("imported_by", sa.String(length=64), nullable=True))
    op.add_column("signatures", sa.Column("imported_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_column("imported_at")
        batch_op.drop_column("imported_by")
