"""gdpr: the deactivation saga (the summary's address on a request until it is sent, its
completion; each service's erasure report)

Revision ID: gdpr_0004
Revises: gdpr_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "gdpr_0004"
down_revision = "gdpr_0003"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"


def upgrade() -> None:
    for column in (
        sa.Column("email", sa.String(320)),
        sa.Column("first_name", sa.String(200)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    ):
        op.add_column("deactivation_requests", column, schema=SCHEMA)
    op.create_index(
        "ix_deactivation_requests_status", "deactivation_requests", ["status"], schema=SCHEMA
    )
    op.create_table(
        "erasure_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("erased", sa.JSON, nullable=False),
        sa.Column("retained", sa.JSON, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", "service", name="uq_erasure_reports_request_service"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("erasure_reports", schema=SCHEMA)
    op.drop_index("ix_deactivation_requests_status", "deactivation_requests", schema=SCHEMA)
    for name in ("completed_at", "first_name", "email"):
        op.drop_column("deactivation_requests", name, schema=SCHEMA)
