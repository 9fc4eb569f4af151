"""ops schema: parked messages and the support actions log

Revision ID: ops_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

from coc_shared.tables import parked_messages, support_actions

revision = "ops_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    parked_messages.create(bind)
    support_actions.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    support_actions.drop(bind)
    parked_messages.drop(bind)
