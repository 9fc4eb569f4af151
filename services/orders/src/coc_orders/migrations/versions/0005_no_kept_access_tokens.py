"""orders: Idempotency-Key records keep no access token (a retry no longer gets a guest's token
back); a guest's records are scoped by the body's SHA-256, so those of the old shared "guest"
scope, and the encrypted tokens kept so far, are deleted

Revision ID: orders_0005
Revises: orders_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0005"
down_revision = "orders_0004"
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    records = sa.table("idempotency_keys", sa.column("scope"), sa.column("secret"), schema=SCHEMA)
    op.execute(sa.delete(records).where(records.c.scope == "guest"))
    op.execute(sa.update(records).where(records.c.secret.is_not(None)).values(secret=None))


def downgrade() -> None:
    """Nothing to restore: the tokens are gone for good."""
