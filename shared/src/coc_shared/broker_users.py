"""Who may publish what: one RabbitMQ user per service, limited by the broker to its own queues and
to the routing keys the catalogue says it produces.

Each service connects with its own user, ``{BUS_PREFIX}coc-{service}`` (``coc-orders`` in
production). Its permissions on the virtual host let it declare, bind and consume only its own
queues (``coc.{service}`` and their ``.retry.*`` and ``.dead`` companions), publish to the event
exchange and, for its delayed retries, to the default exchange; its *topic permission* on
``coc.events`` lets it publish only the event types it produces. Every message carries the
publisher's user in the ``user_id`` property, which RabbitMQ validates against the connection's
user; the consumer checks it against the catalogue (``consumer.ForgedEvent``). The support user
``coc-support`` may only publish to the default exchange (replays of parked messages) and publish
no event type.

The same description becomes RabbitMQ *definitions* (users with salted SHA-256 password hashes,
permissions, topic permissions): ``docker-compose`` loads them at the broker's start,
``make run`` and the tests import them with ``rabbitmqctl import_definitions``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import time

from .bus import EXCHANGE, SUPPLIER_REPLIES_EXCHANGE, SUPPLIERS_EXCHANGE
from .catalogue import all_event_types
from .config import SERVICE_NAMES, env, supplier_codes

SUPPORT = "support"
HASHING = "rabbit_password_hashing_sha256"


def broker_user(prefix: str, service: str) -> str:
    """The RabbitMQ user of ``service`` (or of the support tools, ``support``, or of a supplier's
    integration, ``supplier_account(code)``)."""
    return f"{prefix}coc-{service}"


SUPPLIER_ACCOUNT = "supplier-"


def supplier_account(code: str) -> str:
    """The account name of supplier ``code``'s integration (its user: ``coc-supplier-<code>``)."""
    return SUPPLIER_ACCOUNT + code


def supplier_of_account(account: str) -> str | None:
    """The supplier code of a supplier integration's account, else None."""
    if account.startswith(SUPPLIER_ACCOUNT) and account not in SERVICE_NAMES:
        return account[len(SUPPLIER_ACCOUNT) :]
    return None


def supplier_accounts() -> tuple[str, ...]:
    """The accounts of the suppliers' integrations (``BUS_SUPPLIER_CODES``)."""
    return tuple(supplier_account(c) for c in supplier_codes(env("BUS_SUPPLIER_CODES") or ""))


def produced_types(service: str) -> list[str]:
    """The event types the catalogue names ``service`` as producer of."""
    return sorted({e.type for e in all_event_types() if e.producer == service})


def permissions(prefix: str, service: str) -> dict:
    """configure / write / read regular expressions of ``service`` on the virtual host."""
    p = re.escape(prefix)
    events = f"{p}coc\\.events"
    requests = f"{p}{re.escape(SUPPLIERS_EXCHANGE)}"
    replies = f"{p}{re.escape(SUPPLIER_REPLIES_EXCHANGE)}"
    if service == SUPPORT:
        return {"configure": f"^{events}$", "write": f"^({events}|amq\\.default)$", "read": "^$"}
    code = supplier_of_account(service)
    if code is not None:  # a supplier's integration: its queue, its replies, nothing else
        return {
            "configure": "^$",
            "write": f"^{replies}$",
            "read": f"^{p}coc\\.supplier\\.{re.escape(code)}$",
        }
    own = f"{p}coc\\.{re.escape(service)}(\\..*)?"
    if service == "supplier-gateway":  # also the suppliers' exchanges and queues
        queues = f"{p}coc\\.supplier\\.[a-z0-9][a-z0-9-]*"
        return {
            "configure": f"^({events}|{own}|{requests}|{replies}|{queues})$",
            "write": f"^({events}|{own}|amq\\.default|{requests}|{queues})$",
            "read": f"^({events}|{own}|{requests}|{replies})$",
        }
    return {
        "configure": f"^({events}|{own})$",
        "write": f"^({events}|{own}|amq\\.default)$",
        "read": f"^({events}|{own})$",
    }


