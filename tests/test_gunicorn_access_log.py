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


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_access_log_of_each_service_is_json_without_the_query_s_tokens(
    service, runtime_factory, tmp_path
):
    definition = importlib.import_module(f"{package(service)}.service").definition
    rt = runtime_factory(definition)  # migrated on this run's database
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = service_env(rt.settings)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        local_command(service, port),
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
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
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    output = log.read_text()
    assert SECRET not in output and JWT_LIKE not in output, output
    access = json.loads(lines[0])
    assert access["event"] == "http.access" and access["service"] == service
    assert access["method"] == "GET" and access["path"] == path.split("?")[0]
    assert access["status"] == answer.status_code
    assert "[redacted]" in access["query"]
    assert not {"ip", "user_agent", "referer", "remote_addr"} & set(access)


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
