"""Alembic, driven from code: every service keeps its own migration scripts (in its package) and
its own version table inside its own schema; ``coc_shared`` migrates the ``ops`` schema."""

from __future__ import annotations

import os

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Engine, MetaData, text


def upgrade(engine: Engine, script_location: str, schema: str, revision: str = "head") -> None:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several processes may start at once: one migrates, the others wait for it. The
            # schema is created under the same lock (concurrent CREATE SCHEMA IF NOT EXISTS races).
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"coc-migrate-{schema}"}
            )
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        cfg.attributes["connection"] = conn
        cfg.attributes["schema"] = schema
        command.upgrade(cfg, revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every ``env.py``: migrate online on the connection ``upgrade`` passes in."""
    config = context.config
    conn = config.attributes.get("connection")
    schema = config.attributes["schema"]
    if conn is None:
        raise RuntimeError("run migrations with `<service> migrate` (coc_shared.migrate.upgrade)")
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        version_table_schema=schema,
        include_schemas=True,
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def package_migrations(module_file: str) -> str:
    """Path of the ``migrations`` folder beside a package's ``__init__``."""
    return os.path.join(os.path.dirname(os.path.abspath(module_file)), "migrations")
