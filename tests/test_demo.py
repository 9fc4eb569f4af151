"""`make demo` as a newcomer runs it: `make run` (coc-run, distributed: every service's API and
worker, the payment providers' sandboxes, the supplier's reference integration, La Poste's
emulator and the SMTP sandbox, with its development defaults), then the demo walks a company order
to delivered with each payment method (the three side by side, in this process), and a step that
does not happen in time ends it with exit code 1 naming the step."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from coc_payments.sandbox import demo
from coc_shared import broker_users
from coc_shared.config import SERVICE_NAMES, port_variable
from coc_shared.testing import delete_bus_names, service_env, wait_until

BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def all_ready(ports: dict[str, int]) -> bool:
    for port in ports.values():
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code != 200:
                return False
        except requests.RequestException:
            return False
    return True


@pytest.fixture(scope="module")
def make_run(settings_factory, rabbitmq_url, bus_prefix, tmp_path_factory):
    """coc-run on ports, a bus prefix, broker users and a data folder of its own; the demo in this
    process finds the services through the same port variables."""
    data_dir = tmp_path_factory.mktemp("demo-var")
    prefix = f"{bus_prefix}demo."
    ports = dict(zip(SERVICE_NAMES, free_ports(len(SERVICE_NAMES))))
    smtp_port = free_ports(1)[0]
    settings = settings_factory("orders", bus_prefix=prefix, rabbitmq_url=rabbitmq_url)
    variables = {port_variable(service): str(port) for service, port in ports.items()}
    variables.update(
        {
            "RUN_DATA_DIR": str(data_dir),
            "NOTIFICATIONS_SMTP_SANDBOX_PORT": str(smtp_port),
            "PAYMENTS_PUBLIC_URL": f"http://127.0.0.1:{ports['payments']}",
            "SUPPLIER_GATEWAY_DOCUMENT_URL": f"http://127.0.0.1:{ports['orders']}"
            "/v1/supplier-documents/{document_id}",
            "SUPPLIER_GATEWAY_TRACKING_POLL_SECONDS": "0.5",
            "SUPPLIER_GATEWAY_SENDER_POLL_SECONDS": "0.2",
        }
    )
    env = {**service_env(settings), **variables}
    for name in ("COC_ENVIRONMENT", "SYSTEMPAY_SITE_ID", "PAYPAL_CLIENT_ID", "TRANSFER_IBAN"):
        env.pop(name, None)  # as on a developer's machine: make run supplies them
    log = data_dir / "coc-run.log"
    process = subprocess.Popen(
        [str(BIN / "coc-run")],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: all_ready(ports) or process.poll() is not None,
            timeout=120,
            message="make run's five services ready",
        )
        assert process.poll() is None, log.read_text()[-3000:]
        with pytest.MonkeyPatch.context() as patch:
            for name, value in variables.items():
                patch.setenv(name, value)
            yield {"data_dir": str(data_dir), "log": log, "ports": ports}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        broker_users.delete_users(
            [broker_users.broker_user(prefix, s) for s in broker_users.all_services()]
        )
        delete_bus_names(rabbitmq_url, prefix)


def run_demo(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = demo.main(argv, out=out)
    return code, out.getvalue()


def test_make_run_prints_the_payment_sandboxes(make_run):
    output = make_run["log"].read_text()
    for name in ("sandbox card bank", "sandbox paypal", "sandbox business bank"):
        assert name in output, output[-3000:]
    assert "/vads-payment/" in output and "/sandbox/transfers" in output


def test_the_demo_walks_a_company_order_to_delivered_with_each_payment_method(make_run):
    results: dict[str, tuple[int, str]] = {}

    def one(method: str) -> None:
        results[method] = run_demo(
            ["--pay", method, "--data-dir", make_run["data_dir"], "--timeout", "90"]
        )

    threads = [threading.Thread(target=one, args=(m,)) for m in demo.METHODS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for method in demo.METHODS:
        code, output = results[method]
        print(f"--- make demo PAY={method}\n{output}")
        assert code == 0, output + make_run["log"].read_text()[-3000:]
        lines = output.splitlines()
        last = json.loads(lines[-1])
        assert set(last) == {"order_id", "number", "access_token", "status"}
        assert last["status"] == "delivered"
        # every step, in order, with the event that moved it
        printed = [
            next(
                i for i, line in enumerate(lines) if line.startswith(f"  {step} ") and event in line
            )
            for step, event in demo.STEPS
        ]
        assert printed == sorted(printed)
        paid = next(line for line in lines if line.startswith("  paid "))
        assert {
            "card": "IPN answered 200",
            "paypal": "approved",
            "transfer": "bank webhook answered 200",
        }[method] in paid
        # the customer's mails, from the SMTP sandbox's files: one per step told, the last one
        # about the delivery
        mails = lines[lines.index(next(x for x in lines if x.startswith("Mails to"))) + 1 : -1]
        assert len(mails) >= 5 and all(last["number"] in m for m in mails)
        assert "livré" in mails[-1]


def test_a_step_that_does_not_happen_in_time_ends_the_demo_naming_it(make_run):
    # the supplier's integration accepts 2 s after the request: a 1 s budget per step runs out
    code, output = run_demo(["--pay", "card", "--data-dir", make_run["data_dir"], "--timeout", "1"])
    assert code == 1
    assert "did not happen within 1 s" in output
    assert any(f"step {step!r}" in output for step, _ in demo.STEPS), output
    assert not output.strip().splitlines()[-1].startswith("{")  # no result line


def test_a_worker_killed_with_kill_9_is_restarted_and_the_order_in_flight_reaches_delivered(
    make_run,
):
    import re

    output = make_run["log"].read_text()
    worker = int(re.search(r"supplier-gateway .*worker pid (\d+)", output).group(1))
    result: dict[str, tuple[int, str]] = {}
    demo_thread = threading.Thread(
        target=lambda: result.update(
            card=run_demo(["--pay", "card", "--data-dir", make_run["data_dir"], "--timeout", "90"])
        )
    )
    demo_thread.start()
    os.kill(worker, signal.SIGKILL)  # the gateway's worker: the order will need it to move on
    demo_thread.join(timeout=300)
    code, printed = result["card"]
    assert code == 0, printed + make_run["log"].read_text()[-3000:]
    assert json.loads(printed.splitlines()[-1])["status"] == "delivered"
    restarted = [
        json.loads(line)
        for line in make_run["log"].read_text().splitlines()
        if '"process.restarted"' in line
    ]
    assert "supplier-gateway worker" in [entry["process"] for entry in restarted]
