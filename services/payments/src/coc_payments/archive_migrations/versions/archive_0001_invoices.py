"""archive: invoices — the invoices and credit notes of erased accounts, kept ten years from the
end of the financial year (Code de commerce L123-22), readable only by the archive's owner

Revision ID: archive_0001
Revises:
Create Date: 2026-12-05
"""

from alembic import op

from coc_payments.adapters.archive_tables import invoices

revision = "archive_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    invoices.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    invoices.drop(op.get_bind())
