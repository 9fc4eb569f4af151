"""orders: each account's last activity (log-in, order, change of the profile) and when its owner
was warned of its deletion for inactivity; existing accounts start from their last change or
their last order, whichever is later

Revision ID: orders_0011
Revises: orders_0010
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0011"
down_revision = "orders_0010"
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    # NOT NULL at once, with a constant default that the backfill below overwrites (SQLite can
    # neither add a NOT NULL column without a default nor change it without rebuilding the
    # table, which would lose its index on lower(email))
    op.add_column(
        "accounts",
        sa.Column(
            "last_activity_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default="1970-01-01 00:00:00+00:00",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "accounts", sa.Column("inactivity_warned_at", sa.DateTime(timezone=True)), schema=SCHEMA
    )
    accounts = sa.table(
        "accounts",
        sa.column("id"),
        sa.column("updated_at"),
        sa.column("last_activity_at"),
        schema=SCHEMA,
    )
    orders = sa.table("orders", sa.column("account_id"), sa.column("placed_at"), schema=SCHEMA)
    last_order = (
        sa.select(sa.func.max(orders.c.placed_at))
        .where(orders.c.account_id == accounts.c.id)
        .scalar_subquery()
    )
    op.execute(sa.update(accounts).values(last_activity_at=accounts.c.updated_at))
    op.execute(
        sa.update(accounts)
        .where(last_order > accounts.c.last_activity_at)
        .values(last_activity_at=last_order)
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("accounts", "last_activity_at", server_default=None, schema=SCHEMA)
    op.create_index("ix_accounts_last_activity_at", "accounts", ["last_activity_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_accounts_last_activity_at", table_name="accounts", schema=SCHEMA)
    for name in ("inactivity_warned_at", "last_activity_at"):
        op.drop_column("accounts", name, schema=SCHEMA)
