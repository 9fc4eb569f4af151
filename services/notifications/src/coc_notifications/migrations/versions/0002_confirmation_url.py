"""notifications: the confirmation link of account.email_change_requested (personal data)

Revision ID: notifications_0002
Revises: notifications_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0002"
down_revision = "notifications_0001"
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=SCHEMA) as batch:
        batch.add_column(sa.Column("confirmation_url", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=SCHEMA) as batch:
        batch.drop_column("confirmation_url")
