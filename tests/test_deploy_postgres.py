"""deploy/postgres on the real PostgreSQL: the roles and schemas docker-compose's database gets, and
the services migrated and working under them.

A database and roles of this run's own (``coc_d<run>_orders``...) are created by the very script
the postgres image runs (``deploy/postgres/initdb/10-roles.sh`` with ``roles.psql``), then the ops
schema is migrated by the ops-migrate one-shot's command as the ops role, and each service's
``Runtime.migrate()`` runs as the service's own role, all five at once as compose starts them.
Everything is dropped at the end. The local server trusts its clients, so password checks are
PostgreSQL's (a role's stored SCRAM verifier is checked against the password it was given).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool

from coc_shared.config import APPLICATIONS, SERVICE_NAMES, Settings, schema_name
from coc_shared.db import normalise_url
from coc_shared.migrate import OPS_GRANTS, SchemaNotMigrated
from coc_shared.parking import ParkingStore
from coc_shared.service import Runtime
from coc_shared.tables import OPS_SCHEMA, ops_metadata
from coc_shared.testing import fresh_example, handle
from coc_shared.tokens import Actor

ROOT = Path(__file__).resolve().parents[1]
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "initdb" / "10-roles.sh"
ROLES_SQL = ROOT / "deploy" / "postgres" / "initdb" / "roles.psql"
SCHEMAS = tuple(schema_name(s) for s in SERVICE_NAMES)
# the support console's (no events: it uses no ops table and reads the services over HTTP only)
APPLICATION_SCHEMAS = tuple(schema_name(a) for a in APPLICATIONS)
# login roles; "services": the five's group
ROLES = (*SCHEMAS, *APPLICATION_SCHEMAS, "ops", "support", "archive")
ARCHIVE_SCHEMA = "archive"  # the invoice archive: its owner reads it, payments only writes
COMPOSE_FILE = ROOT / "docker-compose.yml"


def password_variable(role: str) -> str:
    return f"POSTGRES_{role.upper()}_PASSWORD"


def init_environment(server, database: str, prefix: str, passwords: dict[str, str]) -> dict:
    """The environment the postgres image gives 10-roles.sh, pointed at the local server."""
    env = {
        **os.environ,
        "PGHOST": server.host or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "POSTGRES_USER": server.username or "postgres",
        "POSTGRES_DB": database,
        "COC_DB_ROLE_PREFIX": prefix,
        "COC_ROLES_SQL": str(ROLES_SQL),
    }
    if server.password:
        env["PGPASSWORD"] = server.password
    env.update({password_variable(role): value for role, value in passwords.items()})
    return env


def run_init(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )


def role_names(conn, prefix: str) -> list[str]:
    return (
        conn.execute(
            text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p) ORDER BY 1"),
            {"p": prefix},
        )
        .scalars()
        .all()
    )


@pytest.fixture(scope="module")
def server(postgres_server_url):
    server = make_url(normalise_url(postgres_server_url))
    admin = create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    yield SimpleNamespace(url=server, admin=admin)
    admin.dispose()


@pytest.fixture(scope="module")
def deployment(server):
    """A database initialised by 10-roles.sh as the postgres image would, with this run's roles;
    dropped with them at the end."""
    run = secrets.token_hex(4)
    database, prefix = f"coc_deploy_{run}", f"coc_d{run}_"
    passwords = {role: secrets.token_hex(16) for role in ROLES}
    with server.admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        done = run_init(init_environment(server.url, database, prefix, passwords))
        assert done.returncode == 0, f"10-roles.sh failed:\n{done.stdout}\n{done.stderr}"

        def url(role: str | None = None) -> str:
            if role is None:
                return server.url.set(database=database).render_as_string(hide_password=False)
            return server.url.set(
                username=prefix + role, password=passwords[role], database=database
            ).render_as_string(hide_password=False)

        yield SimpleNamespace(
            database=database, prefix=prefix, passwords=passwords, url=url, init=done
        )
    finally:
        with server.admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": database},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            for role in role_names(conn, prefix):
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


def definition_of(service: str):
    return importlib.import_module(f"coc_{schema_name(service)}.service").definition


def runtime_as(deployment, service: str) -> Runtime:
    """The service's runtime connected as its own role (the database only: no broker)."""
    url = deployment.url(schema_name(service))
    settings = Settings.from_env(
        service, database_url=url, parking_database_url=url, rabbitmq_url="memory://"
    )
    return Runtime(definition_of(service), settings)


