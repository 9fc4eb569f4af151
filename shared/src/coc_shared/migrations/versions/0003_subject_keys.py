"""ops schema: the data keys of the events' personal parts (crypto-shredding, ``keystore``)

Revision ID: ops_0003
Revises: ops_0002
Create Date: 2026-12-05
"""

from alembic import op

from coc_shared.tables import subject_keys

revision = "ops_0003"
down_revision = "ops_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    subject_keys.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    subject_keys.drop(op.get_bind())
