"""Service-specific commands of ``coc-payments`` (``ServiceDefinition.commands``)::

    coc-payments import-camt053 FILE

Support staff import a bank statement (ISO 20022 camt.053): booked credits are matched to orders
by their RF reference, as the bank's webhook is. The staff token is read from ``STAFF_TOKEN`` (as
for ``coc-support``); prints a JSON summary. Exit codes: 0 imported, 1 not a camt.053 statement,
2 refused (no or a bad staff token).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from coc_shared.config import env
from coc_shared.tokens import TokenError, verify_staff_token


def import_camt053(runtime, argv: list[str]) -> int:
    from ..adapters.bank import StatementError, parse_camt053
    from ..domain.masking import mask_card_numbers_in_body
    from ..service_layer.context import Payments
    from ..service_layer.statements import import_statement

    parser = argparse.ArgumentParser(prog="coc-payments import-camt053")
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        actor = verify_staff_token(
            runtime.settings.staff_token_public_key,
            env("STAFF_TOKEN"),
            audience=runtime.settings.service,
            revoked=runtime.parking.token_revoked,
        )
    except TokenError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    raw = args.file.read_bytes()
    try:
        credits = parse_camt053(raw)
    except StatementError as exc:
        print(json.dumps({"error": f"not a camt.053 statement: {exc}"}), file=sys.stderr)
        return 1
    summary = import_statement(
        Payments.of(runtime),
        credits,
        mask_card_numbers_in_body(raw),
        staff=actor.name,
        filename=args.file.name,
    )
    print(json.dumps(summary.as_dict(), indent=2))
    return 0


COMMANDS = {"import-camt053": import_camt053}
