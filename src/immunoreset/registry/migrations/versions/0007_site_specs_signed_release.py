"""site-owned release specifications; a release decision names its electronic signature

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:50:00

A specification's key ``(spec_id, version)`` is unique per site (``release_specs.site``; NULL
is program-wide) instead of across the program, so two sites may each keep their own
``site-spec-v1``; ``release_decisions.signature_id`` points at the ``signatures`` row of the
qualified person's password-signed release (21 CFR Part 11 §11.70: the signature is linked to
its record).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release_specs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_release_specs_key", type_="unique")
        batch_op.create_unique_constraint(
            "uq_release_specs_site_key", ["site", "spec_id", "version"]
        )
    with op.batch_alter_table("release_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_release_decisions_signature", "signatures", ["signature_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("release_decisions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_release_decisions_signature", type_="foreignkey")
        batch_op.drop_column("signature_id")
    with op.batch_alter_table("release_specs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_release_specs_site_key", type_="unique")
        batch_op.create_unique_constraint("uq_release_specs_key", ["spec_id", "version"])
