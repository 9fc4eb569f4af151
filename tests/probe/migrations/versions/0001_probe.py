"""probe tables

Revision ID: probe_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from coc_shared.tables import create_messaging_tables

revision = "probe_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op.get_bind(), "probe")
    op.create_table(
        "effects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        schema="probe",
    )
    op.create_table(
        "echoes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("cause", sa.String(36), nullable=False),
        schema="probe",
    )
    op.create_table(
        "attempts",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        schema="probe",
    )
    op.create_table("switches", sa.Column("name", sa.String(50), primary_key=True), schema="probe")


def downgrade() -> None:
    for name in ("switches", "attempts", "echoes", "effects", "inbox", "outbox"):
        op.drop_table(name, schema="probe")
