"""ops schema: revoked staff tokens (their ids), checked by every service's staff endpoints

Revision ID: ops_0002
Revises: ops_0001
Create Date: 2026-11-29
"""

from alembic import op

from coc_shared.tables import revoked_staff_tokens

revision = "ops_0002"
down_revision = "ops_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    revoked_staff_tokens.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    revoked_staff_tokens.drop(op.get_bind())
