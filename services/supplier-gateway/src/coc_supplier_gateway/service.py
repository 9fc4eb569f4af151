"""The supplier-gateway service as the shared runtime sees it: name, tables, migrations, handlers,
routes, its configuration, the broker declarations of the suppliers' exchanges and queues, its
worker loops (the senders, the replies' consumer, deadlines and tracking) and, for ``make run``,
its development defaults and sandboxes (the reference supplier integration for each supplier of
the directory, La Poste's tracking API)."""

from __future__ import annotations

import json
import os
import socket

from coc_shared.launcher import persistent_secret
from coc_shared.migrate import package_migrations
from coc_shared.service import Sandbox, ServiceDefinition

from .adapters.repository import DispatchRepository
from .adapters.tables import metadata
from .config import GatewayConfig, supplier_key
from .domain.directory import DEFAULT_PATH
from .entrypoints.routes import register_api
from .service_layer.dispatch import sender_loops
from .service_layer.follow_up import follow_up_loops
from .service_layer.handlers import handlers
from .service_layer.replies import ReplyConsumer


def topology(runtime, channel) -> None:
    """The suppliers' exchanges, a queue per amqp supplier, the gateway's replies queue."""
    directory = runtime.config.directory
    runtime.broker.declare_suppliers(channel, directory.codes_of("amqp"), directory.codes)


def loops(runtime) -> dict:
    replies = ReplyConsumer(runtime)
    runtime.reply_consumer = replies
    return {**sender_loops(runtime), "replies": replies.run, **follow_up_loops(runtime)}


def backlogs(runtime) -> dict:
    """``/metrics``' coc_sender_backlog: the requests and resends the senders have still to send
    to the suppliers."""

    def supplier_requests() -> int:
        with runtime.unit_of_work() as uow:
            return DispatchRepository(uow).count_unsent()

    return {"supplier-requests": supplier_requests}


def supplier_key_command(runtime, argv: list[str]) -> int:
    """``coc-supplier-gateway supplier-key <code>``: the HMAC key to give supplier ``code``."""
    if len(argv) != 1 or runtime.config.directory.get(argv[0]) is None:
        print(
            f"usage: coc-supplier-gateway supplier-key <{'|'.join(runtime.config.directory.codes)}>"
        )
        return 2
    key = runtime.config.key_of(argv[0])
    if key is None:
        print("SUPPLIER_GATEWAY_SUPPLIER_SECRET is not set")
        return 2
    print(key)
    return 0


