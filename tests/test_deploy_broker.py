"""docker-compose's broker and Redis set-up, run for real on the local RabbitMQ and Redis.

* The rabbitmq-definitions one-shot's command line, taken from docker-compose.yml (paths mapped to
  the repository, users under a prefix and a virtual host of this run's own), writes definitions
  that the local broker imports (``rabbitmqctl import_definitions``: the docker image's broker
  loads the same file at boot with ``load_definitions``, which this machine's shared broker cannot
  be restarted to try). Each service's user and the support user then log in, a service may
  publish the event types it produces and not another's, and the administrator may open no
  virtual host. The command refuses to write anything when a password is missing.
* Redis is started with compose's command line on a free port; its healthcheck and orders' and
  payments' <PREFIX>_RATE_LIMIT_STORAGE (the limiters' storage) work with the password and nothing
  works without it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import amqp
import pytest
import yaml

from coc_shared.broker_users import (
    SUPPORT,
    all_services,
    broker_user,
    password_variable,
    produced_types,
)
from coc_shared.bus import EXCHANGE
from coc_shared.config import SERVICE_NAMES

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ADMIN_PASSWORD = "RABBITMQ_ADMIN_PASSWORD"

pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmqctl") is None and not os.environ.get("CI"),
    reason="no local rabbitmqctl to import definitions with",
)


def definitions_command(prefix: str, vhost: str, output: Path) -> str:
    """The one-shot's shell command with the repository's script, ``output`` and this run's
    names."""
    container = SERVICES["rabbitmq-definitions"]
    assert container["entrypoint"] == ["/bin/sh", "-c"]
    (command,) = container["command"]
    mounts = dict(reversed(v.split(":")[:2]) for v in container["volumes"])
    script = ROOT / mounts["/deploy/complete_definitions.py"]
    assert "/definitions/definitions.json" in command
    command = command.replace("/deploy/complete_definitions.py", str(script))
    command = command.replace("/definitions/definitions.json", str(output))
    command = command.replace(
        "broker_users definitions", f"broker_users definitions --prefix {prefix} --vhost {vhost}"
    )
    return f"{command} --admin-user {prefix}coc-admin"


def run_definitions(command: str, passwords: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(passwords)
    return subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def broker_users(tmp_path_factory):
    """This run's users and virtual host, written by the one-shot's command and imported into the
    local broker; deleted at the end."""
    run = secrets.token_hex(4)
    prefix, vhost = f"d{run}.", f"coc-deploy-{run}"
    passwords = {password_variable(s): secrets.token_hex(16) for s in all_services()}
    passwords[ADMIN_PASSWORD] = secrets.token_hex(16)
    output = tmp_path_factory.mktemp("definitions") / "definitions.json"
    done = run_definitions(definitions_command(prefix, vhost, output), passwords)
    assert done.returncode == 0, done.stderr
    definitions = json.loads(output.read_text())
    names = [u["name"] for u in definitions["users"]]
    try:
        # a copy the broker's user can read (rabbitmqctl may run as it): test passwords' hashes
        handle, readable = tempfile.mkstemp(suffix=".json")
        try:
            os.write(handle, output.read_bytes())
            os.close(handle)
            os.chmod(readable, 0o644)
            imported = subprocess.run(
                ["rabbitmqctl", "import_definitions", readable],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            os.unlink(readable)
        assert imported.returncode == 0, imported.stderr or imported.stdout
        yield {
            "prefix": prefix,
            "vhost": vhost,
            "passwords": passwords,
            "definitions": definitions,
            "admin": f"{prefix}coc-admin",
        }
    finally:
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60
        )
        for name in names:
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_user", name], capture_output=True, timeout=60
            )


def connect(user: str, password: str, vhost: str, timeout: float = 30.0) -> amqp.Connection:
    """A connection as ``user``, retried while the (asynchronous) import has not created it."""
    deadline = time.monotonic() + timeout
    while True:
        connection = amqp.Connection(
            "127.0.0.1:5672", userid=user, password=password, virtual_host=vhost, connect_timeout=5
        )
        try:
            connection.connect()
            return connection
        except amqp.exceptions.AccessRefused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_the_definitions_hold_every_user_the_virtual_host_and_an_idle_administrator(broker_users):
    definitions, prefix = broker_users["definitions"], broker_users["prefix"]
    users = {u["name"]: u for u in definitions["users"]}
    assert set(users) == {broker_user(prefix, s) for s in all_services()} | {broker_users["admin"]}
    assert users[broker_users["admin"]]["tags"] == "administrator"
    assert all(u["tags"] == "" for name, u in users.items() if name != broker_users["admin"])
    assert all("password" not in u and u["password_hash"] for u in users.values())
    assert definitions["vhosts"] == [{"name": broker_users["vhost"]}]
    assert broker_users["admin"] not in {p["user"] for p in definitions["permissions"]}
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_users"], capture_output=True, text=True, timeout=60
    ).stdout
    assert re.search(rf"^{re.escape(broker_users['admin'])}\s+\[administrator\]", listed, re.M)


@pytest.mark.parametrize("service", [*SERVICE_NAMES, SUPPORT])
def test_each_user_logs_in_with_its_password_only(broker_users, service):
    user = broker_user(broker_users["prefix"], service)
    password = broker_users["passwords"][password_variable(service)]
    connect(user, password, broker_users["vhost"]).close()
    with pytest.raises(amqp.exceptions.AccessRefused):
        connect(user, password + "x", broker_users["vhost"], timeout=0)


def test_the_administrator_opens_no_virtual_host(broker_users):
    connect_error = None
    try:
        connect(
            broker_users["admin"],
            broker_users["passwords"][ADMIN_PASSWORD],
            broker_users["vhost"],
            timeout=5,
        ).close()
    except amqp.exceptions.AMQPError as exc:
        connect_error = exc
    assert connect_error is not None and "access" in str(connect_error).lower()


def test_a_service_publishes_only_the_event_types_it_produces(broker_users):
    prefix, vhost = broker_users["prefix"], broker_users["vhost"]
    user, password = (
        broker_user(prefix, "orders"),
        broker_users["passwords"][password_variable("orders")],
    )
    own = produced_types("orders")[0]
    foreign = produced_types("payments")[0]
    connection = connect(user, password, vhost)
    try:
        channel = connection.channel()
        channel.exchange_declare(prefix + EXCHANGE, "topic", durable=True, auto_delete=False)
        channel.confirm_select()
        channel.basic_publish(amqp.Message(b"{}"), exchange=prefix + EXCHANGE, routing_key=own)
        with pytest.raises(amqp.exceptions.AccessRefused):
            channel.basic_publish(
                amqp.Message(b"{}"), exchange=prefix + EXCHANGE, routing_key=foreign
            )
            channel.basic_qos(0, 1, False)  # a round trip: the refusal closes the channel
    finally:
        connection.collect()


@pytest.mark.parametrize("missing", ["RABBITMQ_GDPR_PASSWORD", ADMIN_PASSWORD])
def test_the_definitions_one_shot_writes_nothing_without_a_password(tmp_path, missing):
    passwords = {password_variable(s): secrets.token_hex(16) for s in all_services()}
    passwords[ADMIN_PASSWORD] = secrets.token_hex(16)
    passwords[missing] = "short"
    output = tmp_path / "definitions.json"
    done = run_definitions(definitions_command("x.", "/", output), passwords)
    assert done.returncode != 0
    assert missing in done.stderr
    assert not output.exists() and not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------
# Redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def substitute(text: str, values: dict[str, str]) -> str:
    """Compose's substitution of ``${NAME...}`` from ``values`` (all present here)."""
    return re.sub(r"\$\{(\w+)[^}]*\}", lambda m: values[m.group(1)], text)