def ops_migrate_command(prefix: str) -> list[str]:
    """docker-compose's ops-migrate command, its roles (``coc_...``) under this run's prefix."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    command = compose["services"]["ops-migrate"]["command"]
    assert command[:3] == ["python", "-m", "coc_shared.migrate"], command
    return [sys.executable, "-m", "coc_shared.migrate"] + [
        re.sub(r"^coc_", prefix, word) for word in command[3:]
    ]


def migrate_ops(deployment) -> subprocess.CompletedProcess:
    """docker-compose's ops-migrate (``python -m coc_shared.migrate ops ...``) as the ops role."""
    env = {k: v for k, v in os.environ.items() if k != "PARKING_DATABASE_URL"}
    env["DATABASE_URL"] = deployment.url("ops")
    return subprocess.run(
        ops_migrate_command(deployment.prefix),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def migrate_archive(deployment) -> subprocess.CompletedProcess:
    """docker-compose's archive-migrate (``python -m coc_payments.entrypoints.archive migrate
    --writer-role coc_payments``) as the archive role, its roles under this run's prefix."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    command = compose["services"]["archive-migrate"]["command"]
    assert command[:3] == ["python", "-m", "coc_payments.entrypoints.archive"], command
    env = {k: v for k, v in os.environ.items() if k != "PARKING_DATABASE_URL"}
    env["DATABASE_URL"] = deployment.url("archive")
    return subprocess.run(
        [sys.executable, *command[1:3]]
        + [re.sub(r"^coc_", deployment.prefix, word) for word in command[3:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def migrate_service(deployment, service: str) -> subprocess.Popen:
    """docker-compose's NAME-migrate: ``coc-NAME migrate`` as the service's role, in a process of
    its own (alembic's context is global to a process). ``memory://`` leaves the broker out."""
    env = {k: v for k, v in os.environ.items() if k != "PARKING_DATABASE_URL"}
    env.update(DATABASE_URL=deployment.url(schema_name(service)), RABBITMQ_URL="memory://")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / f"coc-{service}"), "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def migrated(deployment):
    """The start of docker-compose, in order: a service migrating before ops-migrate is refused;
    ops-migrate; payments before archive-migrate is refused; archive-migrate; the five
    NAME-migrate at once, each in its process; then each service's ``Runtime.migrate()`` again in
    this process (nothing left to do)."""
    result = SimpleNamespace(before_ops=None, before_archive=None, ops=None, errors={}, again={})
    early = runtime_as(deployment, "orders")
    try:
        early.migrate()
    except Exception as exc:  # the test looks at what was raised
        result.before_ops = exc
    finally:
        early.dispose()
    result.ops = migrate_ops(deployment)
    assert result.ops.returncode == 0, f"ops migration failed:\n{result.ops.stderr}"
    early = runtime_as(deployment, "payments")
    try:
        early.migrate()
    except Exception as exc:  # the test looks at what was raised
        result.before_archive = exc
    finally:
        early.dispose()
    archive = migrate_archive(deployment)
    assert archive.returncode == 0, f"archive migration failed:\n{archive.stderr}"
    processes = {
        service: migrate_service(deployment, service) for service in (*SERVICE_NAMES, *APPLICATIONS)
    }
    for service, process in processes.items():
        output, _ = process.communicate(timeout=180)
        if process.returncode != 0:
            result.errors[service] = output[-3000:]
    for service in (*SERVICE_NAMES, *APPLICATIONS):
        rt = runtime_as(deployment, service)
        try:
            rt.migrate()
        except Exception as exc:  # reported by the tests
            result.again[service] = exc
        finally:
            rt.dispose()
    return result


def connect_as(deployment, role: str | None):
    return create_engine(normalise_url(deployment.url(role)), poolclass=NullPool)


def refused(deployment, role: str, statement: str) -> bool:
    """True when ``role`` gets a permission error for ``statement`` (rolled back either way)."""
    engine = connect_as(deployment, role)
    try:
        with engine.connect() as conn:
            try:
                conn.execute(text(statement))
            except ProgrammingError as exc:
                return getattr(exc.orig, "sqlstate", None) == "42501"  # insufficient_privilege
            finally:
                conn.rollback()
        return False
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------------------------
# the init script


def test_init_script_refuses_to_run_without_every_password(server):
    run = secrets.token_hex(4)
    prefix = f"coc_d{run}_"
    passwords = {role: secrets.token_hex(16) for role in ROLES}
    passwords["payments"] = ""
    passwords["ops"] = "short"
    done = run_init(init_environment(server.url, "postgres", prefix, passwords))
    assert done.returncode != 0
    assert "POSTGRES_PAYMENTS_PASSWORD" in done.stderr and "POSTGRES_OPS_PASSWORD" in done.stderr
    assert "POSTGRES_ORDERS_PASSWORD" not in done.stderr
    with server.admin.connect() as conn:
        assert role_names(conn, prefix) == []


def test_init_script_creates_one_role_per_schema_none_privileged(deployment):
    engine = connect_as(deployment, None)
    with engine.connect() as conn:
        roles = {
            row.rolname: row
            for row in conn.execute(
                text(
                    "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
                    "rolbypassrls, rolcanlogin, rolpassword FROM pg_authid "
                    "WHERE starts_with(rolname, :p)"
                ),
                {"p": deployment.prefix},
            )
        }
        owners = dict(
            conn.execute(
                text(
                    "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
                    "WHERE nspname = ANY(:s)"
                ),
                {"s": [*SCHEMAS, *APPLICATION_SCHEMAS, OPS_SCHEMA, ARCHIVE_SCHEMA]},
            ).all()
        )
        public_for_everyone = conn.execute(
            text(
                "SELECT count(*) FROM pg_namespace n CROSS JOIN aclexplode(n.nspacl) a "
                "WHERE n.nspname = 'public' AND a.grantee = 0"
            )
        ).scalar()
        database_for_everyone = conn.execute(
            text(
                "SELECT count(*) FROM pg_database d CROSS JOIN aclexplode(d.datacl) a "
                "WHERE d.datname = current_database() AND a.grantee = 0"
            )
        ).scalar()
    engine.dispose()
    prefix = deployment.prefix
    assert set(roles) == {prefix + r for r in ROLES} | {prefix + "services"}
    for name, row in roles.items():
        assert not (
            row.rolsuper
            or row.rolcreatedb
            or row.rolcreaterole
            or row.rolreplication
            or row.rolbypassrls
        ), name
    assert not roles[prefix + "services"].rolcanlogin
    for role in ROLES:
        assert roles[prefix + role].rolcanlogin
        assert scram_matches(roles[prefix + role].rolpassword, deployment.passwords[role]), role
    assert owners == {
        s: prefix + s for s in (*SCHEMAS, *APPLICATION_SCHEMAS, OPS_SCHEMA, ARCHIVE_SCHEMA)
    }
    assert public_for_everyone == 0 and database_for_everyone == 0


def scram_matches(verifier: str | None, password: str) -> bool:
    """True when PostgreSQL's stored ``SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`` is the
    verifier of ``password``."""
    if not verifier or not verifier.startswith("SCRAM-SHA-256$"):
        return False
    params, keys = verifier[len("SCRAM-SHA-256$") :].split("$")
    iterations, salt = params.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


# ----------------------------------------------------------------------------------------------
# migrations as the services' own roles


def test_a_service_migrating_before_the_ops_schema_is_told_what_to_run(migrated):
    assert isinstance(migrated.before_ops, SchemaNotMigrated), repr(migrated.before_ops)
    message = str(migrated.before_ops)
    assert "schema ops" in message and "python -m coc_shared.migrate ops" in message


def test_every_service_migrates_as_its_own_role_at_once_and_again(migrated, deployment):
    assert migrated.errors == {}, migrated.errors
    assert migrated.again == {}, migrated.again
    engine = connect_as(deployment, None)
    with engine.connect() as conn:
        for schema in (*SCHEMAS, *APPLICATION_SCHEMAS, OPS_SCHEMA, ARCHIVE_SCHEMA):
            owners = (
                conn.execute(
                    text(
                        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s"
                    ),
                    {"s": schema},
                )
                .scalars()
                .all()
            )
            assert owners == [deployment.prefix + schema], (schema, owners)
            assert (
                conn.execute(text(f'SELECT count(*) FROM "{schema}".alembic_version')).scalar() == 1
            )
        for schema in SCHEMAS:
            trigger = conn.execute(
                text(
                    "SELECT pg_get_userbyid(p.proowner) FROM pg_trigger t "
                    "JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :s AND c.relname = 'outbox' "
                    "AND t.tgname = 'coc_outbox_notify'"
                ),
                {"s": schema},
            ).scalar()
            assert trigger == deployment.prefix + schema, schema
        in_public = conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public'"
            )
        ).scalar()
    engine.dispose()
    assert in_public == 0


