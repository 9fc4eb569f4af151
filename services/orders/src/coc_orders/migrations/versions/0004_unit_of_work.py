"""orders: the unit of work's needs — the outbox NOTIFY trigger on databases made before it; order
numbers drawn from id_blocks (series "order_number", seeded after the highest number given) instead
of the orders.seq sequence; idempotency records keep the order placed, not an HTTP answer

Revision ID: orders_0004
Revises: orders_0003
"""

import sqlalchemy as sa
from alembic import op

from coc_shared.tables import create_outbox_notify_trigger

revision = "orders_0004"
down_revision = "orders_0003"
branch_labels = None
depends_on = None

SCHEMA = "orders"
SERIES = "order_number"


def upgrade() -> None:
    bind = op.get_bind()
    create_outbox_notify_trigger(bind, SCHEMA)
    id_blocks = op.create_table(
        "id_blocks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("next_value", sa.BigInteger, nullable=False),
        schema=SCHEMA,
    )
    orders = sa.table("orders", sa.column("seq"), schema=SCHEMA)
    next_value = bind.execute(
        sa.select(sa.func.coalesce(sa.func.max(orders.c.seq), 0) + 1)
    ).scalar_one()
    op.bulk_insert(id_blocks, [{"name": SERIES, "next_value": next_value}])
    if bind.dialect.name == "postgresql":
        # orders.seq is given by the application now: its serial default and sequence go
        sequence = bind.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{SCHEMA}.orders', 'seq')"
        ).scalar()
        op.alter_column("orders", "seq", server_default=None, schema=SCHEMA)
        if sequence:
            bind.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {sequence}")
    with op.batch_alter_table("idempotency_keys", schema=SCHEMA) as batch:
        batch.drop_column("status_code")
        batch.drop_column("response")


def downgrade() -> None:
    bind = op.get_bind()
    # the records of the last hours are dropped: the old columns (an HTTP answer) cannot be rebuilt
    op.execute(sa.table("idempotency_keys", schema=SCHEMA).delete())
    with op.batch_alter_table("idempotency_keys", schema=SCHEMA) as batch:
        batch.add_column(sa.Column("status_code", sa.Integer, nullable=False))
        batch.add_column(sa.Column("response", sa.JSON, nullable=False))
    if bind.dialect.name == "postgresql":
        blocks = sa.table("id_blocks", sa.column("name"), sa.column("next_value"), schema=SCHEMA)
        start = (
            bind.execute(sa.select(blocks.c.next_value).where(blocks.c.name == SERIES)).scalar()
            or 1
        )
        bind.exec_driver_sql(
            f"CREATE SEQUENCE {SCHEMA}.orders_seq_seq START {int(start)} OWNED BY "
            f"{SCHEMA}.orders.seq"
        )
        op.alter_column(
            "orders",
            "seq",
            server_default=sa.text(f"nextval('{SCHEMA}.orders_seq_seq'::regclass)"),
            schema=SCHEMA,
        )
    op.drop_table("id_blocks", schema=SCHEMA)
