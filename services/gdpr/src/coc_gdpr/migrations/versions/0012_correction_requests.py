"""gdpr: requests to correct personal data opened by staff (the text, the one-month deadline,
who did it and what was changed); how staff verified the person, kept in gdpr's own request rows
(deactivation, export) rather than in the support actions log

Revision ID: gdpr_0012
Revises: gdpr_0011
"""

import sqlalchemy as sa
from alembic import op

revision = "gdpr_0012"
down_revision = "gdpr_0011"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"


def upgrade() -> None:
    op.create_table(
        "correction_requests",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(200)),
        sa.Column("order_id", sa.String(200)),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("verified_by", sa.String(200), nullable=False),
        sa.Column("verification", sa.Text, nullable=False),
        sa.Column("correction", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("opened_by", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("done_by", sa.String(200)),
        sa.Column("changed", sa.Text),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_correction_requests_subject", "correction_requests", ["subject"], schema=SCHEMA
    )
    op.create_index(
        "ix_correction_requests_status_due_by",
        "correction_requests",
        ["status", "due_by"],
        schema=SCHEMA,
    )
    for table in ("deactivation_requests", "data_exports"):
        op.add_column(table, sa.Column("verification", sa.Text), schema=SCHEMA)


def downgrade() -> None:
    for table in ("data_exports", "deactivation_requests"):
        op.drop_column(table, "verification", schema=SCHEMA)
    op.drop_table("correction_requests", schema=SCHEMA)
