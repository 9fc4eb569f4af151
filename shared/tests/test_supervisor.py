"""make run's supervision with real child processes: a killed process comes back, the others keep
running, one that keeps crashing is given up on, and every output line is whole and named."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading

from coc_shared.supervisor import Child, Supervisor, label_line
from coc_shared.testing import wait_until

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"]
CRASHER = [sys.executable, "-c", "import sys; print('boom', flush=True); sys.exit(3)"]


class Lines(io.StringIO):
    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


def supervising(supervisor: Supervisor):
    stop = threading.Event()
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(code=supervisor.run(stop, 0.02)))
    thread.start()
    return stop, thread, outcome


def test_a_process_killed_with_sigkill_is_restarted_and_the_others_keep_running(tmp_path):
    out = Lines()
    supervisor = Supervisor(log_dir=str(tmp_path), out=out, first_delay=0.05)
    worker = supervisor.add(Child("orders worker", "orders", SLEEPER))
    api = supervisor.add(Child("payments api", "payments", SLEEPER))
    first_worker, api_pid = worker.pid, api.pid
    stop, thread, outcome = supervising(supervisor)
    try:
        os.kill(first_worker, signal.SIGKILL)
        wait_until(lambda: worker.pid != first_worker and worker.process.poll() is None, 10)
        assert api.pid == api_pid and api.process.poll() is None  # untouched
        assert worker.restarts == 1
    finally:
        stop.set()
        thread.join(20)
    assert outcome["code"] == 0
    events = [json.loads(line) for line in out.lines() if '"process.' in line]
    assert [(e["event"], e["process"], e["service"]) for e in events] == [
        ("process.exited", "orders worker", "coc-run"),
        ("process.restarted", "orders worker", "coc-run"),
    ]
    assert events[0]["exit_code"] == -signal.SIGKILL
    assert worker.process.poll() is not None and api.process.poll() is not None  # all stopped


def test_a_process_that_keeps_crashing_is_given_up_on_with_a_growing_delay(tmp_path):
    out = Lines()
    supervisor = Supervisor(
        log_dir=str(tmp_path), out=out, first_delay=0.02, max_delay=0.08, give_up_after=4
    )
    crasher = supervisor.add(Child("gdpr worker", "gdpr", CRASHER))
    steady = supervisor.add(Child("orders api", "orders", SLEEPER))
    stop, thread, outcome = supervising(supervisor)
    try:
        wait_until(lambda: crasher.given_up, 20)
        assert steady.process.poll() is None  # the rest of the stack keeps running
    finally:
        stop.set()
        thread.join(20)
    assert outcome["code"] == 1
    events = [json.loads(line) for line in out.lines() if '"process.' in line]
    delays = [e["restart_in_seconds"] for e in events if e["event"] == "process.exited"]
    assert delays == [0.02, 0.04, 0.08]  # doubling, capped
    assert events[-1]["event"] == "process.given_up" and events[-1]["crashes"] == 4
    assert out.lines().count("[gdpr] boom") == 4  # its own output, named, before each death
    assert (tmp_path / "gdpr.log").read_text().splitlines().count("[gdpr] boom") == 4


def test_concurrent_outputs_stay_whole_lines_each_naming_its_service(tmp_path):
    writer = (
        "import json, sys\n"
        "for i in range(2000):\n"
        "    sys.stdout.write(json.dumps({'event': 'tick', 'i': i, 'pad': 'x' * 300}) + '\\n')\n"
        "    sys.stderr.write('plain line %d ' % i + 'y' * 300 + '\\n')\n"
    )
    out = Lines()
    supervisor = Supervisor(log_dir=str(tmp_path), out=out, give_up_after=99)
    first = supervisor.add(Child("orders api", "orders", [sys.executable, "-c", writer]))
    second = supervisor.add(Child("payments api", "payments", [sys.executable, "-c", writer]))
    wait_until(lambda: first.process.poll() is not None and second.process.poll() is not None, 30)
    for child in (first, second):
        for thread in child.threads:
            thread.join(10)
    supervisor.stop_all()
    lines = out.lines()
    json_lines = [json.loads(line) for line in lines if line.startswith("{")]
    plain = [line for line in lines if not line.startswith("{")]
    assert len(json_lines) == 4000 and len(plain) == 4000
    assert {entry["service"] for entry in json_lines} == {"orders", "payments"}
    assert all(len(entry["pad"]) == 300 for entry in json_lines)
    assert all(line.startswith(("[orders] plain line", "[payments] plain line")) for line in plain)
    assert all(line.endswith("y" * 300) for line in plain)
    assert len((tmp_path / "orders.log").read_text().splitlines()) == 4000


def test_a_line_names_its_service_once():
    assert json.loads(label_line('{"event": "x"}\n', "orders")) == {
        "service": "orders",
        "event": "x",
    }
    assert label_line('{"service": "payments", "event": "x"}', "orders") == (
        '{"service": "payments", "event": "x"}'
    )
    assert label_line("[2026-12-05] Booting worker\n", "orders") == (
        "[orders] [2026-12-05] Booting worker"
    )
    assert label_line("{not json", "gdpr") == "[gdpr] {not json"
