"""``coc-run`` (behind ``make run``): migrate and start the whole pipeline, and say where it \
listens.

Mode:
* **distributed** when ``RABBITMQ_URL`` / ``DATABASE_URL`` are set, or the local RabbitMQ (5672) and
  PostgreSQL (5432) answer: each service runs as its own processes (gunicorn API + worker with
  consumer and outbox relay), as in production;
* **embedded** otherwise: every service in this one process, over kombu's in-memory transport and
  SQLite files under ``RUN_DATA_DIR``. Same service code; only the transports differ. Nothing in
  the embedded mode survives a restart of the process's memory (the broker is in memory), so it is
  for trying the pipeline out, not for production.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import signal
import socket
import sys
import threading
from urllib.parse import urlparse

from .config import APPLICATIONS, ENV_VARS, SERVICE_NAMES, Settings, env, port_variable
from .db import ensure_database
from .logging import configure_logging, get_logger
from .supervisor import Child, Supervisor

log = get_logger("coc-run")


def package_of(service: str) -> str:
    return "coc_" + service.replace("-", "_")


def load_definitions():
    definitions = []
    for name in (*SERVICE_NAMES, *APPLICATIONS):
        try:
            module = importlib.import_module(package_of(name) + ".service")
        except ModuleNotFoundError as exc:
            print(
                f"  ! service {name} is not installed ({exc}); run `make install`", file=sys.stderr
            )
            continue
        definitions.append(module.definition)
    return definitions


def _answers(url: str, port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or port), timeout=1.5
        ):
            return True
    except OSError:
        return False


def choose_mode(forced: str | None = None) -> tuple[str, str]:
    """Returns (mode, reason)."""
    if forced:
        return forced, "chosen on the command line"
    given = [v for v in ("RABBITMQ_URL", "DATABASE_URL") if os.environ.get(v)]
    if given:
        if env("RABBITMQ_URL").startswith("memory://") or env("DATABASE_URL").startswith("sqlite"):
            return "embedded", f"{', '.join(given)} name in-process transports"
        return "distributed", f"{', '.join(given)} set"
    rabbit, pg = _answers(env("RABBITMQ_URL"), 5672), _answers(env("DATABASE_URL"), 5432)
    if rabbit and pg:
        return "distributed", "the local RabbitMQ and PostgreSQL answer"
    missing = [n for n, ok in (("RabbitMQ", rabbit), ("PostgreSQL", pg)) if not ok]
    return "embedded", f"no local {' or '.join(missing)} answers"


def persistent_secret(path: str, size: int) -> str:
    """A random secret (base64) made once and kept in ``path`` (mode 600), for development runs."""
    import base64
    import secrets

    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(size)).decode())
    with open(path) as f:
        return f.read().strip()


def persistent_staff_keys(data_dir: str) -> tuple[str, str]:
    """The development run's staff-token key pair, made once and kept under ``data_dir``: the
    private key in ``staff-token-private.key`` (mode 600), the public one beside it."""
    from .tokens import new_staff_keys

    private_path = os.path.join(data_dir, "staff-token-private.key")
    public_path = os.path.join(data_dir, "staff-token-public.key")
    if not os.path.exists(private_path):
        private, public = new_staff_keys()
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(private)
        with open(public_path, "w") as f:
            f.write(public)
    with open(private_path) as f, open(public_path) as g:
        return f.read().strip(), g.read().strip()


def apply_development_defaults(definitions) -> None:
    """Fill what a developer's machine lacks (variables not set are set; set ones are kept): the
    customers' token secret, the staff tokens' public key and the key-encryption key of the events'
    personal parts, so that accounts, staff tools and sealing work, and each service's own
    defaults. The staff tokens' private key is never given to the services: it stays in its file
    for ``coc-support issue-token``."""
    data_dir = os.path.abspath(env("RUN_DATA_DIR"))
    os.makedirs(data_dir, exist_ok=True)
    if not os.environ.get("CUSTOMER_TOKEN_SECRET"):
        os.environ["CUSTOMER_TOKEN_SECRET"] = persistent_secret(
            os.path.join(data_dir, "customer_token_secret.secret"), 48
        )
        print(
            f"  CUSTOMER_TOKEN_SECRET set for this development run (kept in {data_dir})", flush=True
        )
    if not os.environ.get("PERSONAL_DATA_KEK"):  # seals the events' personal parts (keystore)
        os.environ["PERSONAL_DATA_KEK"] = persistent_secret(
            os.path.join(data_dir, "personal_data_kek.secret"), 32
        )
        print(f"  PERSONAL_DATA_KEK set for this development run (kept in {data_dir})", flush=True)
    if not os.environ.get("STAFF_TOKEN_PUBLIC_KEY"):
        _, public = persistent_staff_keys(data_dir)
        os.environ["STAFF_TOKEN_PUBLIC_KEY"] = public
        print(
            f"  STAFF_TOKEN_PUBLIC_KEY set for this development run; issue a staff token with\n"
            f"    STAFF_TOKEN_PRIVATE_KEY=$(cat {data_dir}/staff-token-private.key) "
            f"coc-support issue-token --name you --role admin",
            flush=True,
        )
    for definition in definitions:
        if definition.development_defaults is None:
            continue
        for name, value in definition.development_defaults(data_dir).items():
            if not os.environ.get(name):
                os.environ[name] = value
                print(f"  {definition.name}: {name} set for this development run", flush=True)


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    bindir = os.path.dirname(sys.executable)
    child_env = {**os.environ, **(extra or {}), "PYTHONUNBUFFERED": "1"}
    child_env["PATH"] = bindir + os.pathsep + child_env.get("PATH", "")
    return child_env


def start_sandboxes(definitions, supervisor: Supervisor) -> list[tuple[str, str]]:
    """Start every service's sandboxes (``ServiceDefinition.sandboxes``) under ``supervisor``;
    returns the rows to print. Only ``make run`` does this; production has the real outside
    parties."""
    data_dir = os.path.abspath(env("RUN_DATA_DIR"))
    rows = []
    for definition in definitions:
        if definition.sandboxes is None:
            continue
        for sandbox in definition.sandboxes(data_dir):
            name = f"sandbox {sandbox.name}"
            supervisor.add(Child(name, name, sandbox.command, _child_env(sandbox.env)))
            rows.append((name, sandbox.address))
    return rows


def new_supervisor() -> Supervisor:
    """The run's supervisor: per-service log files under ``RUN_DATA_DIR``/logs."""
    return Supervisor(log_dir=os.path.join(os.path.abspath(env("RUN_DATA_DIR")), "logs"))


