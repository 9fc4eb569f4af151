"""payments: id_blocks (the callbacks' ids are drawn before their row is written, series
"callback", seeded past the highest id used); the outbox's NOTIFY trigger on existing databases

Revision ID: payments_0004
Revises: payments_0003
"""

import sqlalchemy as sa
from alembic import op

from coc_shared.tables import create_outbox_notify_trigger

revision = "payments_0004"
down_revision = "payments_0003"
branch_labels = None
depends_on = None

SCHEMA = "payments"


def upgrade() -> None:
    bind = op.get_bind()
    create_outbox_notify_trigger(bind, SCHEMA)
    id_blocks = op.create_table(
        "id_blocks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("next_value", sa.BigInteger, nullable=False),
        schema=SCHEMA,
    )
    callbacks = sa.table("callbacks", sa.column("id", sa.BigInteger), schema=SCHEMA)
    highest = bind.execute(sa.select(sa.func.max(callbacks.c.id))).scalar()
    op.bulk_insert(id_blocks, [{"name": "callback", "next_value": (highest or 0) + 1}])


def downgrade() -> None:
    # The trigger stays: databases created since coc_shared's create_messaging_tables have it from
    # payments_0001, and a NOTIFY more only wakes the relay once more.
    op.drop_table("id_blocks", schema=SCHEMA)
