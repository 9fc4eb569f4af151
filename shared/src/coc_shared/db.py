"""Database engines: PostgreSQL in production and tests, SQLite files in the embedded mode.

Each service owns one schema named after it. On SQLite a schema is a separate file ATTACHed
under that name, so the same table definitions (``schema="orders"``) work in both modes.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


def normalise_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(
    url: str, schemas: tuple[str, ...] = (), pool_size: int = 5, pre_ping: bool = True
) -> Engine:
    """``pre_ping`` checks each pooled connection before use (one round trip): wanted for HTTP
    requests; the consumer and relay go without, as they retry a batch whose connection died."""
    url = normalise_url(url)
    if is_sqlite(url):
        path = make_url(url).database
        folder = os.path.dirname(os.path.abspath(path)) if path else "."
        os.makedirs(folder, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _attach(dbapi_connection, _record):
            # SQLite: one file per schema, and WAL so readers do not block the writer.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            for schema in schemas:
                cursor.execute(
                    "ATTACH DATABASE ? AS " + schema, (os.path.join(folder, f"{schema}.db"),)
                )
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # pysqlite's own transaction handling is off (isolation_level None); take the write lock
            # up front.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # hide_parameters: a database error's message (and so a logged traceback) never carries the
    # values of the statement, which may be personal data
    return create_engine(
        url, pool_pre_ping=pre_ping, pool_size=pool_size, max_overflow=10, hide_parameters=True
    )


def schema_exists(conn, schema: str) -> bool:
    """True when the PostgreSQL schema exists (whoever owns it)."""
    found = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema})
    return found.scalar() is not None


def ensure_schema(engine: Engine, schema: str) -> None:
    """Create the PostgreSQL schema unless it exists. A deployment's roles may not create schemas
    (deploy/postgres creates them, each owned by its service's role), and PostgreSQL checks that
    right before it looks whether ``IF NOT EXISTS`` applies: so look first."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            if not schema_exists(conn, schema):
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` when it does not exist yet."""
    url = normalise_url(url)
    if is_sqlite(url):
        return
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def insert_ignoring_conflicts(bind, table, rows: dict | list[dict]):
    """``INSERT … ON CONFLICT DO NOTHING`` in the dialect of ``bind`` (a connection or an engine):
    the claim of a key that a concurrent transaction may claim too (it waits for the other and
    then inserts nothing). Add ``.returning(...)`` to learn which rows were new."""
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).values(rows).on_conflict_do_nothing()


def is_infrastructure_error(exc: BaseException) -> bool:
    """True when the database itself is unreachable (not the handler's fault): wait and retry."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
