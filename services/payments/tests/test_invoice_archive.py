"""The invoice archive (issue 13: "retained invoice data moves to an archive schema readable only
by an archive role"): an erased account's invoices and credit notes are copied to
``archive.invoices`` with the buyer's details, plain JSON and PDF and their digests, and leave the
active base (data and PDF emptied: the one change the immutability trigger allows); the series
still verifies; payments serves them no more, refunds a duplicate payment of it, refuses a credit
note of it (its buyer is in the archive only), and goes on for everyone else (credit notes, FEC).
On this run's PostgreSQL (and the trigger on SQLite too)."""

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from payments_testkit import (
    BUYERS,
    FORM,
    INVOICE_KEY,
    billing_rows,
    form_body,
    issue_from_outbox,
    order_placed,
    outbox_events,
    paid,
    record_order,
    systempay_ipn,
)
from sqlalchemy import func, select, text

from coc_payments.adapters import tables
from coc_payments.adapters.archive_tables import invoices as archived
from coc_payments.domain.billing import canonical, chain_digest
from coc_payments.entrypoints.archive import purge_loop
from coc_payments.service_layer.accounting import export_fec
from coc_payments.service_layer.archiving import InvoicesNotIssuedYet
from coc_payments.service_layer.invoicing import issue_pending, verify_series
from coc_shared.db import make_engine
from coc_shared.envelope import Event
from coc_shared.testing import handle, staff_headers, wait_until

KEY = base64.b64decode(INVOICE_KEY)
SUPPORT = staff_headers("carol", "support")


