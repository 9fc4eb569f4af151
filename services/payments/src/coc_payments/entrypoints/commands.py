"""Service-specific commands of ``coc-payments`` (``ServiceDefinition.commands``)::

    coc-payments import-camt053 FILE
    coc-payments verify-invoices
    coc-payments export-fec --from YYYY-MM-DD --to YYYY-MM-DD [--output DIR]

``verify-invoices`` reads every invoice and credit note back and checks the series (numbers
without gap, digests, chain, counters): exit 0 when intact, 1 with the problems listed (JSON).
``export-fec`` writes the FEC file of a period, named ``<SIREN>FEC<YYYYMMDD>.txt``, into DIR
(default: the current folder) and prints its name and totals. Both need the staff token too.

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


def _staff(runtime):
    try:
        return verify_staff_token(
            runtime.settings.staff_token_public_key,
            env("STAFF_TOKEN"),
            audience=runtime.settings.service,
            revoked=runtime.parking.token_revoked,
        )
    except TokenError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return None


def verify_invoices(runtime, argv: list[str]) -> int:
    from ..service_layer.invoicing import verify_series

    argparse.ArgumentParser(prog="coc-payments verify-invoices").parse_args(argv)
    actor = _staff(runtime)
    if actor is None:
        return 2
    report = verify_series(runtime, runtime.config.billing()[1])
    runtime.parking.record_action(
        actor, "verify_invoices", None, None, {"service": "payments", "ok": report.ok}
    )
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.ok else 1


def export_fec(runtime, argv: list[str]) -> int:
    from datetime import date

    from ..service_layer.accounting import export_fec as export

    parser = argparse.ArgumentParser(prog="coc-payments export-fec")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    parser.add_argument("--output", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    actor = _staff(runtime)
    if actor is None:
        return 2
    result = export(runtime, runtime.config, args.first, args.last)
    path = args.output / result.name
    path.write_bytes(result.text.encode("utf-8"))
    runtime.parking.record_action(
        actor, "export_fec", result.name, None, {"service": "payments", "from": str(args.first)}
    )
    lines = [line for entry in result.entries for line in entry.lines]
    print(
        json.dumps(
            {
                "file": str(path),
                "entries": len(result.entries),
                "debit_cents": sum(x.debit for x in lines),
                "credit_cents": sum(x.credit for x in lines),
            }
        )
    )
    return 0


COMMANDS = {
    "import-camt053": import_camt053,
    "verify-invoices": verify_invoices,
    "export-fec": export_fec,
}
