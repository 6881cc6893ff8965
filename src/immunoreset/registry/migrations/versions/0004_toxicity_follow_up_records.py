"""toxicity and follow-up records: fever-masking drugs on daily assessments (issue #12)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MASKING = ("anakinra", "siltuximab", "other_anticytokine", "antipyretic")


def upgrade() -> None:
    with op.batch_alter_table("daily_assessments", schema=None) as batch_op:
        for name in _MASKING:  # existing rows: the drug was not recorded as given
            batch_op.add_column(
                sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    with op.batch_alter_table("daily_assessments", schema=None) as batch_op:
        for name in reversed(_MASKING):
            batch_op.drop_column(name)