def test_ops_grants_name_only_ops_tables_and_cover_each():
    tables = {t.name for t in ops_metadata.tables.values()}
    for kind, grants in OPS_GRANTS.items():
        assert set(grants) <= tables | {"alembic_version"}, kind
    assert set().union(*OPS_GRANTS.values()) >= tables


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_role_reaches_only_its_own_schema(migrated, deployment, service):
    role = schema_name(service)
    problems = []
    for other in (*SCHEMAS, OPS_SCHEMA, ARCHIVE_SCHEMA):
        if other == role:
            continue
        if not refused(deployment, role, f'CREATE TABLE "{other}".intruder (i int)'):
            problems.append(f"{role} may create tables in {other}")
        if other == ARCHIVE_SCHEMA and not refused(
            deployment, role, "SELECT 1 FROM archive.invoices LIMIT 1"
        ):
            problems.append(f"{role} may read the invoice archive")
        if other not in (OPS_SCHEMA, ARCHIVE_SCHEMA) and not refused(
            deployment, role, f'SELECT 1 FROM "{other}".outbox LIMIT 1'
        ):
            problems.append(f"{role} may read {other}.outbox")
    for statement in (
        "CREATE TABLE public.intruder (i int)",
        "CREATE SCHEMA intruder",
        "DELETE FROM ops.parked_messages",
        "UPDATE ops.parked_messages SET body = 'x', error_type = 'x'",
        "INSERT INTO ops.revoked_staff_tokens VALUES ('j', now(), 'x', 'x')",
        "DELETE FROM ops.revoked_staff_tokens",
        "UPDATE ops.support_actions SET reason = 'x'",
        "DELETE FROM ops.support_actions",
        "UPDATE ops.alembic_version SET version_num = 'x'",
        "SET ROLE " + deployment.prefix + "ops",
    ):
        if not refused(deployment, role, statement):
            problems.append(f"{role} may: {statement}")
    # its staff endpoints' discard and replay resolve a parked message (rows locked first), the
    # retention purge drops a body's personal part (its own rows only: see below)
    for statement in (
        "SELECT id FROM ops.parked_messages WHERE false FOR UPDATE SKIP LOCKED",
        "UPDATE ops.parked_messages SET status = 'replayed', resolved_at = now(), "
        "resolved_by = 'x', resolution_reason = 'x' WHERE false",
        "UPDATE ops.parked_messages SET body = 'x' WHERE false",
    ):
        if refused(deployment, role, statement):
            problems.append(f"{role} may not: {statement}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("application", APPLICATIONS)
def test_the_console_role_reaches_only_its_own_schema(migrated, deployment, application):
    """The console reads the services only through their staff HTTP APIs: no right on their
    schemas, on ops or on the archive."""
    role = schema_name(application)
    for schema in SCHEMAS:
        assert refused(deployment, role, f'SELECT 1 FROM "{schema}".outbox LIMIT 1'), schema
        assert refused(deployment, role, f'CREATE TABLE "{schema}".intruder (i int)'), schema
    for statement in (
        "SELECT 1 FROM ops.parked_messages LIMIT 1",
        "SELECT 1 FROM ops.subject_keys LIMIT 1",
        "SELECT 1 FROM archive.invoices LIMIT 1",
        "CREATE TABLE public.intruder (i int)",
    ):
        assert refused(deployment, role, statement), statement


@pytest.mark.parametrize("role", ["ops", "support", "archive"])
def test_the_ops_support_and_archive_roles_read_no_service_schema(migrated, deployment, role):
    for schema in SCHEMAS:
        assert refused(deployment, role, f'SELECT 1 FROM "{schema}".outbox LIMIT 1'), schema
    if role != "archive":
        assert refused(deployment, role, "SELECT 1 FROM archive.invoices LIMIT 1")


def test_payments_migrating_before_the_archive_is_told_what_to_run(migrated):
    assert isinstance(migrated.before_archive, SchemaNotMigrated), repr(migrated.before_archive)
    message = str(migrated.before_archive)
    assert "schema archive" in message and "coc_payments.entrypoints.archive migrate" in message


def test_payments_writes_the_archive_and_only_the_archive_role_reads_it(migrated, deployment):
    """Payments adds a document (twice: the second is ignored, without any right to read) and may
    neither read, change nor delete it; the archive role's reader lists it and checks it."""
    from coc_payments.adapters.archive import ArchiveReader, ArchiveWriter
    from coc_payments.adapters.archive_tables import invoices
    from coc_shared.db import insert_ignoring_conflicts

    now = datetime.now(UTC)
    row = {
        "number": "FA-2026-000001",
        "kind": "invoice",
        "seq": 1,
        "order_id": "o-1",
        "order_number": "COC-1",
        "issue_date": now.date(),
        "issued_at": now,
        "buyer_name": "Émilie Dupont",
        "billing_address": {"line1": "1 rue de la Paix"},
        "currency": "EUR",
        "net_cents": 100,
        "vat_cents": 20,
        "total_cents": 120,
        "vat_regime": "standard",
        "data": {"number": "FA-2026-000001"},
        "pdf": b"%PDF",
        "data_sha256": "d" * 64,
        "pdf_sha256": "p" * 64,
        "previous_sha256": "0" * 64,
        "chain_sha256": "c" * 64,
        "retained_until": now.date(),
        "archived_at": now,
    }
    payments = connect_as(deployment, "payments")
    archive = connect_as(deployment, "archive")
    try:
        for _ in range(2):
            with payments.begin() as conn:
                ArchiveWriter(SimpleNamespace(conn=conn, execute=conn.execute)).add([row])
        for statement in (
            "SELECT buyer_name FROM archive.invoices",
            "UPDATE archive.invoices SET buyer_name = 'x'",
            "DELETE FROM archive.invoices",
            "TRUNCATE archive.invoices",
        ):
            assert refused(deployment, "payments", statement), statement
        with payments.connect() as conn, pytest.raises(ProgrammingError, match="permission"):
            conn.execute(
                insert_ignoring_conflicts(conn, invoices, row).returning(invoices.c.number)
            )
        with archive.connect() as conn:
            [listed] = ArchiveReader(conn).listed(buyer="dupont")
        assert listed["number"] == row["number"] and "pdf" not in listed
    finally:
        payments.dispose()
        archive.dispose()


def park_one(
    store: ParkingStore, event_id: str, service: str = "orders", body: bytes = b'{"id": "e1"}'
) -> int:
    now = datetime.now(UTC)
    return store.park(
        service=service,
        queue=f"coc.{service}",
        routing_key="payment.confirmed",
        body=body,
        headers={},
        properties={"user_id": "coc-payments"},
        error_type="ValueError",
        error_message="boom",
        stack_trace=None,
        attempts=1,
        first_failed_at=now,
        last_failed_at=now,
        event_id=event_id,
    )


def test_the_services_and_support_do_their_part_in_ops(migrated, deployment):
    """With the rights ops-migrate granted: a service parks a message, reads it, records a staff
    read, checks a token and discards its own message (its staff endpoint); support lists,
    shows, discards, revokes a token; a service may neither discard another service's message
    nor revoke, nor park as another service; support may not park."""
    actor = Actor(name="alice", role="support")
    orders = connect_as(deployment, "orders")
    support = connect_as(deployment, "support")
    payments = connect_as(deployment, "payments")
    try:
        service_store, support_store = ParkingStore(orders), ParkingStore(support)
        parked_id = park_one(service_store, "e-parked")
        assert service_store.get(parked_id)["status"] == "parked"
        assert [r["id"] for r in service_store.list(event_id="e-parked")] == [parked_id]
        service_store.record_action(actor, "read_parked", str(parked_id), None)
        assert not service_store.token_revoked("jti-1")
        own_id = park_one(service_store, "e-own")
        assert service_store.discard(own_id, actor, "its own")["status"] == "discarded"
        with pytest.raises(LookupError):  # payments' row is not there for orders' UPDATE
            ParkingStore(payments).discard(parked_id, actor, "not its message")
        assert service_store.get(parked_id)["status"] == "parked"
        with pytest.raises(ProgrammingError, match="row-level security"):
            park_one(service_store, "e-as-payments", service="payments")
        with pytest.raises(ProgrammingError, match="permission denied"):
            service_store.revoke_token("jti-1", actor, "not for a service")

        assert [r["id"] for r in support_store.list(event_id="e-parked")] == [parked_id]
        assert support_store.get(parked_id)["id"] == parked_id
        assert support_store.discard(parked_id, actor, "test")["status"] == "discarded"
        assert support_store.revoke_token("jti-1", actor, "lost laptop")
        assert service_store.token_revoked("jti-1")
        with pytest.raises(ProgrammingError, match="permission denied"):
            park_one(support_store, "e-by-support")
    finally:
        orders.dispose()
        support.dispose()
        payments.dispose()


def parked_envelope(service: str) -> bytes:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": "payment.confirmed",
            "data": {"order_id": "o-1"},
            "personal": {"email": f"{service}.customer@example.org"},
        }
    ).encode()


