"""The invoices loop (issue 12, speed): payment.confirmed only numbers the invoice (under the
counter's lock, in the consumer's transaction); the worker's ``invoices`` loop renders what is
numbered, in number order, a batch per transaction (its PDFs in a process pool), stores it
encrypted, chains it and announces it. A numbered invoice is not listed to the customer before its
PDF exists; a crash between the number and the rendering loses nothing; the chain is the one of
documents issued one by one; a loop waits while another holds the numbers before its own. On this
run's PostgreSQL."""

import base64
import json
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest
from payments_testkit import (
    INVOICE_KEY,
    billing_rows,
    document,
    numbered_rows,
    outbox_events,
    paid,
)

from coc_payments.adapters import tables
from coc_payments.adapters.billing_repository import InvoiceQueue
from coc_payments.adapters.invoice_pdf import facturx_pdf
from coc_payments.domain.billing import GENESIS, INVOICE, BillingDocument
from coc_payments.service_layer import invoicing
from coc_payments.service_layer.invoicing import issue_pending, verify_series
from coc_shared.envelope import Event
from coc_shared.testing import handle, wait_until

KEY = base64.b64decode(INVOICE_KEY)


def numbered(runtime, client, n: int) -> list[dict]:
    """``n`` orders paid, their payment.confirmed handled as the consumer does: numbered only."""
    orders = []
    for _ in range(n):
        order, _ = paid(runtime, client, issue=False)
        (confirmed,) = outbox_events(runtime, "payment.confirmed", order["order_id"])
        handle(runtime, Event.from_json(json.dumps(confirmed)))
        orders.append(order)
    return orders


def previous_chain(runtime, first_seq: int) -> str:
    rows = [r for r in billing_rows(runtime, "invoice") if r["seq"] == first_seq - 1]
    return rows[0]["chain_sha256"] if rows else GENESIS


def test_a_backlog_is_issued_in_number_order_with_the_chain_of_one_by_one(runtime, client):
    orders = numbered(runtime, client, 5)
    waiting = numbered_rows(runtime)
    assert [r["order_id"] for r in waiting] == [o["order_id"] for o in orders]
    seqs = [r["seq"] for r in waiting]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    assert verify_series(runtime, KEY).ok  # numbered, not issued: not a gap
    # the customer sees no invoice before its PDF exists, and its PDF's link answers 404
    path = f"/v1/orders/{orders[0]['order_id']}/invoices"
    guest = {"X-Order-Token": orders[0]["access_token"]}
    assert client.get(path, headers=guest).get_json()["items"] == []
    number = waiting[0]["number"]
    assert client.get(f"{path}/{number}.pdf", headers=guest).status_code == 404
    assert outbox_events(runtime, "invoice.issued", orders[0]["order_id"]) == []

    with ProcessPoolExecutor(2) as pool:
        assert issue_pending(runtime, lambda d: list(pool.map(facturx_pdf, d)), limit=3) == 3
        assert issue_pending(runtime, lambda d: list(pool.map(facturx_pdf, d)), limit=3) == 2
    assert numbered_rows(runtime) == []
    issued = [r for r in billing_rows(runtime, "invoice") if r["seq"] in seqs]
    assert [r["order_id"] for r in issued] == [o["order_id"] for o in orders]
    assert [r["number"] for r in issued] == [r["number"] for r in waiting]
    assert [r["issued_at"] for r in issued] == [r["issued_at"] for r in waiting]
    # the chain, made again document after document from the stored data and PDFs
    previous = previous_chain(runtime, seqs[0])
    for row in issued:
        data, pdf = document(runtime, row["number"])
        doc = BillingDocument.issue(
            INVOICE, row["seq"], row["order_id"], row["issued_at"], data, pdf, previous
        )
        assert (row["previous_sha256"], row["chain_sha256"]) == (previous, doc.chain_sha256)
        assert pdf.startswith(b"%PDF-") and data["number"] == row["number"]
        previous = doc.chain_sha256
    assert verify_series(runtime, KEY).ok
    for order, row in zip(orders, issued, strict=True):
        (event,) = outbox_events(runtime, "invoice.issued", order["order_id"])
        assert event["data"]["number"] == row["number"]
        assert event["correlation_id"] == order["order_id"]
    (item,) = client.get(path, headers=guest).get_json()["items"]
    assert item["number"] == number
    assert client.get(f"{path}/{number}.pdf", headers=guest).status_code == 200