def paid_by(runtime, client, account_id: str) -> dict:
    """An order of the account paid by card, its invoice issued."""
    event, _ = order_placed("card", 24900, account_id=account_id)
    record_order(runtime, event)
    answer = client.post(
        "/v1/callbacks/systempay",
        data=form_body(systempay_ipn(event.data["order_number"], 24900)),
        headers=FORM,
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    issue_from_outbox(runtime, event.data["order_id"])
    return event.data


def refund(client, order_id: str, reason: str = "cancelled_after_payment"):
    return client.post(
        "/v1/staff/refunds",
        json={"order_id": order_id, "reason": reason, "note": "accord du responsable"},
        headers=SUPPORT,
    )


def erasure(account_id: str) -> Event:
    return Event(
        type="account.erasure_requested",
        producer="gdpr",
        correlation_id=account_id,
        subject=account_id,
        data={
            "request_id": str(uuid.uuid4()),
            "account_id": account_id,
            "requested_at": datetime.now(UTC).isoformat(),
        },
    )


def archive_rows(runtime, order_id: str) -> list[dict]:
    t = archived
    with runtime.engine.connect() as conn:
        query = select(t).where(t.c.order_id == order_id).order_by(t.c.kind, t.c.seq)
        return [dict(r._mapping) for r in conn.execute(query)]


def test_an_erased_accounts_invoices_move_to_the_archive_and_the_series_still_verifies(
    runtime, client, fake_systempay_api
):
    account = str(uuid.uuid4())
    first = paid_by(runtime, client, account)
    second = paid_by(runtime, client, account)
    assert refund(client, first["order_id"]).get_json()["status"] == "completed"
    someone_else, _ = paid(runtime, client, "card", 24900)
    before = {
        r["number"]: r
        for order in (first, second)
        for kind in ("invoice", "credit_note")
        for r in billing_rows(runtime, kind, order["order_id"])
    }
    assert len(before) == 3

    handle(runtime, erasure(account))

    # the archive: every document, its buyer's details as columns, plain data and PDF whose
    # digests are the active series' ones
    rows = archive_rows(runtime, first["order_id"]) + archive_rows(runtime, second["order_id"])
    assert {r["number"] for r in rows} == set(before)
    buyer = BUYERS["private"]
    for row in rows:
        active = before[row["number"]]
        assert buyer["last_name"] in row["buyer_name"]
        assert row["billing_address"]["line1"]
        assert hashlib.sha256(canonical(row["data"])).hexdigest() == row["data_sha256"]
        assert hashlib.sha256(row["pdf"]).hexdigest() == row["pdf_sha256"]
        assert (
            row["chain_sha256"]
            == active["chain_sha256"]
            == chain_digest(
                row["previous_sha256"], row["number"], row["data_sha256"], row["pdf_sha256"]
            )
        )
        assert row["retained_until"] == date(row["issued_at"].year + 10, 12, 31)
        assert (
            row["order_number"]
            == (first if row["order_id"] == first["order_id"] else second)["order_number"]
        )
    [note] = [r for r in rows if r["kind"] == "credit_note"]
    assert note["corrects_number"] in before
    # the active base: number, amounts and digests stay; data and PDF gone; the sales too
    for number, active in before.items():
        (now,) = [r for r in billing_rows(runtime, active["kind"]) if r["number"] == number]
        assert (now["data"], now["pdf"]) == (None, None) and now["archived_at"] is not None
        for column in ("total_cents", "data_sha256", "pdf_sha256", "chain_sha256", "issued_at"):
            assert now[column] == active[column]
    with runtime.engine.connect() as conn:
        sales = conn.execute(
            select(func.count()).where(tables.sales.c.account_id == account)
        ).scalar_one()
    assert sales == 0
    report = verify_series(runtime, KEY)
    assert report.ok, report.problems

    # a second request (or a redelivery) changes nothing
    handle(runtime, erasure(account))
    assert len(archive_rows(runtime, first["order_id"])) == 2
    assert verify_series(runtime, KEY).ok

    # payments serves them no more, and refuses a credit note of an archived invoice
    number = next(n for n, r in before.items() if r["order_id"] == second["order_id"])
    assert client.get(f"/v1/staff/invoices/{number}.pdf", headers=SUPPORT).status_code == 404
    assert refund(client, second["order_id"]).status_code == 409
    # everyone else: a credit note and the FEC of the period (the erased buyer named by the order)
    assert refund(client, someone_else["order_id"]).get_json()["status"] == "completed"
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    export = export_fec(runtime, runtime.config, today - timedelta(days=1), today)
    assert f"Client {first['order_number']}" in export.text
    assert verify_series(runtime, KEY).ok


CHANGES = {
    "another column changed with it": "data = NULL, pdf = NULL, archived_at = :now, "
    "total_cents = 1",
    "the data kept": "pdf = NULL, archived_at = :now",
    "no archiving date": "data = NULL, pdf = NULL",
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_the_trigger_allows_only_the_move_to_the_archive(any_runtime, change):
    runtime = any_runtime
    client = runtime.create_app().test_client()
    order, _ = paid(runtime, client, "card", 24900)
    (invoice,) = billing_rows(runtime, "invoice", order["order_id"])
    where = " WHERE number = :n"
    now = datetime.now(UTC)
    with runtime.engine.connect() as conn:
        with pytest.raises(Exception, match="never changed"):
            with conn.begin():
                conn.execute(
                    text(f"UPDATE payments.billing_documents SET {CHANGES[change]}{where}"),
                    {"n": invoice["number"], "now": now},
                )
        with conn.begin():  # the move itself
            conn.execute(
                text(
                    "UPDATE payments.billing_documents SET data = NULL, pdf = NULL, "
                    f"archived_at = :now{where}"
                ),
                {"n": invoice["number"], "now": now},
            )
        for again in ("archived_at = :now", "data = :d", "total_cents = 1"):  # once, for good
            with pytest.raises(Exception, match="never changed"):
                with conn.begin():
                    conn.execute(
                        text(f"UPDATE payments.billing_documents SET {again}{where}"),
                        {"n": invoice["number"], "now": now, "d": b"x"},
                    )
        with pytest.raises(Exception, match="never changed"):
            with conn.begin():
                conn.execute(
                    text(f"DELETE FROM payments.billing_documents{where}"),
                    {"n": invoice["number"]},
                )


def test_an_erasure_waits_for_an_invoice_numbered_and_not_issued_yet(runtime, client):
    """The account's invoice is numbered (payment.confirmed handled) and the ``invoices`` loop has
    not issued it: the erasure fails (retried by the consumer) and changes nothing; once issued,
    the erasure archives it."""

    account = str(uuid.uuid4())
    event, _ = order_placed("card", 24900, account_id=account)
    record_order(runtime, event)
    order_id = event.data["order_id"]
    answer = client.post(
        "/v1/callbacks/systempay",
        data=form_body(systempay_ipn(event.data["order_number"], 24900)),
        headers=FORM,
    )
    assert answer.status_code == 200
    (confirmed,) = outbox_events(runtime, "payment.confirmed", order_id)
    handle(runtime, Event.from_json(json.dumps(confirmed)))
    with pytest.raises(InvoicesNotIssuedYet):
        handle(runtime, erasure(account))
    with runtime.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).where(tables.sales.c.account_id == account)
            ).scalar_one()
            == 1
        )
        assert (
            conn.execute(
                select(func.count()).where(tables.account_deactivations.c.account_id == account)
            ).scalar_one()
            == 0
        )
    while issue_pending(runtime):
        pass
    handle(runtime, erasure(account))
    [archived_invoice] = archive_rows(runtime, order_id)
    assert archived_invoice["kind"] == "invoice"


