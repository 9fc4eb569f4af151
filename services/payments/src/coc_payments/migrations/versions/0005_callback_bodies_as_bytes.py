"""payments: the callbacks' audit bodies as bytes (bytea), the text kept as its UTF-8 bytes

A provider's call is kept as it came: no text column has to take a NUL character or a byte that
is not UTF-8 (PostgreSQL refuses both in text).

Revision ID: payments_0005
Revises: payments_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0005"
down_revision = "payments_0004"
branch_labels = None
depends_on = None

SCHEMA = "payments"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE {SCHEMA}.callbacks "
            "ALTER COLUMN body TYPE bytea USING convert_to(body, 'UTF8')"
        )
        return
    with op.batch_alter_table("callbacks", schema=SCHEMA) as batch:
        batch.alter_column(
            "body", type_=sa.LargeBinary, existing_type=sa.Text, existing_nullable=False
        )
    # SQLite keeps each value's own type: the rows copied are still text until cast.
    op.execute(
        f"UPDATE {SCHEMA}.callbacks SET body = CAST(body AS BLOB) WHERE typeof(body) = 'text'"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE {SCHEMA}.callbacks "
            "ALTER COLUMN body TYPE text USING convert_from(body, 'UTF8')"
        )
        return
    with op.batch_alter_table("callbacks", schema=SCHEMA) as batch:
        batch.alter_column(
            "body", type_=sa.Text, existing_type=sa.LargeBinary, existing_nullable=False
        )
    op.execute(
        f"UPDATE {SCHEMA}.callbacks SET body = CAST(body AS TEXT) WHERE typeof(body) = 'blob'"
    )
