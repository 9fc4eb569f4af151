"""The payments API and worker as real processes, killed with kill -9 right after the API answered
a card notification: the confirmation still happens, once."""

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests
from payments_testkit import (
    Observer,
    form_body,
    order_placed,
    outbox_events,
    payments_extra,
    record_order,
    systempay_ipn,
)

from coc_shared.testing import service_env, wait_until

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    def __init__(self, runtime, tmp_path, fake_paypal):
        self.env = service_env(runtime.settings)
        self.env.update({k: v for k, v in payments_extra(fake_paypal.url).items()})
        self.port = free_port()
        self.env.update(
            {"PAYMENTS_PORT": str(self.port), "SERVICE_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
        )
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []

    def start(self, command: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{command}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(
            [str(VENV_BIN / "coc-payments"), command],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def start_api(self) -> subprocess.Popen:
        proc = self.start("api")

        def healthy():
            assert proc.poll() is None, "api exited"
            try:
                return (
                    requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code
                    == 200
                )
            except requests.ConnectionError:
                return False

        wait_until(healthy, timeout=30, message="payments api up")
        return proc

    def post_ipn(self, fields) -> requests.Response:
        return requests.post(
            f"http://127.0.0.1:{self.port}/v1/callbacks/systempay",
            data=form_body(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )

    def kill9(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self):
        for proc in self.procs:
            self.kill9(proc)


@pytest.fixture
def service(runtime, tmp_path, fake_paypal):
    runtime.declare_topology()
    svc = Service(runtime, tmp_path, fake_paypal)
    yield svc
    svc.close()


@pytest.mark.crossprocess
def test_kill_9_right_after_answering_a_notification_still_confirms_once(runtime, service):
    observer = Observer(runtime)
    try:
        event, _ = order_placed("card", 24900)
        record_order(runtime, event)
        order_id = event.data["order_id"]
        api, worker = service.start_api(), service.start("worker")
        notification = systempay_ipn(event.data["order_number"], 24900, "AUTHORISED")
        assert service.post_ipn(notification).status_code == 200
        service.kill9(api)
        service.kill9(worker)
        # answered means committed: the confirmation is in the outbox whatever the relay had done
        assert len(outbox_events(runtime, "payment.confirmed", order_id)) == 1

        service.start_api()
        service.start("worker")
        observer.wait("payment.confirmed", order_id)
        # the bank did not see our answer and notifies again: recognised, nothing new
        assert service.post_ipn(notification).status_code == 200
        marker, _ = order_placed("card", 100)
        record_order(runtime, marker)
        assert service.post_ipn(systempay_ipn(marker.data["order_number"], 100)).status_code == 200
        observer.wait(
            "payment.confirmed", marker.data["order_id"]
        )  # published after anything before it
        # one event (a relay killed before marking a row sent may publish it twice, under the same
        # id)
        assert len({e["id"] for e in observer.of("payment.confirmed", order_id)}) == 1
        assert len(outbox_events(runtime, "payment.confirmed", order_id)) == 1
    finally:
        observer.close()