def _banner(mode: str, reason: str, rows: list[tuple[str, str]]) -> None:
    print(f"\nCOC pipeline running in {mode} mode ({reason}).", flush=True)
    for name, where in rows:
        print(f"  {name:<18} {where}", flush=True)
    print("Press Ctrl-C to stop.\n", flush=True)


def run_embedded(definitions, reason: str, stop: threading.Event) -> int:
    from werkzeug.serving import make_server

    from .service import Runtime

    data_dir = os.path.abspath(env("RUN_DATA_DIR"))
    os.makedirs(data_dir, exist_ok=True)
    overrides = dict(
        rabbitmq_url="memory://",
        database_url=f"sqlite:///{data_dir}/main.db",
        parking_database_url=f"sqlite:///{data_dir}/main.db",
    )
    supervisor = new_supervisor()
    sandbox_rows = start_sandboxes(definitions, supervisor)
    runtimes = [Runtime(d, Settings.from_env(d.name, **overrides)) for d in definitions]
    for runtime in runtimes:
        runtime.migrate()
        first_run(runtime)
    for runtime in runtimes:  # every queue exists before anything is published
        runtime.declare_topology()
    servers, rows = [], []
    for runtime in runtimes:
        if runtime.definition.name not in APPLICATIONS:  # no events: no consumer, no relay
            runtime.start_worker_threads(stop)
        server = make_server(
            runtime.settings.http_host,
            runtime.settings.http_port,
            runtime.create_app(),
            threaded=True,
        )
        threading.Thread(
            target=server.serve_forever, daemon=True, name=f"{runtime.definition.name}-http"
        ).start()
        servers.append(server)
        rows.append(
            (
                runtime.definition.name,
                f"http://{runtime.settings.http_host}:{runtime.settings.http_port}"
                f"  (API, consumer and outbox relay in this process)",
            )
        )
    rows.append(("data", f"{data_dir} (SQLite files); broker: in-memory"))
    _banner("embedded", reason, rows + sandbox_rows)
    code = supervisor.run(stop)
    for server in servers:
        server.shutdown()
    return code


