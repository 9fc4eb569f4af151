"""gdpr: marketing_consents (withdrawals of consent to marketing mails, from marketing.unsubscribed)

Revision ID: gdpr_0003
Revises: gdpr_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "gdpr_0003"
down_revision = "gdpr_0002"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"


def upgrade() -> None:
    op.create_table(
        "marketing_consents",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("account_id", sa.String(200)),
        sa.Column("address_sha256", sa.String(64)),
        sa.Column("purpose", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_marketing_consents_account_id", "marketing_consents", ["account_id"], schema=SCHEMA
    )
    op.create_index(
        "ix_marketing_consents_address_sha256",
        "marketing_consents",
        ["address_sha256"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("marketing_consents", schema=SCHEMA)
