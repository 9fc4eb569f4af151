"""kill -9 between an invoice's number and its rendering, and between the invoice and its event:
a payments consumer process (no loop, no relay) numbers the invoice and is killed; the invoice is
then issued with its invoice.issued outbox row as the worker's invoices loop does, and nothing
publishes the event; a worker started afterwards sends the event, and the order still has one
invoice, numbered once."""

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from payments_testkit import (
    BILLING,
    FORM,
    Observer,
    billing_rows,
    form_body,
    numbered_rows,
    order_placed,
    payments_extra,
    record_order,
    systempay_ipn,
)
from sqlalchemy import select

from coc_payments.service_layer.invoicing import issue_pending
from coc_shared.testing import service_env, wait_until

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"


def unsent(runtime, event_type: str, order_id: str) -> list:
    o = runtime.outbox
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(o.c.event_id).where(
                o.c.event_type == event_type, o.c.subject == order_id, o.c.sent_at.is_(None)
            )
        ).all()


@pytest.mark.crossprocess
def test_kill_9_between_the_invoice_and_its_event_one_invoice_and_the_event_sent(
    runtime, client, tmp_path, fake_paypal, fake_systempay_api
):
    runtime.declare_topology()
    observer = Observer(runtime)
    env = service_env(runtime.settings)
    env.update(payments_extra(fake_paypal.url, fake_systempay_api.url))
    env.update(BILLING)
    procs = []

    def start(command: str) -> subprocess.Popen:
        log = open(tmp_path / f"{command}-{len(procs)}.log", "wb")
        proc = subprocess.Popen(
            [str(VENV_BIN / "coc-payments"), command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    def kill9(proc):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    try:
        event, _ = order_placed("card", 24900)
        record_order(runtime, event)
        order_id = event.data["order_id"]
        fields = systempay_ipn(event.data["order_number"], 24900)
        assert client.post("/v1/callbacks/systempay", data=form_body(fields), headers=FORM)
        # payment.confirmed to the broker (the test's own relay, one batch)
        runtime.make_relay(threading.Event()).publish_pending()
        observer.wait("payment.confirmed", order_id)

        consumer = start("consume")  # the consumer alone: no invoices loop, no relay
        wait_until(
            lambda: [r for r in numbered_rows(runtime) if r["order_id"] == order_id],
            timeout=60,
            message="the invoice numbered by the consumer process",
        )
        kill9(consumer)  # between the number (committed) and the rendering
        (numbered,) = [r for r in numbered_rows(runtime) if r["order_id"] == order_id]
        assert billing_rows(runtime, "invoice", order_id) == []
        # the invoices loop's unit of work, in this process: the invoice and its event committed,
        # nothing publishes it (as a worker killed right after that commit)
        while issue_pending(runtime):
            pass
        assert numbered_rows(runtime) == []
        assert unsent(runtime, "invoice.issued", order_id)
        assert len(billing_rows(runtime, "invoice", order_id)) == 1
        assert billing_rows(runtime, "invoice", order_id)[0]["number"] == numbered["number"]
        assert len(unsent(runtime, "invoice.issued", order_id)) == 1
        assert observer.of("invoice.issued", order_id) == []

        worker = start("worker")  # its relay sends the event; its consumer finds nothing new
        (sent,) = observer.wait("invoice.issued", order_id, timeout=60)
        # the relay marks the row sent after the broker's confirm, so a moment after the observer
        wait_until(
            lambda: unsent(runtime, "invoice.issued", order_id) == [],
            timeout=30,
            message="the invoice.issued row marked sent by the worker's relay",
        )
        kill9(worker)
        assert len(billing_rows(runtime, "invoice", order_id)) == 1
        assert sent["data"]["number"] == billing_rows(runtime, "invoice", order_id)[0]["number"]
        assert len({e["id"] for e in observer.of("invoice.issued", order_id)}) == 1
    finally:
        for proc in procs:
            kill9(proc)
        observer.close()
