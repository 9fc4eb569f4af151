"""supplier_gateway: the outbox NOTIFY trigger (coc_shared.tables.outbox_notify_ddl)

Revision ID: supplier_gateway_0002
Revises: supplier_gateway_0001
"""

from alembic import op

from coc_shared.tables import create_outbox_notify_trigger

revision = "supplier_gateway_0002"
down_revision = "supplier_gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_notify_trigger(op.get_bind(), "supplier_gateway")


def downgrade() -> None:
    pass
