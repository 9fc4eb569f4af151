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


def sandboxes(data_dir: str) -> list[Sandbox]:
    """La Poste's tracking API, and the reference integration for each supplier of the directory
    (amqp: consuming its queue as its own broker user, when ``make run`` made the users; http:
    serving its endpoint and calling back), accepting after 2 s and issuing after 5 s."""
    with open(os.path.join(data_dir, SANDBOX_PORTS)) as f:
        ports = json.load(f)
    env = os.environ
    result = [
        Sandbox(
            "laposte",
            [
                "coc-laposte-sandbox",
                "--port",
                str(ports["laposte"]),
                "--deliver-after",
                "20",
            ],
            f"http://127.0.0.1:{ports['laposte']}/suivi/v2/idships/{{id}} (La Poste Suivi v2)",
            {"LAPOSTE_SANDBOX_KEY": env.get("SUPPLIER_GATEWAY_LAPOSTE_KEY", "")},
        )
    ]
    config = GatewayConfig.from_env()
    gateway = f"http://127.0.0.1:{env.get('SUPPLIER_GATEWAY_PORT', '8003')}"
    passwords_file = os.path.join(data_dir, "broker-passwords.json")
    passwords = {}
    if os.path.exists(passwords_file):
        with open(passwords_file) as f:
            passwords = json.load(f)
    from coc_shared.broker_users import broker_user, supplier_account, with_credentials

    prefix = env.get("BUS_PREFIX", "")
    admin = env.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672//"
    for supplier in config.directory.suppliers:
        key = supplier_key(config.supplier_secret or "", supplier.code, supplier.key_version)
        common = ["--supplier", supplier.code, "--accept-after", "2", "--issue-after", "5"]
        if supplier.ships_to_customer:
            common += ["--ships", "--ship-after", "3"]
        if supplier.channel == "http":
            result.append(
                Sandbox(
                    f"supplier {supplier.code}",
                    [
                        "coc-supplier-sandbox",
                        *common,
                        "--http-port",
                        str(ports[supplier.code]),
                        "--gateway-url",
                        gateway,
                    ],
                    f"{supplier.endpoint} (reference integration, http)",
                    {"COC_SUPPLIER_KEY": key},
                )
            )
            continue
        password = passwords.get(supplier_account(supplier.code))
        if password is None:
            continue  # no broker user here (embedded mode): the amqp supplier is not emulated
        url = with_credentials(
            admin, broker_user(prefix, supplier_account(supplier.code)), password
        )
        result.append(
            Sandbox(
                f"supplier {supplier.code}",
                ["coc-supplier-sandbox", *common, "--prefix", prefix],
                f"queue {prefix}coc.supplier.{supplier.code} (reference integration, amqp)",
                {
                    "COC_SUPPLIER_AMQP_URL": url,
                    "COC_SUPPLIER_KEY": key,
                    "COC_SUPPLIER_GATEWAY_URL": gateway,
                },
            )
        )
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
    commands={"supplier-key": supplier_key_command},
    development_defaults=development_defaults,
    sandboxes=sandboxes,
)
