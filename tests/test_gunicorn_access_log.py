"""gunicorn's access log goes through the same scrubbing as the services' JSON logs: each service's
API is started as its Dockerfile starts it (a real gunicorn process, the image's command with a
local address), on this run's database; a request carrying tokens in its query string leaves a
JSON access line with the request's path and status, and no token anywhere in the output."""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from coc_shared.config import SERVICE_NAMES
from coc_shared.testing import service_env, wait_until

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "secret123"
JWT_LIKE = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFrIn0.c2lnbmF0dXJlLWxlYWs"
# One request per service whose query string carries secrets (a link's order token, an e-mail
# confirmation token, a bearer token pasted in a URL).
PROBES = {
    "orders": "/v1/orders/{id}?token=" + SECRET,
    "payments": "/v1/payments/review?token=" + SECRET + "&limit=5",
    "supplier-gateway": "/v1/staff/supplier-requests/{id}?access_token=" + JWT_LIKE,
    "notifications": "/v1/staff/orders/{id}/notifications?confirmation_token=" + SECRET,
    "gdpr": "/v1/staff/deactivation-requests/{id}?token=" + SECRET + "&key=" + SECRET,
}


def package(service: str) -> str:
    return "coc_" + service.replace("-", "_")


def dockerfile_command(service: str) -> list[str]:
    """The CMD of the service's Dockerfile (JSON form)."""
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    line = next(line for line in text.splitlines() if line.startswith("CMD ["))
    return json.loads(line[len("CMD ") :])


def local_command(service: str, port: int) -> list[str]:
    """The Dockerfile's command, bound to a local port, with this environment's gunicorn."""
    args = dockerfile_command(service)
    assert args[0] == "gunicorn"
    bind = args.index("--bind")
    args[bind + 1] = f"127.0.0.1:{port}"
    return [str(BIN / "gunicorn"), *args[1:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(service: str, runtime_factory, log: Path):
    """The service's API under gunicorn as its image runs it, on this run's database; yields its
    base URL, stops it at the end."""
    definition = importlib.import_module(f"{package(service)}.service").definition
    rt = runtime_factory(definition)  # migrated on this run's database
    port = free_port()
    env = service_env(rt.settings)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        local_command(service, port),
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=log.parent,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy():
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited: {log.read_text()[-3000:]}")
            try:
                return requests.get(f"{base}/healthz", timeout=2).status_code == 200
            except requests.RequestException:  # not listening or still booting
                return False

        wait_until(healthy, timeout=60, message=f"{service}'s gunicorn")
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_access_log_of_each_service_is_json_without_the_query_s_tokens(
    service, runtime_factory, tmp_path
):
    log = tmp_path / "gunicorn.log"
    with gunicorn(service, runtime_factory, log) as base:
        path = PROBES[service].format(id=uuid.uuid4())
        answer = requests.get(
            base + path, headers={"Referer": f"https://shop.test/x?token={SECRET}"}, timeout=10
        )
        assert answer.status_code < 500, answer.text
        assert answer.headers["Cache-Control"] == "no-store"
        correlation_id = answer.headers["X-Correlation-ID"]
        lines = wait_until(
            lambda: [ln for ln in log.read_text().splitlines() if correlation_id in ln],
            timeout=10,
            message="the access line",
        )
    output = log.read_text()
    assert SECRET not in output and JWT_LIKE not in output, output
    access = json.loads(lines[0])
    assert access["event"] == "http.access" and access["service"] == service
    assert access["method"] == "GET" and access["path"] == path.split("?")[0]
    assert access["status"] == answer.status_code
    assert "[redacted]" in access["query"]
    assert not {"ip", "user_agent", "referer", "remote_addr"} & set(access)


def test_under_gunicorn_oversized_and_chunked_notifications_are_refused(runtime_factory, tmp_path):
    """gunicorn passes chunked bodies through (wsgi.input_terminated): the 64 KiB limit of a
    notification holds for them as for a declared length."""

    def chunks(total: int, size: int = 16 * 1024):
        yield b'{"id": "'
        for _ in range(total // size):
            yield b"x" * size
        yield b'"}'

    with gunicorn("payments", runtime_factory, tmp_path / "gunicorn.log") as base:
        chunked = requests.post(
            f"{base}/v1/callbacks/paypal",
            data=chunks(1024 * 1024),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["error"]["status"] == 413
        try:
            large = requests.post(
                f"{base}/v1/callbacks/bank-transfer",
                data=b"x" * (16 * 1024 * 1024),
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
        except requests.ConnectionError:  # answered before the body was sent, then closed
            large = None
        assert large is None or large.status_code == 413, large.text
        small = requests.post(
            f"{base}/v1/callbacks/paypal",
            data=chunks(32 * 1024),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert small.status_code == 401  # read whole, and its proof is missing


def test_every_dockerfile_runs_gunicorn_with_the_scrubbing_logger():
    for service in SERVICE_NAMES:
        args = dockerfile_command(service)
        if "-c" in args:  # a configuration file: its settings are checked below
            config = args[args.index("-c") + 1].removeprefix("python:")
            module = importlib.import_module(config)
            assert module.logger_class == "coc_shared.gunicorn.AccessLogger", service
            assert module.accesslog == "-", service
            continue
        assert args[args.index("--logger-class") + 1] == "coc_shared.gunicorn.AccessLogger"
        assert args[args.index("--access-logfile") + 1] == "-"
