"""payments: invoices_to_issue — invoices numbered in the consumer's transaction (payment.confirmed)
and not rendered yet; the worker's ``invoices`` loop renders them in number order, writes them to
billing_documents and deletes their row, in one transaction per batch

Revision ID: payments_0007
Revises: payments_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0007"
down_revision = "payments_0006"
branch_labels = None
depends_on = None

SCHEMA = "payments"


def upgrade() -> None:
    op.create_table(
        "invoices_to_issue",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("number", sa.String(30), nullable=False, unique=True),
        sa.Column("order_id", sa.String(200), nullable=False, unique=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("correlation_id", sa.String(200), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("invoices_to_issue", schema=SCHEMA)
