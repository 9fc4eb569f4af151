"""Alembic, driven from code: every service keeps its own migration scripts (in its package) and
its own version table inside its own schema; ``coc_shared`` migrates the ``ops`` schema.

Least privilege (deploy/postgres): each service's database role owns its schema and only uses the
shared ``ops`` schema, which belongs to an ``ops`` role. ``upgrade`` therefore migrates a schema
only where the connected role may create in it; elsewhere it checks that the schema's owner already
migrated it to the wanted revision and stops with an error naming the step otherwise.
``python -m coc_shared.migrate ops`` is that step for ``ops`` (docker-compose's ``ops-migrate``,
run as the ``ops`` role): it upgrades the schema, then grants the services and the staff command
line the rights ``OPS_GRANTS`` lists on its tables, and keeps each service to its own parked
messages (``own_parked_rows``: row-level security).
"""

from __future__ import annotations

import os

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, text

from .db import schema_exists


class SchemaNotMigrated(RuntimeError):
    """A schema this role may not migrate is not at the revision the code needs."""


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
            if not schema_exists(conn, schema):
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            elif not conn.execute(
                text("SELECT has_schema_privilege(:s, 'CREATE')"), {"s": schema}
            ).scalar():
                require_revision(conn, cfg, schema, revision)
                return
        cfg.attributes["connection"] = conn
        cfg.attributes["schema"] = schema
        command.upgrade(cfg, revision)


def require_revision(conn: Connection, cfg: Config, schema: str, revision: str = "head") -> None:
    """Raise ``SchemaNotMigrated`` unless ``schema`` (which this role may not migrate) is at
    ``revision`` of the scripts ``cfg`` names."""
    script = ScriptDirectory.from_config(cfg)
    wanted = set(script.get_heads()) if revision == "head" else {revision}
    owner, role = conn.execute(
        text("SELECT pg_get_userbyid(nspowner), current_user FROM pg_namespace WHERE nspname = :s"),
        {"s": schema},
    ).one()
    try:
        with conn.begin_nested():
            migration = MigrationContext.configure(conn, opts={"version_table_schema": schema})
            current = set(migration.get_current_heads())
    except Exception as exc:
        raise SchemaNotMigrated(
            f"role {role} may not migrate schema {schema} (owned by {owner}) nor read its version "
            f"table: {type(exc).__name__}"
        ) from exc
    if current != wanted:
        step = {
            "ops": "python -m coc_shared.migrate ops (docker compose: ops-migrate)",
            "archive": "python -m coc_payments.entrypoints.archive migrate (docker compose: "
            "archive-migrate)",
        }.get(schema, f"the migration of {schema}")
        raise SchemaNotMigrated(
            f"schema {schema} is at revision {sorted(current) or 'none'}, the code needs "
            f"{sorted(wanted)}; role {role} may not migrate it (its owner is {owner}): run {step} "
            "first"
        )


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


OPS_MIGRATIONS = package_migrations(__file__)

# What may be done in the ops schema besides its owner: by the services (consumers park messages,
# staff endpoints read them and record each read, every staff request checks the revoked tokens,
# every `migrate` checks the schema is current) and by the staff command line (replay or discard
# parked messages, revoke tokens). Nothing else: no DELETE, no DDL; the support actions log is
# append-only for both. A service parks and changes only its own parked messages
# (``own_parked_rows``).
OPS_GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "services": {
        # the staff endpoints' discard and (progressive) replay mark a message resolved, and the
        # retention purge drops its body's personal part: those columns only, never its error or
        # origin, and on the service's own rows only
        "parked_messages": (
            "SELECT",
            "INSERT",
            "UPDATE (body, status, resolved_at, resolved_by, resolution_reason)",
        ),
        "support_actions": ("SELECT", "INSERT"),
        "revoked_staff_tokens": ("SELECT",),
        # make a subject's key when it first seals, link an order's to its account, destroy on
        # erasure (an UPDATE nulling the key); never DELETE
        "subject_keys": ("SELECT", "INSERT", "UPDATE"),
        "alembic_version": ("SELECT",),
    },
    "staff": {
        "parked_messages": ("SELECT", "UPDATE"),
        "support_actions": ("SELECT", "INSERT"),
        "revoked_staff_tokens": ("SELECT", "INSERT"),
        # support shows parked messages (unsealed) and rotates the key-encryption key (rewrap)
        "subject_keys": ("SELECT", "UPDATE"),
    },
}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grant_ops_rights(
    conn: Connection,
    roles: dict[str, str],
    schema: str = "ops",
    grants: dict[str, dict[str, tuple[str, ...]]] = OPS_GRANTS,
) -> None:
    """Give each role of ``roles`` (kind of ``grants`` -> role) exactly its rights on ``schema``'s
    tables, and the use of the id sequences of the tables it inserts into, taking back any other
    right on the schema's tables first; in the caller's transaction, by the tables' owner. (The
    invoice archive's one-shot uses it too, with its own ``grants``.)"""
    tables = {
        row[0]
        for row in conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
        )
    }
    for kind, role in roles.items():
        grantee = _quoted(role)
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {_quoted(schema)} FROM {grantee}"))
        conn.execute(
            text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {_quoted(schema)} FROM {grantee}")
        )
        for table, privileges in grants[kind].items():
            if table not in tables:
                continue
            qualified = f"{_quoted(schema)}.{_quoted(table)}"
            conn.execute(text(f"GRANT {', '.join(privileges)} ON {qualified} TO {grantee}"))
            if "INSERT" not in privileges:
                continue
            for (sequence,) in conn.execute(
                text(
                    "SELECT pg_get_serial_sequence(:t, a.attname) FROM pg_attribute a "
                    "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 "
                    "AND NOT a.attisdropped"
                ),
                {"t": qualified},
            ):
                if sequence is not None:
                    conn.execute(text(f"GRANT USAGE ON SEQUENCE {sequence} TO {grantee}"))