def archive_command(runtime, *args: str) -> subprocess.CompletedProcess:
    """``python -m coc_payments.entrypoints.archive`` on this run's database (its single role
    here; the archive role in production)."""
    env = {**os.environ, "DATABASE_URL": runtime.settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "coc_payments.entrypoints.archive", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_archive_reader_lists_shows_writes_the_pdf_verifies_and_purges(
    runtime, client, tmp_path
):
    account = str(uuid.uuid4())
    order = paid_by(runtime, client, account)
    handle(runtime, erasure(account))
    [row] = archive_rows(runtime, order["order_id"])
    listed = archive_command(runtime, "list", "--order-id", order["order_id"])
    assert listed.returncode == 0, listed.stderr
    [line] = [json.loads(text) for text in listed.stdout.splitlines()]
    assert line["number"] == row["number"] and "pdf" not in line and "data" not in line
    shown = archive_command(runtime, "show", row["number"])
    assert json.loads(shown.stdout)["data"]["buyer"]["name"] == row["buyer_name"]
    written = archive_command(runtime, "pdf", row["number"], "--output", str(tmp_path / "a.pdf"))
    assert written.returncode == 0, written.stderr
    assert hashlib.sha256((tmp_path / "a.pdf").read_bytes()).hexdigest() == row["pdf_sha256"]
    assert archive_command(runtime, "show", "FA-none").returncode == 1
    assert archive_command(runtime, "verify").returncode == 0
    # an altered archived document shows
    with runtime.engine.begin() as conn:
        conn.execute(
            text("UPDATE archive.invoices SET pdf = :p WHERE number = :n"),
            {"p": b"%PDF-forged", "n": row["number"]},
        )
    verified = archive_command(runtime, "verify")
    assert verified.returncode == 1
    assert {"number": row["number"], "problem": "PDF digest differs"} in json.loads(
        verified.stdout
    )["problems"]
    # the end of the retention: deleted once, the second run deletes nothing
    after = (row["retained_until"] + timedelta(days=1)).isoformat()
    purged = json.loads(archive_command(runtime, "purge", "--today", after).stdout)
    assert row["number"] in purged["numbers"] and purged["deleted"] >= 1
    assert archive_rows(runtime, order["order_id"]) == []
    assert json.loads(archive_command(runtime, "purge", "--today", after).stdout)["deleted"] == 0


def archived_by_erasure(runtime, client) -> tuple[dict, dict]:
    account = str(uuid.uuid4())
    order = paid_by(runtime, client, account)
    handle(runtime, erasure(account))
    [row] = archive_rows(runtime, order["order_id"])
    return order, row


def test_the_purge_loop_applies_the_ten_year_end_by_itself(runtime, client, tmp_path):
    """compose's archive-purge (``archive purge --every-hours 24``): a round deletes what expired
    and keeps the rest, the next one finds nothing, each renews the healthcheck's heartbeat."""
    expired_order, expired = archived_by_erasure(runtime, client)
    fresh_order, fresh = archived_by_erasure(runtime, client)
    ended = expired["retained_until"] - timedelta(days=400)  # its ten years are over
    with runtime.engine.begin() as conn:
        conn.execute(
            text("UPDATE archive.invoices SET retained_until = :d WHERE number = :n"),
            {"d": ended, "n": expired["number"]},
        )
    today = ended + timedelta(days=1)
    assert today < fresh["retained_until"]
    rounds: list[dict] = []
    stop = threading.Event()

    def report(result: dict) -> None:
        rounds.append(result)
        if len(rounds) == 2:
            stop.set()

    heartbeat = tmp_path / "heartbeat.json"
    engine = make_engine(runtime.settings.database_url, schemas=("archive",))
    try:
        purge_loop(engine, timedelta(milliseconds=10), stop, today, str(heartbeat), report)
    finally:
        engine.dispose()
    first, second = rounds
    assert expired["number"] in first["numbers"] and fresh["number"] not in first["numbers"]
    assert second == {"deleted": 0, "numbers": []}
    assert archive_rows(runtime, expired_order["order_id"]) == []
    assert [r["number"] for r in archive_rows(runtime, fresh_order["order_id"])] == [
        fresh["number"]
    ]
    # the healthcheck: alive while the next round is not overdue
    assert archive_command(runtime, "purge-alive", "--heartbeat", str(heartbeat)).returncode == 0
    heartbeat.write_text(json.dumps({"next_by": "2020-01-01T00:00:00+00:00"}))
    assert archive_command(runtime, "purge-alive", "--heartbeat", str(heartbeat)).returncode == 1
    missing = str(tmp_path / "none.json")
    assert archive_command(runtime, "purge-alive", "--heartbeat", missing).returncode == 1


def test_the_purge_loop_runs_at_once_and_stops_on_sigterm(runtime, tmp_path):
    heartbeat = tmp_path / "heartbeat.json"
    env = {**os.environ, "DATABASE_URL": runtime.settings.database_url}
    looping = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coc_payments.entrypoints.archive",
            "purge",
            "--every-hours",
            "24",
            "--heartbeat",
            str(heartbeat),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(heartbeat.exists, timeout=60, message="the loop's first round")
        looping.send_signal(signal.SIGTERM)
        out, err = looping.communicate(timeout=60)
    finally:
        if looping.poll() is None:
            looping.kill()
    assert looping.returncode == 0, err
    assert "deleted" in json.loads(out.splitlines()[0])
    assert archive_command(runtime, "purge-alive", "--heartbeat", str(heartbeat)).returncode == 0
