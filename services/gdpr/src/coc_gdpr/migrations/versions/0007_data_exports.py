"""gdpr: exports of a subject's personal data (requests, contributions, downloads)

Revision ID: gdpr_0007
Revises: gdpr_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "gdpr_0007"
down_revision = "gdpr_0006"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"


def _id():
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def upgrade() -> None:
    op.create_table(
        "data_exports",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(200)),
        sa.Column("order_id", sa.String(200)),
        sa.Column("order_ids", sa.JSON, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("first_name", sa.String(200)),
        sa.Column("ready_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("token_sha256", sa.String(64)),
        sa.Column("document", sa.LargeBinary),
        sa.Column("categories", sa.JSON),
        schema=SCHEMA,
    )
    op.create_index("ix_data_exports_subject", "data_exports", ["subject"], schema=SCHEMA)
    op.create_index("ix_data_exports_status", "data_exports", ["status"], schema=SCHEMA)
    op.create_table(
        "export_contributions",
        _id(),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("data", sa.JSON),
        sa.Column("contributed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "request_id", "service", name="uq_export_contributions_request_service"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "export_downloads",
        _id(),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("part", sa.String(20), nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_export_downloads_request_id", "export_downloads", ["request_id"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("export_downloads", schema=SCHEMA)
    op.drop_table("export_contributions", schema=SCHEMA)
    op.drop_table("data_exports", schema=SCHEMA)