def role_prefix(services_role: str) -> str:
    """The prefix of the roles (deploy/postgres/initdb/roles.psql): ``coc_`` of ``coc_services``."""
    if not services_role.endswith("services"):
        raise ValueError(f"the services' group {services_role!r} is not <prefix>services")
    return services_role[: -len("services")]


def own_parked_rows(
    conn: Connection, services_role: str, staff_role: str | None, schema: str = "ops"
) -> None:
    """Row-level security on ``parked_messages``: a service's role (``<prefix><service>``, ``-``
    as ``_``: roles.psql) reads every parked message but parks, locks and changes only its own
    service's (a row of another service is not there for its UPDATE or FOR UPDATE); the staff
    role may work on all. The owner (ops) is not bound. Idempotent; by the table's owner."""
    table = f"{_quoted(schema)}.{_quoted('parked_messages')}"
    prefix = role_prefix(services_role).replace("'", "''")
    own = f"current_user = '{prefix}' || replace(service, '-', '_')"
    policies = {
        "coc_services_read": f"FOR SELECT TO {_quoted(services_role)} USING (true)",
        "coc_services_park_own": f"FOR INSERT TO {_quoted(services_role)} WITH CHECK ({own})",
        "coc_services_change_own": (
            f"FOR UPDATE TO {_quoted(services_role)} USING ({own}) WITH CHECK ({own})"
        ),
    }
    if staff_role:
        staff = _quoted(staff_role)
        policies["coc_staff_all"] = f"FOR ALL TO {staff} USING (true) WITH CHECK (true)"
    conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
    for name in {*policies, "coc_staff_all"}:
        conn.execute(text(f"DROP POLICY IF EXISTS {_quoted(name)} ON {table}"))
    for name, definition in policies.items():
        conn.execute(text(f"CREATE POLICY {_quoted(name)} ON {table} {definition}"))


def main(argv: list[str] | None = None) -> int:
    """``python -m coc_shared.migrate ops --services-role R --staff-role S``: upgrade the ops schema
    on PARKING_DATABASE_URL (else DATABASE_URL) as its owner, then give the services' role R (a
    group of the five services' roles) and the staff command line's role S their rights there
    (``grant_ops_rights``), each service on its own parked messages only (``own_parked_rows``);
    PostgreSQL only."""
    import argparse

    from .config import env
    from .db import make_engine
    from .logging import configure_logging, get_logger
    from .tables import OPS_SCHEMA

    parser = argparse.ArgumentParser(prog="python -m coc_shared.migrate")
    parser.add_argument("schema", choices=[OPS_SCHEMA])
    parser.add_argument("--services-role", help="role (group) of the services")
    parser.add_argument("--staff-role", help="role of the staff command line (coc-support)")
    args = parser.parse_args(argv)
    configure_logging("ops-migrate", env("LOG_LEVEL"))
    log = get_logger("coc_shared.migrate")
    roles = {
        kind: role
        for kind, role in (("services", args.services_role), ("staff", args.staff_role))
        if role
    }
    engine = make_engine(env("PARKING_DATABASE_URL") or env("DATABASE_URL"), schemas=(OPS_SCHEMA,))
    try:
        upgrade(engine, OPS_MIGRATIONS, OPS_SCHEMA)
        if roles and engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                grant_ops_rights(conn, roles, OPS_SCHEMA)
                if args.services_role:
                    own_parked_rows(conn, args.services_role, args.staff_role, OPS_SCHEMA)
    finally:
        engine.dispose()
    log.info("migrate.done", schema=OPS_SCHEMA, granted=roles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
