"""orders: each order's VAT regime (standard, or reverse_charge for an EU business whose VAT
number VIES confirmed) and VIES's answer at order time; orders placed before are standard

Revision ID: orders_0008
Revises: orders_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0008"
down_revision = "orders_0007"
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("vat_regime", sa.String(20), nullable=False, server_default="standard"),
        schema=SCHEMA,
    )
    op.add_column("orders", sa.Column("vat_check", sa.String(20), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("orders", "vat_check", schema=SCHEMA)
    op.drop_column("orders", "vat_regime", schema=SCHEMA)
