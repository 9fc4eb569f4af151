"""``coc-support``: the support staff's command line for parked messages, and the admin command
that issues staff tokens.

    coc-support issue-token --name alice --role support [--hours 8]     (needs STAFF_TOKEN_SECRET)
    coc-support parked list [--service S] [--type T] [--error TEXT] [--order ID]
                            [--status parked|replayed|discarded]
    coc-support parked show ID
    coc-support parked replay ID [ID ...] --reason "why"
        |   parked replay --all-matching [filters] --reason "why"
    coc-support parked discard ID --reason "why"

Every ``parked`` command needs a staff token (``--token`` or ``STAFF_TOKEN``) verified with
``STAFF_TOKEN_SECRET``; the staff member's name from the token is recorded with every action.
Output is JSON, one document per command, so other tools can read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from .bus import Broker, Publisher
from .config import Settings, env
from .db import make_engine
from .logging import configure_logging
from .parking import ParkingStore, parked_to_json
from .tables import OPS_SCHEMA
from .tokens import Actor, TokenError, issue_staff_token, verify_staff_token


def _print(doc) -> None:
    json.dump(doc, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coc-support", description="Support tools of the COC pipeline"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    issue = sub.add_parser("issue-token", help="issue a staff bearer token (admin)")
    issue.add_argument("--name", required=True)
    issue.add_argument("--role", required=True, choices=["support", "admin"])
    issue.add_argument("--hours", type=float, default=8.0)

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
    try:
        if args.command == "issue-token":
            token = issue_staff_token(
                settings.staff_token_secret, args.name, args.role, timedelta(hours=args.hours)
            )
            _print(
                {
                    "token": token,
                    "name": args.name,
                    "role": args.role,
                    "expires_in_hours": args.hours,
                }
            )
            return 0
        actor = verify_staff_token(settings.staff_token_secret, args.token or env("STAFF_TOKEN"))
    except TokenError as exc:
        _print({"error": str(exc)})
        return 3
    except ValueError as exc:
        _print({"error": str(exc)})
        return 2

    store = ParkingStore(make_engine(settings.parking_database_url, schemas=(OPS_SCHEMA,)))
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
        _print(parked_to_json(row, include_body=True))
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
        Broker(settings.rabbitmq_url, settings.bus_prefix, settings.delivery_limit)
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
