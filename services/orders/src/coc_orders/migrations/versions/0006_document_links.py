"""orders: documents can be erased (erased_at), and every download of a document by a supplier
through a signed link is recorded (document_downloads)

Revision ID: orders_0006
Revises: orders_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0006"
down_revision = "orders_0005"
branch_labels = None
depends_on = None

SCHEMA = "orders"
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.add_column(
        "order_documents",
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "document_downloads",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("supplier", sa.String(64), nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_document_downloads_document_id",
        "document_downloads",
        ["document_id"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("document_downloads", schema=SCHEMA)
    op.drop_column("order_documents", "erased_at", schema=SCHEMA)
