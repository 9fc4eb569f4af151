"""kill -9 of the sender between the SMTP server's accept and the mark: the mail is sent again as
the same message (same Message-ID), which a de-duplicating server keeps once. The worker is a real
``coc-notifications worker`` process started (and killed) by this test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from mail_helpers import Behaviour, SmtpTestServer, mail_settings
from sqlalchemy import select
from test_mail_templates import placed

from coc_notifications.adapters import tables
from coc_notifications.service import definition
from coc_shared.testing import handle, service_env, wait_until


def start_worker(rt, smtp_port: int) -> subprocess.Popen:
    env = service_env(rt.settings)
    env.update(mail_settings(smtp_port))
    script = Path(sys.executable).parent / "coc-notifications"
    return subprocess.Popen(
        [str(script), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def statuses(rt, ids) -> list[tuple]:
    t = tables.mails
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(t.c.source_id, t.c.status, t.c.attempts, t.c.message_id).where(
                t.c.source_id.in_(ids)
            )
        )
        return sorted(tuple(r) for r in rows)


def test_kill_9_between_accept_and_mark_resends_the_same_message_once(runtime_factory):
    behaviour = Behaviour(dedupe=True)
    server = SmtpTestServer(behaviour).start()
    rt = runtime_factory(definition, extra=mail_settings(server.port))
    first, second = placed(str(uuid.uuid4())), placed(str(uuid.uuid4()))
    second.personal = {**second.personal, "email": "second@example.org"}
    for e in (first, second):
        handle(rt, e)
    # the server stores the second mail and holds its answer: by then it has accepted the first
    # (250), which the sender marks only at the commit of the batch
    behaviour.hold_seconds["second@example.org"] = 30
    worker = start_worker(rt, server.port)
    try:
        assert server.holding.wait(timeout=30), "the sender never reached the second mail"
        assert len(server.deliveries) == 2
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        assert [s[1] for s in statuses(rt, [first.id, second.id])] == ["pending", "pending"]
        accepted = {r.rcpt_tos[0]: r.message_id for r in server.deliveries}

        behaviour.hold_seconds.clear()
        worker = start_worker(rt, server.port)
        wait_until(
            lambda: [s[1] for s in statuses(rt, [first.id, second.id])] == ["sent", "sent"],
            timeout=30,
            message="both mails marked sent after the restart",
        )
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=15)
        server.stop()
    # each mail reached the server twice, as the same message, and is kept once
    assert len(server.deliveries) == 4 and len(server.stored) == 2
    again = [r for r in server.deliveries[2:]]
    assert {r.rcpt_tos[0]: r.message_id for r in again} == accepted
    assert {m for *_, m in statuses(rt, [first.id, second.id])} == set(accepted.values())
