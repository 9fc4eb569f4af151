"""kill -9 of the gateway's worker between a request's send and its mark, on the real RabbitMQ and
PostgreSQL: the worker (its own process, its own broker user) publishes the request and the broker
confirms it, then its commit waits (the test holds a lock on the history table it writes with the
mark) and the process is killed. The next worker sends the request again with the same request id,
which the supplier sees twice and recognises; the request is marked sent and
``documents.sent_to_supplier`` emitted once, so the order moves once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gateway_helpers import gateway_extra, make_directory, ready_order, supplier_url, take_requests
from sqlalchemy import select, text

from coc_shared.testing import service_env, wait_until
from coc_supplier_gateway.adapters import tables
from coc_supplier_gateway.service import definition

BIN = Path(sys.executable).parent


@pytest.fixture
def gateway(runtime_factory, tmp_path):
    directory = make_directory(tmp_path, {"renault-coc": 9, "bmw-coc": 9})
    extra = gateway_extra(tmp_path, directory)
    rt = runtime_factory(definition, extra=extra)
    rt.declare_topology()
    rt.test_extra = extra
    return rt


def start_worker(rt, log: Path) -> subprocess.Popen:
    env = service_env(rt.settings)
    env.update(rt.test_extra)
    return subprocess.Popen(
        [str(BIN / "coc-supplier-gateway"), "worker"],
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


def status(rt, order_id: str) -> str:
    t = tables.supplier_requests
    with rt.engine.connect() as conn:
        return conn.execute(select(t.c.status).where(t.c.order_id == order_id)).scalar_one()


def sent_events(rt, order_id: str) -> int:
    o = rt.outbox
    with rt.engine.connect() as conn:
        return len(
            conn.execute(
                select(o.c.event_id).where(
                    o.c.event_type == "documents.sent_to_supplier", o.c.subject == order_id
                )
            ).all()
        )


def test_a_worker_killed_between_send_and_mark_sends_again_the_same_id_the_order_moves_once(
    gateway, broker_accounts, bus_prefix, tmp_path
):
    order_id, _ = ready_order(gateway)
    [request_id] = [
        r
        for r in gateway.engine.connect()
        .execute(
            select(tables.supplier_requests.c.request_id).where(
                tables.supplier_requests.c.order_id == order_id
            )
        )
        .scalars()
    ]
    url, queue = supplier_url(broker_accounts, "psa-coc"), f"{bus_prefix}coc.supplier.psa-coc"
    mine = lambda body: body["request_id"] == request_id  # noqa: E731
    log = tmp_path / "worker.log"
    blocker = gateway.engine.connect()
    blocker.execute(text("LOCK TABLE supplier_gateway.supplier_request_history IN EXCLUSIVE MODE"))
    first = start_worker(gateway, log)
    try:
        [one] = take_requests(url, queue, match=mine, timeout=30)
        assert json.loads(one.body)["resend"] is False
        time.sleep(0.5)  # the worker is now waiting for the lock to write the mark
        assert status(gateway, order_id) == "ready"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
    second = start_worker(gateway, log)
    try:
        [two] = take_requests(url, queue, match=mine, timeout=30)
        wait_until(lambda: status(gateway, order_id) == "sent", timeout=30, message="marked sent")
        time.sleep(1.0)
        assert json.loads(two.body)["request_id"] == json.loads(one.body)["request_id"]
        assert two.properties["message_id"] == one.properties["message_id"] == request_id
        assert take_requests(url, queue, match=mine, timeout=1) == []
        assert sent_events(gateway, order_id) == 1
        d = tables.supplier_dispatches
        with gateway.engine.connect() as conn:
            [row] = conn.execute(select(d).where(d.c.order_id == order_id)).all()
        assert row.sent_at is not None
    finally:
        second.terminate()
        second.wait(timeout=20)
    assert "supplier_requests.sent" in log.read_text()
