"""The invoice archive's own command line, run with the archive role's connection
(``DATABASE_URL`` of the ``archive`` role; docker compose: the ``archive-migrate`` one-shot and
the ``archive`` tool)::

    python -m coc_payments.entrypoints.archive migrate --writer-role ROLE
    python -m coc_payments.entrypoints.archive list [--order-id ID] [--buyer TEXT]
    python -m coc_payments.entrypoints.archive show NUMBER
    python -m coc_payments.entrypoints.archive pdf NUMBER --output FILE
    python -m coc_payments.entrypoints.archive verify
    python -m coc_payments.entrypoints.archive purge [--today YYYY-MM-DD] [--every-hours H]
    python -m coc_payments.entrypoints.archive purge-alive

``migrate`` creates or upgrades the ``archive`` schema as its owner, then lets ROLE (payments')
add documents and nothing else (``ARCHIVE_GRANTS``). ``list`` prints the archived documents
(without data nor PDF) as JSON lines, ``show`` one document's columns and data, ``pdf`` writes
its Factur-X PDF, ``verify`` re-hashes every archived document against the digests of the chain
(exit 1 with the problems), ``purge`` deletes the documents whose retention ended (the
schedule's end for them; safe to run twice). With ``--every-hours`` it does so at once, then
every H hours until SIGTERM: docker compose's long-running ``archive-purge`` container, so the
end is applied without anyone remembering it; each round is a JSON line and renews a heartbeat
file that ``purge-alive`` (its healthcheck) reads. An auditor's tool otherwise: payments' own role
may not read the archive.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from coc_shared.config import env
from coc_shared.db import make_engine
from coc_shared.logging import configure_logging, get_logger
from coc_shared.migrate import grant_ops_rights, upgrade

from ..adapters.archive import ArchiveReader
from ..adapters.archive_tables import ARCHIVE_GRANTS, ARCHIVE_MIGRATIONS, ARCHIVE_SCHEMA
from ..service_layer.archiving import archived_problems

log = get_logger("payments-archive")
# where the purge loop tells its healthcheck it is alive (the container's own /tmp)
HEARTBEAT = os.path.join("/tmp", "coc-archive-purge.json")
HEARTBEAT_GRACE = timedelta(hours=1)  # a round may take a while past its due time


def _json(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _print(value) -> None:
    print(json.dumps(value, default=_json, ensure_ascii=False, sort_keys=True))


def migrate(engine, args) -> int:
    upgrade(engine, ARCHIVE_MIGRATIONS, ARCHIVE_SCHEMA)
    if args.writer_role and engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            grant_ops_rights(conn, {"writer": args.writer_role}, ARCHIVE_SCHEMA, ARCHIVE_GRANTS)
    _print({"migrated": ARCHIVE_SCHEMA, "writer": args.writer_role})
    return 0


def list_documents(engine, args) -> int:
    with engine.connect() as conn:
        for row in ArchiveReader(conn).listed(args.order_id, args.buyer):
            _print(row)
    return 0


def show(engine, args) -> int:
    with engine.connect() as conn:
        row = ArchiveReader(conn).get(args.number)
    if row is None:
        print(json.dumps({"error": f"no archived document {args.number}"}), file=sys.stderr)
        return 1
    row.pop("pdf")
    _print(row)
    return 0


def pdf(engine, args) -> int:
    with engine.connect() as conn:
        row = ArchiveReader(conn).get(args.number)
    if row is None:
        print(json.dumps({"error": f"no archived document {args.number}"}), file=sys.stderr)
        return 1
    args.output.write_bytes(bytes(row["pdf"]))
    _print({"number": args.number, "pdf": str(args.output), "pdf_sha256": row["pdf_sha256"]})
    return 0


def verify(engine, args) -> int:
    with engine.connect() as conn:
        rows = ArchiveReader(conn).all()
    problems = [
        {"number": row["number"], "problem": problem}
        for row in rows
        for problem in archived_problems(row)
    ]
    _print({"ok": not problems, "checked": len(rows), "problems": problems})
    return 1 if problems else 0


def purge_round(engine, today: date) -> dict:
    """One purge: the documents whose retention ended before ``today`` deleted, in one
    transaction; ``{"deleted": n, "numbers": [...]}``."""
    with engine.begin() as conn:
        archive = ArchiveReader(conn)
        numbers = archive.expired(today)
        deleted = archive.delete(numbers)
    return {"deleted": deleted, "numbers": numbers}


def purge_loop(
    engine, every: timedelta, stop: threading.Event, today=None, heartbeat=None, report=_print
):
    """A purge at once, then one every ``every`` until ``stop`` is set; a round that fails (the
    database is down) is tried again at the next one. Each round done goes to ``report``, and
    renews the ``heartbeat`` file with the time by which the next one is due."""
    while True:
        try:
            result = purge_round(engine, today or date.today())
        except SQLAlchemyError as exc:
            log.warning("archive.purge_failed", error_type=type(exc).__name__)
        else:
            if heartbeat:
                due = datetime.now(UTC) + every + HEARTBEAT_GRACE
                Path(heartbeat).write_text(json.dumps({"next_by": due.isoformat()}))
            report(result)
        if stop.wait(every.total_seconds()):
            return


def purge(engine, args) -> int:
    if args.every_hours is None:
        _print(purge_round(engine, args.today or date.today()))
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    every = timedelta(hours=args.every_hours)
    purge_loop(engine, every, stop, today=args.today, heartbeat=args.heartbeat)
    return 0


def purge_alive(engine, args) -> int:
    """0 while the purge loop's last round is recent enough (its heartbeat's next_by ahead)."""
    try:
        next_by = datetime.fromisoformat(json.loads(Path(args.heartbeat).read_text())["next_by"])
    except (OSError, ValueError, KeyError) as exc:
        print(json.dumps({"alive": False, "error": str(exc)}))
        return 1
    alive = datetime.now(UTC) <= next_by
    print(json.dumps({"alive": alive, "next_by": next_by.isoformat()}))
    return 0 if alive else 1


def _hours(value: str) -> float:
    hours = float(value)
    if not 0 < hours <= 24 * 366:
        raise argparse.ArgumentTypeError("hours between 0 and a year")
    return hours


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="python -m coc_payments.entrypoints.archive")
    commands = main_parser.add_subparsers(dest="command", required=True)
    migrating = commands.add_parser("migrate", help="create or upgrade the archive schema")
    migrating.add_argument("--writer-role", help="the role that may add documents (payments')")
    migrating.set_defaults(run=migrate)
    listing = commands.add_parser("list", help="the archived documents (JSON lines)")
    listing.add_argument("--order-id")
    listing.add_argument("--buyer", help="part of the buyer's name")
    listing.set_defaults(run=list_documents)
    showing = commands.add_parser("show", help="one archived document and its data")
    showing.add_argument("number")
    showing.set_defaults(run=show)
    exporting = commands.add_parser("pdf", help="write one archived document's PDF")
    exporting.add_argument("number")
    exporting.add_argument("--output", type=Path, required=True)
    exporting.set_defaults(run=pdf)
    commands.add_parser("verify", help="re-hash every archived document").set_defaults(run=verify)
    purging = commands.add_parser("purge", help="delete the documents whose retention ended")
    purging.add_argument("--today", type=date.fromisoformat, help="default: today")
    purging.add_argument(
        "--every-hours", type=_hours, help="purge now, then every H hours until SIGTERM"
    )
    purging.add_argument("--heartbeat", default=HEARTBEAT, help="the loop's heartbeat file")
    purging.set_defaults(run=purge)
    alive = commands.add_parser("purge-alive", help="is the purge loop alive (its healthcheck)")
    alive.add_argument("--heartbeat", default=HEARTBEAT)
    alive.set_defaults(run=purge_alive)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging("payments-archive", env("LOG_LEVEL"))
    engine = make_engine(env("DATABASE_URL"), schemas=(ARCHIVE_SCHEMA,))
    try:
        return args.run(engine, args)
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
