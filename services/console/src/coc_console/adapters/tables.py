"""Tables of the ``console`` schema (SQLAlchemy Core; portable to PostgreSQL and SQLite): staff
accounts, their sessions and the console's audit log. Nothing of the services is stored here."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

SCHEMA = "console"
metadata = MetaData(schema=SCHEMA)

_ID = BigInteger().with_variant(Integer, "sqlite")

staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", String(64), nullable=False),
    # the last TOTP time step accepted: a code is good for one log-in only
    Column("last_totp_step", BigInteger),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    # SHA-256 of the cookie's value: a leaked table opens no session
    Column("id", String(64), primary_key=True),
    Column("staff_id", _ID, ForeignKey(staff_accounts.c.id, ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("staff_name", String(100), nullable=False),
    Column("staff_role", String(20), nullable=False),
    Column("action", String(40), nullable=False),
    Column("target", String(200), nullable=False),
    Column("reason", Text),
    Column("details", JSON),
    Index("ix_audit_log_at", "at"),
    # a replay run's outcome is recorded once, however many staff read its finished report
    Index(
        "uq_audit_log_replay_outcome",
        "target",
        unique=True,
        postgresql_where=text("action = 'replay_outcome'"),
        sqlite_where=text("action = 'replay_outcome'"),
    ),
)
