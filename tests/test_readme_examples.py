"""The README's examples for its three kinds of users (blocks marked ``<!-- example: … -->``), run
as a user would paste them, with bash, against the real services: orders, payments, the supplier
gateway and gdpr serving HTTP on free ports of 127.0.0.1 (their workers as threads on the real
RabbitMQ and PostgreSQL)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pypdf import PdfWriter
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import running_services

from coc_shared.testing import STAFF_KEYS, service_env
from coc_supplier_gateway.config import supplier_key

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKED = re.compile(r"<!-- example: (\w+) -->\n```sh\n(.*?)\n```", re.DOTALL)


def examples() -> dict[str, str]:
    return dict(MARKED.findall((ROOT / "README.md").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def stack(settings_factory, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme")
    with running_services(settings_factory, tmp) as runtimes:
        servers, urls = [], {}
        for name, runtime in runtimes.items():
            server = make_server("127.0.0.1", 0, runtime.create_app(), threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            urls[name] = f"http://127.0.0.1:{server.server_port}"
        yield runtimes, urls, tmp
        for server in servers:
            server.shutdown()


def run_example(name: str, env: dict, cwd: Path) -> str:
    script = examples()[name]
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{name}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_readme_has_an_example_for_each_kind_of_user():
    assert set(examples()) == {"storefront", "supplier", "support"}


def test_the_storefront_example_places_an_order_uploads_and_gets_the_transfer_details(stack):
    _, urls, tmp = stack
    folder = tmp / "storefront"
    folder.mkdir()
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    pdf = io.BytesIO()
    writer.write(pdf)
    (folder / "id-card.pdf").write_bytes(pdf.getvalue())
    out = run_example(
        "storefront", {"ORDERS": urls["orders"], "PAYMENTS": urls["payments"]}, folder
    ).splitlines()
    assert out[0] == "COC orders API"
    assert re.fullmatch(r"COC-\d{4}-\d{6} placed", out[1]), out
    assert out[2] == "document taken"
    assert out[3].startswith("RF"), out  # the creditor reference of the transfer
    assert out[4].startswith("422 ") and "vehicle" in out[4], out


def test_the_supplier_example_signs_a_reply_the_gateway_accepts_as_signed(stack):
    runtimes, urls, tmp = stack
    gateway = runtimes["supplier-gateway"]
    master = gateway.config.supplier_secret
    code = "psa-coc"
    version = gateway.config.directory.get(code).key_version
    out = run_example(
        "supplier",
        {
            "GATEWAY": urls["supplier-gateway"],
            "CODE": code,
            "SUPPLIER_KEY": supplier_key(master, code, version),
        },
        tmp,
    )
    assert out.strip() == "422 ['request_id']"  # signed well; the request is unknown


def test_the_support_example_issues_a_token_and_reads_the_staff_apis(stack):
    runtimes, urls, tmp = stack
    folder = tmp / "support"
    (folder / "var").mkdir(parents=True)
    private, _public = STAFF_KEYS
    (folder / "var" / "staff-token-private.key").write_text(private)
    (folder / ".venv").symlink_to(BIN.parent)
    env = {**service_env(runtimes["payments"].settings), "GDPR": urls["gdpr"]}
    out = run_example("support", env, folder).splitlines()
    assert re.fullmatch(r"\d+ late requests", out[0]), out
    assert out[1] == "parked messages listed"
