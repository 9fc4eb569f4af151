"""``coc-payments migrate | api | worker | consume | relay`` (the shared runtime's commands), and

``coc-payments import-camt053 FILE`` — support staff import a bank statement (ISO 20022 camt.053):
booked credits are matched to orders by their RF reference, as the bank's webhook is. The staff
token is read from ``STAFF_TOKEN`` (as for ``coc-support``); prints a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import coc_shared.service
from coc_shared.auth import StaffAuthError, verify_staff_token
from coc_shared.config import env
from coc_shared.logging import configure_logging

from ..service import definition


def import_camt053(argv: list[str]) -> int:
    from ..adapters.bank import StatementError, parse_camt053
    from ..domain.masking import mask_card_numbers
    from ..service_layer.payments import import_statement

    parser = argparse.ArgumentParser(prog="coc-payments import-camt053")
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    runtime = coc_shared.service.Runtime(definition)
    configure_logging(definition.name, runtime.settings.log_level)
    try:
        actor = verify_staff_token(runtime.settings.staff_token_secret, env("STAFF_TOKEN"))
    except StaffAuthError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    raw = args.file.read_bytes()
    try:
        credits = parse_camt053(raw)
    except StatementError as exc:
        print(json.dumps({"error": f"not a camt.053 statement: {exc}"}), file=sys.stderr)
        return 1
    summary = import_statement(runtime, credits, mask_card_numbers(raw.decode("utf-8", "replace")),
                               staff=actor.name, filename=args.file.name)
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "import-camt053":
        sys.exit(import_camt053(argv[1:]))
    sys.exit(coc_shared.service.main(definition, argv))


if __name__ == "__main__":
    main()
