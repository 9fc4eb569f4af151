"""gdpr: purge runs of the retention schedule and each service's report

Revision ID: gdpr_0005
Revises: gdpr_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "gdpr_0005"
down_revision = "gdpr_0004"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"


def upgrade() -> None:
    op.create_table(
        "purge_runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cutoffs", sa.JSON, nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index("ix_purge_runs_started_at", "purge_runs", ["started_at"], schema=SCHEMA)
    op.create_table(
        "purge_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("purged", sa.JSON, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "service", name="uq_purge_reports_run_service"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("purge_reports", schema=SCHEMA)
    op.drop_index("ix_purge_runs_started_at", "purge_runs", schema=SCHEMA)
    op.drop_table("purge_runs", schema=SCHEMA)
