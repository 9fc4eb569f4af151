"""gdpr: the outbox NOTIFY trigger (coc_shared.tables.outbox_notify_ddl)

Revision ID: gdpr_0002
Revises: gdpr_0001
"""

from alembic import op

from coc_shared.tables import create_outbox_notify_trigger

revision = "gdpr_0002"
down_revision = "gdpr_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_notify_trigger(op.get_bind(), "gdpr")


def downgrade() -> None:
    pass
