"""The probe service's consumer and relay, run as threads against the real broker and database."""

import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent / "probe"))
import probe_service

from coc_shared.service import Runtime
from coc_shared.testing import wait_until


@pytest.fixture
def probe(settings_factory):
    runtime = Runtime(probe_service.definition, settings_factory("probe"))
    runtime.migrate()
    runtime.declare_topology()
    stop = threading.Event()
    threads = runtime.start_worker_threads(stop)
    yield runtime
    stop.set()
    for t in threads:
        t.join(timeout=10)


def count(runtime, table, **where):
    with runtime.engine.connect() as conn:
        q = select(func.count()).select_from(table)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return conn.execute(q).scalar_one()


def test_events_flow_through_outbox_broker_and_inbox(probe):
    ids = probe_service.emit(probe, 50, start=1000)
    wait_until(
        lambda: (
            count(probe, probe_service.effects) >= 50 and count(probe, probe_service.echoes) >= 50
        ),
        timeout=30,
        message="50 effects and 50 echoes",
    )
    for event_id in ids:
        assert count(probe, probe_service.effects, event_id=event_id) == 1
