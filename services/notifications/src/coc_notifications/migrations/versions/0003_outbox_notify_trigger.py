"""notifications: the outbox NOTIFY trigger (coc_shared.tables.outbox_notify_ddl)

Revision ID: notifications_0003
Revises: notifications_0002
"""

from alembic import op

from coc_shared.tables import create_outbox_notify_trigger

revision = "notifications_0003"
down_revision = "notifications_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_notify_trigger(op.get_bind(), "notifications")


def downgrade() -> None:
    pass
