"""``coc-support``: the support staff's command line for parked messages, and the admin commands
that make keys and issue and revoke staff tokens.

    coc-support keygen                                    a new Ed25519 key pair (admin, once)
    coc-support issue-token --name alice --role support [--hours 8] [--service orders ...]
                                                          (needs STAFF_TOKEN_PRIVATE_KEY)
    coc-support revoke-token JTI --reason "why"           (an admin's STAFF_TOKEN)
    coc-support parked list [--service S] [--type T] [--error TEXT] [--order ID]
                            [--status parked|replayed|discarded]
    coc-support parked show ID
    coc-support parked replay ID [ID ...] --reason "why"
        |   parked replay --all-matching [filters] --reason "why"
    coc-support parked discard ID --reason "why"

Every ``parked`` and ``revoke-token`` command needs a staff token for ``ops`` (``--token`` or
``STAFF_TOKEN``) verified with ``STAFF_TOKEN_PUBLIC_KEY`` and not revoked; the staff member's
name from the token is recorded with every action. The broker account the command line uses
(``RABBITMQ_URL``) is the support user, which may only send parked messages back to their queue.
Output is JSON, one document per command, so other tools can read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from . import keystore
from .bus import Broker, Publisher
from .config import Settings, env
from .db import make_engine
from .logging import configure_logging
from .parking import ParkingStore, parked_to_json
from .tables import OPS_SCHEMA
from .tokens import (
    MAX_STAFF_TOKEN_HOURS,
    STAFF_AUDIENCES,
    Actor,
    TokenError,
    issue_staff_token,
    new_staff_keys,
    verify_staff_token,
)


def _print(doc) -> None:
    json.dump(doc, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coc-support", description="Support tools of the COC pipeline"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("keygen", help="a new Ed25519 key pair for staff tokens (admin)")
    issue = sub.add_parser("issue-token", help="issue a staff bearer token (admin)")
    issue.add_argument("--name", required=True)
    issue.add_argument("--role", required=True, choices=["support", "admin"])
    issue.add_argument(
        "--hours", type=float, default=8.0, help=f"lifetime, at most {MAX_STAFF_TOKEN_HOURS}"
    )
    issue.add_argument(
        "--service",
        dest="services",
        action="append",
        choices=STAFF_AUDIENCES,
        help="a service the token is for (repeat; default: all)",
    )
    revoke = sub.add_parser("revoke-token", help="revoke a staff token by its id (admin)")
    revoke.add_argument("jti")
    revoke.add_argument("--reason", required=True)
    revoke.add_argument("--token", help="an admin's staff bearer token (default: $STAFF_TOKEN)")

    parked = sub.add_parser("parked", help="inspect, replay or discard parked messages")
    parked.add_argument("--token", help="staff bearer token (default: $STAFF_TOKEN)")
    psub = parked.add_subparsers(dest="action", required=True)

    def filters(p):
        p.add_argument("--service")
        p.add_argument("--type", dest="event_type")
        p.add_argument("--error", help="text found in the error type or message")
        p.add_argument("--order", dest="order_id")
        p.add_argument("--status", default="parked", choices=["parked", "replayed", "discarded"])
        p.add_argument("--limit", type=int, default=100)

    filters(psub.add_parser("list", help="list parked messages"))
    show = psub.add_parser("show", help="show one parked message, body and stack trace included")
    show.add_argument("id", type=int)
    replay = psub.add_parser("replay", help="send parked messages back to their original queue")
    replay.add_argument("ids", type=int, nargs="*")
    replay.add_argument(
        "--all-matching", action="store_true", help="replay every message matching the filters"
    )
    filters(replay)
    replay.add_argument("--reason", required=True)
    discard = psub.add_parser("discard", help="give up a parked message, with a reason")
    discard.add_argument("id", type=int)
    discard.add_argument("--reason", required=True)
    return parser


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings or Settings.from_env("support")
    configure_logging("support", settings.log_level)
    engine = make_engine(settings.parking_database_url, schemas=(OPS_SCHEMA,))
    store = ParkingStore(engine, keys=keystore.from_settings(engine, settings))
    try:
        if args.command == "keygen":
            private, public = new_staff_keys()
            _print({"STAFF_TOKEN_PRIVATE_KEY": private, "STAFF_TOKEN_PUBLIC_KEY": public})
            return 0
        if args.command == "issue-token":
            issued = issue_staff_token(
                env("STAFF_TOKEN_PRIVATE_KEY"),
                args.name,
                args.role,
                timedelta(hours=args.hours),
                audience=args.services or STAFF_AUDIENCES,
            )
            _print(
                {
                    "token": issued.token,
                    "jti": issued.jti,
                    "name": args.name,
                    "role": args.role,
                    "services": list(issued.audience),
                    "expires_at": issued.expires_at.isoformat(),
                }
            )
            return 0
        roles = ("admin",) if args.command == "revoke-token" else ("support", "admin")
        actor = verify_staff_token(
            settings.staff_token_public_key,
            args.token or env("STAFF_TOKEN"),
            audience="ops",
            roles=roles,
            revoked=store.token_revoked,
        )
        if args.command == "revoke-token":
            newly = store.revoke_token(args.jti, actor, args.reason)
            _print({"jti": args.jti, "revoked": True, "already_revoked": not newly})
            return 0
    except TokenError as exc:
        _print({"error": str(exc)})
        return 3
    except ValueError as exc:
        _print({"error": str(exc)})
        return 2

    filters = {
        k: getattr(args, k, None) for k in ("service", "event_type", "error", "order_id", "status")
    }
    if args.action == "list":
        rows = store.list(limit=args.limit, **filters)
        store.record_action(actor, "list", None, None, {k: v for k, v in filters.items() if v})
        _print({"count": len(rows), "items": [parked_to_json(r) for r in rows]})
        return 0
    if args.action == "show":
        row = store.get(args.id)
        if row is None:
            _print({"error": f"no parked message {args.id}"})
            return 4
        store.record_action(actor, "show", str(args.id), None)
        _print(parked_to_json(row, include_body=True, keys=store.keys))
        return 0
    if args.action == "discard":
        try:
            _print(store.discard(args.id, actor, args.reason))
        except (LookupError, ValueError) as exc:
            _print({"error": str(exc)})
            return 4
        return 0
    return _replay(args, settings, store, actor, filters)


def _replay(
    args: argparse.Namespace, settings: Settings, store: ParkingStore, actor: Actor, filters: dict
) -> int:
    """``parked replay``: the named messages, and with --all-matching those the filters match."""
    ids = list(args.ids)
    if args.all_matching:
        ids += [r["id"] for r in store.list(limit=args.limit, **filters)]
    if not ids:
        _print({"error": "name the parked message ids to replay, or --all-matching with filters"})
        return 2
    publisher = Publisher(
        Broker(
            settings.rabbitmq_url,
            settings.bus_prefix,
            settings.delivery_limit,
            ca_file=settings.rabbitmq_ca_file,
        )
    )
    results, failed = [], 0
    try:
        for parked_id in dict.fromkeys(ids):
            try:
                results.append(store.replay(parked_id, publisher, actor, args.reason))
            except (LookupError, ValueError) as exc:
                failed += 1
                results.append({"id": parked_id, "error": str(exc)})
    finally:
        publisher.close()
    _print({"replayed": len(results) - failed, "failed": failed, "results": results})
    return 0 if failed == 0 else 4


if __name__ == "__main__":
    sys.exit(main())