@pytest.fixture(scope="module")
def redis_server():
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is needed to run compose's Redis command line", pytrace=False)
        pytest.skip("no local redis-server")
    password, port = secrets.token_hex(16), free_port()
    command = [
        substitute(word, {"REDIS_PASSWORD": password}) for word in SERVICES["redis"]["command"]
    ]
    assert command[0] == "redis-server"
    process = subprocess.Popen(
        [*command, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield {"password": password, "port": port}
    finally:
        process.terminate()
        process.wait(timeout=20)


def healthcheck(port: int, password: str) -> int:
    test = SERVICES["redis"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    shell = test[1].replace("$$", "$").replace("redis-cli", f"redis-cli -p {port}")
    env = {**os.environ, "REDIS_PASSWORD": password}
    return subprocess.run(["sh", "-c", shell], env=env, capture_output=True, timeout=30).returncode


def test_redis_healthcheck_needs_the_password(redis_server):
    assert healthcheck(redis_server["port"], redis_server["password"]) == 0
    assert healthcheck(redis_server["port"], "wrong") != 0


@pytest.mark.parametrize(
    "container, variable",
    [
        ("orders-api", "ORDERS_RATE_LIMIT_STORAGE"),
        ("payments-api", "PAYMENTS_RATE_LIMIT_STORAGE"),
    ],
)
def test_the_rate_limit_storage_reaches_redis_with_its_password(redis_server, container, variable):
    import redis
    from limits.storage import storage_from_string

    raw = SERVICES[container]["environment"][variable]
    url = substitute(raw, {"REDIS_PASSWORD": redis_server["password"]}).replace(
        "@redis:6379", f"@127.0.0.1:{redis_server['port']}"
    )
    assert redis.Redis.from_url(url).ping()
    assert storage_from_string(url).check()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=redis_server["port"]).ping()