def test_a_crash_between_numbering_and_rendering_leaves_them_to_the_loop(runtime, client):
    orders = numbered(runtime, client, 3)
    waiting = numbered_rows(runtime)

    def dies(datas):
        facturx_pdf(datas[0])
        raise MemoryError("the worker dies while rendering")

    with pytest.raises(MemoryError):
        issue_pending(runtime, dies)
    assert numbered_rows(runtime) == waiting  # the batch rolled back: nothing lost, nothing half
    assert not [r for r in billing_rows(runtime, "invoice") if r["order_id"] in _ids(orders)]
    # a redelivered confirmation finds the numbered invoice: no second number
    (confirmed,) = outbox_events(runtime, "payment.confirmed", orders[0]["order_id"])
    handle(runtime, Event.from_json(json.dumps(confirmed)))
    assert numbered_rows(runtime) == waiting

    stop = threading.Event()
    thread = threading.Thread(target=invoicing.loop(runtime), args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: numbered_rows(runtime) == [], timeout=60, message="the loop issued")
    finally:
        stop.set()
        thread.join(30)
    issued = [r for r in billing_rows(runtime, "invoice") if r["order_id"] in _ids(orders)]
    assert [r["number"] for r in issued] == [r["number"] for r in waiting]
    assert verify_series(runtime, KEY).ok
    for order in orders:
        assert len(outbox_events(runtime, "invoice.issued", order["order_id"])) == 1
    handle(runtime, Event.from_json(json.dumps(confirmed)))  # and after: still one
    assert len([r for r in billing_rows(runtime, "invoice") if r["order_id"] in _ids(orders)]) == 3
    assert numbered_rows(runtime) == []


def test_a_loop_waits_while_another_holds_the_numbers_before_its_own(runtime, client):
    numbered(runtime, client, 4)
    waiting = numbered_rows(runtime)
    with runtime.unit_of_work() as other:  # another worker's loop has claimed the first two
        assert [r["seq"] for r in InvoiceQueue(other).claim(2)] == [r["seq"] for r in waiting[:2]]
        # this one skips them, and cannot chain the next ones before them: nothing now
        assert issue_pending(runtime) == 0
        assert numbered_rows(runtime) == waiting
    assert issue_pending(runtime) == 4  # the other gave them up (rolled back)
    assert numbered_rows(runtime) == []
    assert verify_series(runtime, KEY).ok


def test_the_chain_check_reports_a_numbered_invoice_out_of_place(runtime, client):
    numbered(runtime, client, 1)
    (row,) = numbered_rows(runtime)
    with runtime.engine.begin() as conn:  # the waiting invoice's number moved one further
        t = tables.invoices_to_issue
        conn.execute(t.update().where(t.c.seq == row["seq"]).values(seq=row["seq"] + 1))
    try:
        report = verify_series(runtime, KEY)
        assert not report.ok
        problem = "numbered invoices do not follow the last issued"
        assert {"series": "invoice", "problem": problem} in report.problems
        assert issue_pending(runtime) == 0  # never chained out of order
    finally:  # put it back for the run's other tests (one series per run)
        with runtime.engine.begin() as conn:
            conn.execute(t.update().where(t.c.seq == row["seq"] + 1).values(seq=row["seq"]))
    assert issue_pending(runtime) == 1
    assert verify_series(runtime, KEY).ok


def _ids(orders) -> set:
    return {o["order_id"] for o in orders}


def test_the_loop_issues_on_both_dialects(any_runtime):
    """The embedded mode (SQLite files) numbers and issues the same way (no row locks there: one
    writer at a time)."""
    client = any_runtime.create_app().test_client()
    orders = numbered(any_runtime, client, 3)
    assert len(numbered_rows(any_runtime)) == 3
    assert issue_pending(any_runtime, limit=2) == 2
    assert issue_pending(any_runtime) == 1
    assert numbered_rows(any_runtime) == []
    issued = [r for r in billing_rows(any_runtime, "invoice") if r["order_id"] in _ids(orders)]
    assert [r["order_id"] for r in issued] == [o["order_id"] for o in orders]
    assert verify_series(any_runtime, KEY).ok