def topic_write(service: str) -> str:
    """The routing keys ``service`` may publish to the event exchange (none for support)."""
    types = [] if service == SUPPORT else produced_types(service)  # none for a supplier
    return "^(" + "|".join(re.escape(t) for t in types) + ")$" if types else "^$"


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's stored form of a password: base64(salt + SHA-256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(prefix: str, passwords: dict[str, str], vhost: str = "/") -> dict:
    """RabbitMQ definitions of the users in ``passwords`` (service -> password)."""
    users, perms, topics = [], [], []
    for service, password in sorted(passwords.items()):
        name = broker_user(prefix, service)
        users.append(
            {
                "name": name,
                "password_hash": password_hash(password),
                "hashing_algorithm": HASHING,
                "tags": "",
            }
        )
        perms.append({"user": name, "vhost": vhost, **permissions(prefix, service)})
        topics.append(
            {
                "user": name,
                "vhost": vhost,
                "exchange": prefix + EXCHANGE,
                "write": topic_write(service),
                "read": ".*",
            }
        )
        code = supplier_of_account(service)
        if code is not None:  # replies with its own code as routing key only
            topics.append(
                {
                    "user": name,
                    "vhost": vhost,
                    "exchange": prefix + SUPPLIER_REPLIES_EXCHANGE,
                    "write": f"^{re.escape(code)}$",
                    "read": ".*",
                }
            )
    return {"users": users, "permissions": perms, "topic_permissions": topics}


def all_services() -> tuple[str, ...]:
    """Every account with a broker user: the services, support, the suppliers' integrations."""
    return (*SERVICE_NAMES, SUPPORT, *supplier_accounts())


def import_definitions(defs: dict) -> None:
    """Load definitions into the local broker with ``rabbitmqctl`` (needs the node's Erlang cookie:
    root or the rabbitmq user on the broker's machine), through standard input (no file the
    broker's own user would have to read). The import is asynchronous: wait for the users before
    relying on them."""
    body = json.dumps(defs)
    for attempt in range(5):
        done = subprocess.run(
            ["rabbitmqctl", "import_definitions", "--format", "json"],
            input=body,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode == 0:
            return
        time.sleep(0.5 * (attempt + 1))  # another import may be running: try again shortly
    raise RuntimeError(f"rabbitmqctl import_definitions failed: {done.stderr or done.stdout}")


def delete_users(names: list[str]) -> None:
    for name in names:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True, timeout=60)


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` (amqp://host:port/vhost) with ``user`` and ``password`` instead of its own."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def password_variable(service: str) -> str:
    """The deployment variable holding a service's broker password (docker-compose's ``.env``)."""
    return f"RABBITMQ_{service.upper().replace('-', '_')}_PASSWORD"


def main(argv: list[str] | None = None) -> int:
    """``python -m coc_shared.broker_users definitions [--vhost /] > definitions.json``: the
    definitions of every service's user and the support user, passwords read from
    ``RABBITMQ_<SERVICE>_PASSWORD`` (e.g. ``RABBITMQ_SUPPLIER_GATEWAY_PASSWORD``); used by
    docker-compose's ``rabbitmq-definitions`` one-shot, which the broker then loads."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m coc_shared.broker_users")
    parser.add_argument("command", choices=["definitions"])
    parser.add_argument("--vhost", default="/")
    parser.add_argument("--prefix", default="")
    args = parser.parse_args(argv)
    passwords, missing = {}, []
    for service in all_services():
        value = os.environ.get(password_variable(service), "")
        if len(value) < 16:
            missing.append(password_variable(service))
        passwords[service] = value
    if missing:
        print(
            f"set these variables (16 characters at least): {', '.join(missing)}", file=sys.stderr
        )
        return 2
    json.dump(definitions(args.prefix, passwords, args.vhost), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
