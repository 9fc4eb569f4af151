"""``make run``'s process supervision: start each child, restart it when it dies, keep the others.

A child that exits while the run is not stopping is started again after a backoff that doubles
from ``first_delay`` up to ``max_delay``; one that crashed ``give_up_after`` times in a row, each
time within ``healthy_after`` seconds of its start, is reported and left stopped (the rest of the
stack keeps running). A child that ran longer than ``healthy_after`` starts its count afresh.

Output: each child's stdout and stderr are read line by line (so that two processes' lines are
never glued together), every line names its service (JSON lines gain a ``service`` field when
they lack one, other lines are prefixed with the child's name), and each line is written both to
the run's output and to ``<log_dir>/<service>.log``.

Hand-written rather than supervisord/honcho: those would need a configuration file generated from
the service definitions and a second process manager to install; what ``make run`` needs is
these few rules, tested in shared/tests/test_supervisor.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .logging import get_logger

log = get_logger("coc-run")


@dataclass
class Child:
    name: str  # e.g. "orders worker"
    service: str  # e.g. "orders": names the log file and every line
    command: list[str]
    env: dict[str, str] | None = None
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    crashes: int = 0  # in a row, each soon after its start
    restarts: int = 0
    restart_at: float | None = None
    given_up: bool = False
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def label_line(line: str, service: str) -> str:
    """``line`` naming its service: JSON objects gain ``service`` (kept when present), any other
    line is prefixed with it."""
    stripped = line.rstrip("\r\n")
    if stripped.startswith("{"):
        try:
            entry = json.loads(stripped)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            if "service" in entry:
                return stripped
            return json.dumps({"service": service, **entry}, ensure_ascii=False)
    return f"[{service}] {stripped}"


class Supervisor:
    def __init__(
        self,
        log_dir: str | None = None,
        out=None,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        healthy_after: float = 60.0,
        give_up_after: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log_dir = log_dir
        self.out = out or sys.stdout
        self.first_delay, self.max_delay = first_delay, max_delay
        self.healthy_after, self.give_up_after = healthy_after, give_up_after
        self.clock = clock
        self.children: list[Child] = []
        self._write_lock = threading.Lock()
        self._log_files: dict[str, object] = {}
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)

    # -- output ---------------------------------------------------------------------------------
    def write(self, service: str, line: str) -> None:
        labelled = label_line(line, service)
        with self._write_lock:
            self.out.write(labelled + "\n")
            self.out.flush()
            if self.log_dir:
                file = self._log_files.get(service)
                if file is None:
                    path = os.path.join(self.log_dir, service.replace(" ", "-") + ".log")
                    file = self._log_files[service] = open(path, "a", encoding="utf-8")
                file.write(labelled + "\n")
                file.flush()

    def say(self, event: str, **fields) -> None:
        self.write("coc-run", json.dumps({"event": event, **fields}, ensure_ascii=False))

    def _pump(self, child: Child, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.write(child.service, raw.decode("utf-8", "replace"))
        stream.close()

    # -- processes ------------------------------------------------------------------------------
    def add(self, child: Child) -> Child:
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.command,
            env=child.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        child.started_at = self.clock()
        child.restart_at = None
        child.threads = [
            threading.Thread(target=self._pump, args=(child, stream), daemon=True)
            for stream in (child.process.stdout, child.process.stderr)
        ]
        for thread in child.threads:
            thread.start()

    def check(self) -> None:
        """One round: restart the children whose backoff has passed, note the new deaths."""
        now = self.clock()
        for child in self.children:
            if child.given_up or child.process is None:
                continue
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self._spawn(child)
                    self.say(
                        "process.restarted",
                        process=child.name,
                        pid=child.pid,
                        restarts=child.restarts,
                    )
                continue
            code = child.process.poll()
            if code is None:
                continue
            for thread in child.threads:  # its last lines first
                thread.join(timeout=2)
            lived = now - child.started_at
            child.crashes = 1 if lived >= self.healthy_after else child.crashes + 1
            if child.crashes >= self.give_up_after:
                child.given_up = True
                self.say(
                    "process.given_up",
                    process=child.name,
                    exit_code=code,
                    crashes=child.crashes,
                    level="error",
                )
                continue
            delay = min(self.max_delay, self.first_delay * 2 ** (child.crashes - 1))
            child.restart_at = now + delay
            self.say(
                "process.exited",
                process=child.name,
                exit_code=code,
                restart_in_seconds=delay,
                level="warning",
            )

    def run(self, stop: threading.Event, interval: float = 0.2) -> int:
        """Supervise until ``stop``; 1 if a child was given up on, else 0. Stops every child."""
        while not stop.is_set():
            self.check()
            stop.wait(interval)
        self.stop_all()
        return 1 if any(child.given_up for child in self.children) else 0

    def stop_all(self, grace: float = 15.0) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in running:
            child.process.terminate()
        deadline = time.monotonic() + grace
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        for child in self.children:
            for thread in child.threads:
                thread.join(timeout=2)
        with self._write_lock:
            for file in self._log_files.values():
                file.close()
            self._log_files.clear()
