"""Table definitions of the messaging machinery.

``outbox`` and ``inbox`` live in each service's own schema (created by the service's migrations
through ``messaging_tables``); ``parked_messages`` and ``support_actions`` live in the ``ops``
schema, the store behind the support tools (migrated by coc_shared's own alembic scripts).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

OPS_SCHEMA = "ops"


def outbox_table(metadata: MetaData, schema: str) -> Table:
    return Table(
        "outbox",
        metadata,
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("correlation_id", String(200), nullable=False),
        Column("subject", String(200)),
        Column("body", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", DateTime(timezone=True)),
        Column("last_error", Text),
        # the W3C trace context the event was emitted in (``tracing``): the relay publishes it in
        # the message's headers, so that the consumers' spans join the producer's trace
        Column("traceparent", String(55)),
        Index(
            f"ix_{schema}_outbox_unsent",
            "seq",
            postgresql_where="sent_at IS NULL",
            sqlite_where=None,
        ),
        schema=schema,
    )


def inbox_table(metadata: MetaData, schema: str) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("queue", String(200), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False),
        Column("correlation_id", String(200)),  # the order's story the event belongs to
        schema=schema,
    )


def messaging_tables(metadata: MetaData, schema: str) -> tuple[Table, Table]:
    """Add the outbox and inbox tables to a service's metadata (idempotent per metadata)."""
    key_out, key_in = f"{schema}.outbox", f"{schema}.inbox"
    outbox = (
        metadata.tables[key_out] if key_out in metadata.tables else outbox_table(metadata, schema)
    )
    inbox = metadata.tables[key_in] if key_in in metadata.tables else inbox_table(metadata, schema)
    return outbox, inbox


def outbox_notify_ddl(schema: str) -> list[str]:
    """PostgreSQL: a statement-level trigger on the schema's outbox that NOTIFYs its relay once per
    statement that inserted rows (delivered at commit), so no use case has to. Run by each
    service's migration; ``outbox.notify_channel`` names the same channel."""
    function = f'"{schema}".coc_notify_outbox'
    return [
        f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('coc_outbox_' || TG_TABLE_SCHEMA, '');
  RETURN NULL;
END $$""",
        f'DROP TRIGGER IF EXISTS coc_outbox_notify ON "{schema}".outbox',
        f'CREATE TRIGGER coc_outbox_notify AFTER INSERT ON "{schema}".outbox '
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def id_blocks_table(metadata: MetaData, schema: str) -> Table:
    """The counters of ``ids.BlockAllocator`` (one row per named series), in a service's schema."""
    key = f"{schema}.id_blocks"
    if key in metadata.tables:
        return metadata.tables[key]
    return Table(
        "id_blocks",
        metadata,
        Column("name", String(100), primary_key=True),
        Column("next_value", BigInteger, nullable=False),
        schema=schema,
    )


def account_deactivations_table(metadata: MetaData, schema: str) -> Table:
    """Accounts whose deactivation a service recorded (``deactivation.py``), once each."""
    key = f"{schema}.account_deactivations"
    if key in metadata.tables:
        return metadata.tables[key]
    return Table(
        "account_deactivations",
        metadata,
        Column("account_id", String(200), primary_key=True),
        Column("event_id", String(36), nullable=False),
        Column("erased_at", DateTime(timezone=True), nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        schema=schema,
    )


ops_metadata = MetaData()

parked_messages = Table(
    "parked_messages",
    ops_metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("service", String(100), nullable=False),
    Column("host", String(200), nullable=False),
    Column("queue", String(200), nullable=False),
    Column("routing_key", String(200), nullable=False),
    Column("event_id", String(200)),
    Column("event_type", String(100)),
    Column("order_id", String(200)),  # envelope subject / data.order_id, for support searches
    Column("correlation_id", String(200)),
    Column("body", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("error_type", String(300), nullable=False),
    Column("error_message", Text, nullable=False),
    Column("stack_trace", Text),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    Column("parked_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False, default="parked"),  # parked | replayed | discarded
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(200)),
    Column("resolution_reason", Text),
    Index("ix_parked_status_service", "status", "service"),
    Index("ix_parked_event_id", "event_id"),
    Index("ix_parked_order_id", "order_id"),
    # ops_0004: the console's groups and chart of failures per hour (``parked_summary``)
    Index("ix_parked_groups", "service", "status", "event_type", "error_type"),
    Index("ix_parked_service_parked_at", "service", "parked_at"),
    schema=OPS_SCHEMA,
)

support_actions = Table(
    "support_actions",
    ops_metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(50), nullable=False),
    Column("action", String(50), nullable=False),
    Column("target", String(200)),
    Column("reason", Text),
    Column("details", JSON),
    schema=OPS_SCHEMA,
)


revoked_staff_tokens = Table(
    "revoked_staff_tokens",
    ops_metadata,
    Column("jti", String(64), primary_key=True),
    Column("revoked_at", DateTime(timezone=True), nullable=False),
    Column("revoked_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    schema=OPS_SCHEMA,
)


subject_keys = Table(
    "subject_keys",
    ops_metadata,
    # whose personal data the key seals: an account id, or a guest order's id (``keystore``)
    Column("subject", String(200), primary_key=True),
    # the account an order's key belongs to: destroyed with the account's
    Column("owner", String(200), index=True),
    Column("wrapped_key", LargeBinary),  # AES key wrap of the data key; null once destroyed
    Column("kek_id", String(32)),  # which key-encryption key wrapped it
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True)),
    schema=OPS_SCHEMA,
)


def create_messaging_tables(bind, schema: str) -> None:
    """Used by each service's first migration: creates its outbox and inbox tables (and the
    outbox's NOTIFY trigger on PostgreSQL)."""
    metadata = MetaData()
    for table in messaging_tables(metadata, schema):
        table.create(bind)
    create_outbox_notify_trigger(bind, schema)


# Columns added to the messaging tables after a service's first migration created them: each
# service's migration adds those it lacks (``add_messaging_columns``), since a fresh database's
# first migration already creates them from the current definitions.
LATER_MESSAGING_COLUMNS = {"outbox": ("traceparent",), "inbox": ("correlation_id",)}


def add_messaging_columns(op, schema: str) -> None:
    """Add to the schema's outbox and inbox the columns of ``LATER_MESSAGING_COLUMNS`` they do not
    have yet (``op``: the migration's alembic operations)."""
    from sqlalchemy import inspect

    inspector = inspect(op.get_bind())
    tables = dict(zip(("outbox", "inbox"), messaging_tables(MetaData(), schema)))
    for name, columns in LATER_MESSAGING_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(name, schema=schema)}
        for column in columns:
            if column not in present:
                op.add_column(name, Column(column, tables[name].c[column].type), schema=schema)


def create_outbox_notify_trigger(bind, schema: str) -> None:
    """The outbox's NOTIFY trigger (``outbox_notify_ddl``); nothing on SQLite (its relay polls)."""
    if bind.dialect.name == "postgresql":
        for statement in outbox_notify_ddl(schema):
            bind.exec_driver_sql(statement)
