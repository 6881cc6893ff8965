"""toxicity and follow-up records (issue #12): fever-masking drugs on daily assessments,
infections and long-term follow-up visits

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


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_reason", sa.Text(), nullable=True),
    ]


def _ids() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("daily_assessments", schema=None) as batch_op:
        for name in _MASKING:  # existing rows: the drug was not recorded as given
            batch_op.add_column(
                sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
            )
    op.create_table(
        "followup_visits",
        *_ids(),
        sa.Column("visit", sa.String(length=200), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_followup_visits_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_visits")),
        sa.UniqueConstraint("patient_id", "visit", name="uq_followup_visits_key"),
    )
    op.create_table(
        "infections",
        *_ids(),
        sa.Column("onset", sa.Date(), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("organism_class", sa.String(length=200), nullable=False),
        sa.Column("ctcae_grade", sa.Integer(), nullable=False),
        sa.Column("organism", sa.String(length=200), nullable=True),
        sa.Column("bmtctn_severity", sa.String(length=200), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_infections_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infections")),
        sa.UniqueConstraint(
            "patient_id", "onset", "site", "organism_class", name="uq_infections_key"
        ),
    )


def downgrade() -> None:
    op.drop_table("infections")
    op.drop_table("followup_visits")
    with op.batch_alter_table("daily_assessments", schema=None) as batch_op:
        for name in reversed(_MASKING):
            batch_op.drop_column(name)
