"""``coc-console reconcile``: the reconciliation of every order (what the Disagreements page
shows), one JSON line per disagreement, then a summary line; exit status 1 when there is any
(for a scheduler to alert on)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import timedelta

from ..adapters.services_client import StaffApiClient
from ..domain.model import Staff
from ..service_layer import reconciliation


def reconcile(runtime, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="coc-console reconcile")
    parser.add_argument(
        "--as", dest="name", default="console-reconcile", help="staff name the services record"
    )
    parser.add_argument("--settle-minutes", type=int, default=10, help="leave out recent changes")
    parser.add_argument("--page", type=int, default=reconciliation.PAGE, help="orders per call")
    args = parser.parse_args(argv)
    config = runtime.config
    client = StaffApiClient(
        config.service_urls, config.staff_token_private_key, config.http_timeout
    )
    result = reconciliation.reconcile(
        client,
        Staff(0, args.name, "support"),
        settle=timedelta(minutes=args.settle_minutes),
        page=args.page,
    )
    for found in result.disagreements:
        print(json.dumps({**asdict(found), "meaning": found.meaning}, ensure_ascii=False))
    summary = {
        "orders_checked": result.orders_checked,
        "orders_settling": result.orders_settling,
        "disagreements": len(result.disagreements),
    }
    print(json.dumps(summary))
    return 1 if result.disagreements else 0


COMMANDS = {"reconcile": reconcile}