def test_a_service_s_purge_drops_the_personal_part_of_its_own_parked_messages_only(
    migrated, deployment
):
    """The real ``retention.purge_requested`` handler of orders, as the orders role: the personal
    part of orders' parked messages goes (ops-migrate's grant and row policy allow it), payments'
    stays; orders can neither lock nor change a payments row directly."""
    orders_rt = runtime_as(deployment, "orders")
    payments = connect_as(deployment, "payments")
    try:
        own = park_one(orders_rt.parking, "e-own-purge", "orders", parked_envelope("orders"))
        other = park_one(
            ParkingStore(payments), "e-other-purge", "payments", parked_envelope("payments")
        )
        event = fresh_example("retention.purge_requested")
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        event.data = {"run_id": str(uuid.uuid4()), "cutoffs": {"parked_messages": tomorrow}}
        handle(orders_rt, event)

        def personal(parked_id: int):
            return json.loads(bytes(orders_rt.parking.get(parked_id)["body"]))["personal"]

        assert personal(own) is None
        assert personal(other) == {"email": "payments.customer@example.org"}
        with orders_rt.engine.connect() as conn:
            report = conn.execute(
                select(orders_rt.outbox.c.body).where(
                    orders_rt.outbox.c.event_type == "retention.purged.orders",
                    orders_rt.outbox.c.correlation_id == event.correlation_id,
                )
            ).scalar_one()
        purged = json.loads(bytes(report))["data"]["purged"]
        assert {"category": "parked_messages", "count": 1} in purged
        with orders_rt.engine.begin() as conn:
            assert conn.execute(
                text("SELECT id FROM ops.parked_messages WHERE id = :i FOR UPDATE"), {"i": other}
            ).all() == []
            changed = conn.execute(
                text(
                    "UPDATE ops.parked_messages SET body = 'x', status = 'discarded' "
                    "WHERE id = :i"
                ),
                {"i": other},
            ).rowcount
        assert changed == 0
        assert personal(other) == {"email": "payments.customer@example.org"}
        assert orders_rt.parking.get(other)["status"] == "parked"
    finally:
        orders_rt.dispose()
        payments.dispose()
