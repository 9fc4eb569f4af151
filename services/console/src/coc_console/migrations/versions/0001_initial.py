"""console: staff accounts, sessions, audit log (and the runtime's outbox and inbox, unused)

Revision ID: console_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from coc_shared.tables import create_messaging_tables

revision = "console_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "console"
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # the shared runtime expects them; the console emits and consumes nothing
    create_messaging_tables(op.get_bind(), SCHEMA)
    op.create_table(
        "staff_accounts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=False),
        sa.Column("last_totp_step", sa.BigInteger),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "staff_id",
            _ID,
            sa.ForeignKey(f"{SCHEMA}.staff_accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("staff_name", sa.String(100), nullable=False),
        sa.Column("staff_role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", sa.JSON),
        schema=SCHEMA,
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log", schema=SCHEMA)
    op.drop_table("audit_log", schema=SCHEMA)
    op.drop_table("sessions", schema=SCHEMA)
    op.drop_table("staff_accounts", schema=SCHEMA)
    op.drop_table("inbox", schema=SCHEMA)
    op.drop_table("outbox", schema=SCHEMA)