# --------------------------------------------------------------------------- make run
SANDBOX_PORTS = "supplier-sandbox-ports.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def development_defaults(data_dir: str) -> dict[str, str]:
    """A developer's machine: keys generated once under ``data_dir``, certificates in a local
    folder, a copy of the directory whose http suppliers are the sandboxes on this run's ports, and
    La Poste's tracking API emulated (a key of its own, a look every 5 seconds)."""
    with open(DEFAULT_PATH, encoding="utf-8") as f:
        directory = json.load(f)
    ports = {"laposte": _free_port()}
    for supplier in directory["suppliers"]:
        if supplier["channel"] == "http":
            ports[supplier["code"]] = _free_port()
            supplier["endpoint"] = f"http://127.0.0.1:{ports[supplier['code']]}/coc/requests"
    path = os.path.join(data_dir, "supplier-directory.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(directory, f, indent=2, ensure_ascii=False)
    with open(os.path.join(data_dir, SANDBOX_PORTS), "w") as f:
        json.dump(ports, f)
    return {
        "SUPPLIER_GATEWAY_DIRECTORY_PATH": path,
        "SUPPLIER_GATEWAY_SUPPLIER_SECRET": persistent_secret(
            os.path.join(data_dir, "supplier-master.secret"), 32
        ),
        # the same file as the orders service's ORDERS_DOCUMENT_LINK_SECRET
        "SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET": persistent_secret(
            os.path.join(data_dir, "document-link.secret"), 32
        ),
        "SUPPLIER_GATEWAY_CERTIFICATE_KEY": persistent_secret(
            os.path.join(data_dir, "supplier-certificate.key"), 32
        ),
        "SUPPLIER_GATEWAY_CERTIFICATE_STORE": "local",
        "SUPPLIER_GATEWAY_CERTIFICATES_DIR": os.path.join(data_dir, "supplier-certificates"),
        "SUPPLIER_GATEWAY_LAPOSTE_URL": f"http://127.0.0.1:{ports['laposte']}",
        "SUPPLIER_GATEWAY_LAPOSTE_KEY": persistent_secret(
            os.path.join(data_dir, "laposte-sandbox.key"), 24
        ),
        "SUPPLIER_GATEWAY_TRACKING_POLL_SECONDS": "5",
    }


def _secret_file(data_dir: str, name: str, value: str) -> str:
    """``value`` in a file of its own (mode 600) under ``data_dir``: a sandbox reads its secrets
    from files, never from its command line."""
    path = os.path.join(data_dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return path


def sandboxes(data_dir: str) -> list[Sandbox]:
    """La Poste's tracking API, and the reference integration for each supplier of the directory
    (amqp: consuming its queue as its own broker user, when ``make run`` made the users; http:
    serving its endpoint and calling back), accepting after 2 s and issuing after 5 s."""
    from coc_shared.broker_users import broker_user, supplier_account, with_credentials
    from coc_shared.config import env

    with open(os.path.join(data_dir, SANDBOX_PORTS)) as f:
        ports = json.load(f)
    config = GatewayConfig.from_env()
    result = [
        Sandbox(
            "laposte",
            [
                "coc-laposte-sandbox",
                "--port",
                str(ports["laposte"]),
                "--deliver-after",
                "20",
                "--key-file",
                _secret_file(data_dir, "laposte-sandbox.key.current", config.laposte_key or ""),
            ],
            f"http://127.0.0.1:{ports['laposte']}/suivi/v2/idships/{{id}} (La Poste Suivi v2)",
        )
    ]
    gateway = f"http://127.0.0.1:{env('SUPPLIER_GATEWAY_PORT')}"
    passwords_file = os.path.join(data_dir, "broker-passwords.json")
    passwords = {}
    if os.path.exists(passwords_file):
        with open(passwords_file) as f:
            passwords = json.load(f)
    prefix = env("BUS_PREFIX") or ""
    for supplier in config.directory.suppliers:
        key = supplier_key(config.supplier_secret or "", supplier.code, supplier.key_version)
        command = [
            "coc-supplier-sandbox",
            "--supplier",
            supplier.code,
            "--accept-after",
            "2",
            "--issue-after",
            "5",
            "--gateway-url",
            gateway,
            "--key-file",
            _secret_file(data_dir, f"supplier-{supplier.code}.key", key),
        ]
        if supplier.ships_to_customer:
            command += ["--ships", "--ship-after", "3"]
        if supplier.channel == "http":
            command += ["--http-port", str(ports[supplier.code])]
            where = f"{supplier.endpoint} (reference integration, http)"
        else:
            password = passwords.get(supplier_account(supplier.code))
            if password is None:
                continue  # no broker user here (embedded mode): the amqp supplier is not emulated
            url = with_credentials(
                env("RABBITMQ_URL"), broker_user(prefix, supplier_account(supplier.code)), password
            )
            command += [
                "--prefix",
                prefix,
                "--amqp-url-file",
                _secret_file(data_dir, f"supplier-{supplier.code}.amqp", url),
            ]
            where = f"queue {prefix}coc.supplier.{supplier.code} (reference integration, amqp)"
        result.append(Sandbox(f"supplier {supplier.code}", command, where))
    return result


definition = ServiceDefinition(
    name="supplier-gateway",
    metadata=metadata,
    migrations=package_migrations(__file__),
    handlers=handlers,
    register_api=register_api,
    config=GatewayConfig.from_env,
    topology=topology,
    loops=loops,
    backlogs=backlogs,
    commands={"supplier-key": supplier_key_command},
    development_defaults=development_defaults,
    sandboxes=sandboxes,
)
