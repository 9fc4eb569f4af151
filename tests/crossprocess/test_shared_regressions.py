"""Regression tests for two bugs of coc_shared found by the cross-process tests: a publisher
hanging on a connection the broker blocks (memory alarm), and the run's database left behind
when PostgreSQL restarted during the session."""

import re
import subprocess
import sys
import textwrap
import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from coc_shared.bus import OutgoingMessage, Publisher, PublishError
from coc_shared.db import normalise_url

pytestmark = pytest.mark.crossprocess


def test_publisher_gives_up_within_its_confirm_timeout_while_the_broker_blocks_publishers(pipeline):
    publisher = Publisher(pipeline.runtime.broker, confirm_timeout=1.0)
    outcome = {}

    def publish(n):
        try:
            publisher.publish_one(
                OutgoingMessage(message_id=f"m{n}", body=b"{}", routing_key="probe.ping")
            )
            outcome[n] = "confirmed"
        except Exception as exc:
            outcome[n] = exc

    publish(0)
    assert outcome[0] == "confirmed"
    try:
        with pipeline.memory_alarm(max_seconds=30):
            thread = threading.Thread(target=publish, args=(1,), daemon=True)
            thread.start()
            thread.join(timeout=6)  # confirm_timeout 1 s, plus a generous margin
            returned_in_time = not thread.is_alive()
        thread.join(timeout=30)  # the alarm is over: it returns now in any case
    finally:
        publisher.close()
    assert returned_in_time, "publish_one was still blocked 6 s after a 1 s confirm timeout"
    assert isinstance(outcome[1], PublishError)


INNER_TEST = """
import subprocess
from sqlalchemy import create_engine, text

def test_connections_lost(database_url, postgres_server_url):
    print("RUN_DATABASE", database_url.rsplit("/", 1)[1])
    # What a PostgreSQL restart does to this process: every connection it has to the server dies.
    out = subprocess.run(["ss", "-tnpH", "state", "established", "( dport = :5432 )"],
                         capture_output=True, text=True).stdout
    import os
    ports = [int(l.split()[2].rsplit(":", 1)[1]) for l in out.splitlines()
             if f"pid={os.getpid()}," in l]
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE client_port = ANY(:p) AND pid <> pg_backend_pid()"), {"p": ports})
    engine.dispose()
"""


def test_session_database_is_dropped_after_a_postgres_restart(tmp_path, postgres_server_url):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "coc_shared.testing",
            "-s",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_inner.py"),
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    names = re.findall(r"RUN_DATABASE (coc_t_\w+)", output)
    assert names, output[-3000:]
    server = make_url(normalise_url(postgres_server_url))
    admin = create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as conn:
        left_behind = conn.execute(
            text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": names[0]}
        ).scalar()
        conn.execute(text(f'DROP DATABASE IF EXISTS "{names[0]}" WITH (FORCE)'))
    assert "1 passed" in output, output[-3000:]
    assert result.returncode == 0 and " error" not in output, output[-3000:]
    assert left_behind == 0