def broker_accounts(data_dir: str) -> dict[str, str]:
    """Each service's RabbitMQ URL with its own user (``coc_shared.broker_users``), created on the
    local broker with passwords made once and kept under ``data_dir``; empty (and publishers not
    verified, said loudly) where this machine cannot create users (no local ``rabbitmqctl``)."""
    import json
    import secrets

    from . import broker_users

    if not shutil.which("rabbitmqctl"):
        os.environ["BUS_VERIFY_PUBLISHERS"] = "false"
        print(
            "  ! no rabbitmqctl here: every service uses RABBITMQ_URL's account and consumers do "
            "not check who published an event (production gives each service its own user)",
            flush=True,
        )
        return {}
    path = os.path.join(data_dir, "broker-passwords.json")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({s: secrets.token_hex(16) for s in broker_users.all_services()}, f)
    with open(path) as f:
        passwords = json.load(f)
    missing = [s for s in broker_users.all_services() if s not in passwords]
    if missing:  # accounts added since the file was made (e.g. a supplier's integration)
        passwords.update({s: secrets.token_hex(16) for s in missing})
        with open(path, "w") as f:
            json.dump(passwords, f)
    prefix = env("BUS_PREFIX") or ""
    broker_users.import_definitions(broker_users.definitions(prefix, passwords))
    admin = env("RABBITMQ_URL")
    return {
        s: broker_users.with_credentials(admin, broker_users.broker_user(prefix, s), pw)
        for s, pw in passwords.items()
    }


def first_run(runtime) -> None:
    """An application's own first-run step (the console's first admin account), if it has one."""
    if "first-run" in runtime.definition.commands:
        runtime.definition.commands["first-run"](runtime, [])


def _prepare(definitions) -> None:
    """The databases, every service's schema and its queues (as the one-shot migrations do)."""
    from .service import Runtime

    ensure_database(env("DATABASE_URL"))
    if env("PARKING_DATABASE_URL"):
        ensure_database(env("PARKING_DATABASE_URL"))
    for definition in definitions:
        runtime = Runtime(definition)
        runtime.migrate()
        runtime.declare_topology()
        first_run(runtime)
        runtime.engine.dispose()


def _start_service(definition, accounts: dict, supervisor: Supervisor) -> tuple[str, str]:
    """A service's gunicorn API and its worker under ``supervisor``, each connecting to the broker
    as the service; returns the row to print."""
    bindir = os.path.dirname(sys.executable)
    gunicorn = shutil.which("gunicorn", path=bindir) or "gunicorn"
    host, port = env("SERVICE_HOST"), env(port_variable(definition.name))
    extra = {}
    if definition.name in accounts:
        extra["RABBITMQ_URL"] = accounts[definition.name]
    app = f"{package_of(definition.name)}.entrypoints.api:create_app()"
    api = supervisor.add(
        Child(
            f"{definition.name} api",
            definition.name,
            [
                gunicorn,
                "--bind",
                f"{host}:{port}",
                "--workers",
                "2",
                "--access-logfile",
                "-",
                "--logger-class",
                "coc_shared.gunicorn.AccessLogger",
                app,
            ],
            _child_env(extra),
        )
    )
    if definition.name in APPLICATIONS:  # no events: no worker
        return definition.name, f"http://{host}:{port}  (gunicorn pid {api.pid})"
    worker = supervisor.add(
        Child(
            f"{definition.name} worker",
            definition.name,
            [os.path.join(bindir, f"coc-{definition.name}"), "worker"],
            _child_env(extra),
        )
    )
    return (
        definition.name,
        f"http://{host}:{port}  (gunicorn pid {api.pid}; worker pid {worker.pid}; "
        f"restarted if they die)",
    )


def run_distributed(definitions, reason: str, stop: threading.Event) -> int:
    accounts = broker_accounts(os.path.abspath(env("RUN_DATA_DIR")))
    _prepare(definitions)
    supervisor = new_supervisor()
    sandbox_rows = start_sandboxes(definitions, supervisor)
    rows = [_start_service(definition, accounts, supervisor) for definition in definitions]
    rows.append(("database", Settings.from_env("orders").database_url.split("@")[-1]))
    rows.append(("broker", Settings.from_env("orders").rabbitmq_url.split("@")[-1]))
    if "support" in accounts:
        rows.append(
            ("support tools", "RABBITMQ_URL for coc-support replays: " + accounts["support"])
        )
    rows.append(("logs", f"{supervisor.log_dir}/<service>.log (and here)"))
    _banner("distributed", reason, rows + sandbox_rows)
    return supervisor.run(stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coc-run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mode", choices=["distributed", "embedded"], help="override the automatic choice"
    )
    args = parser.parse_args(argv)
    configure_logging("coc-run", env("LOG_LEVEL"))
    definitions = load_definitions()
    if not definitions:
        print("no service is installed; run `make install`", file=sys.stderr)
        return 2
    mode, reason = choose_mode(args.mode)
    apply_development_defaults(definitions)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"coc-run: {mode} mode ({reason})", flush=True)
    if mode == "embedded":
        return run_embedded(definitions, reason, stop)
    return run_distributed(definitions, reason, stop)


assert all(port_variable(s) in ENV_VARS for s in SERVICE_NAMES)

if __name__ == "__main__":
    sys.exit(main())
