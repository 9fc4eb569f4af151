"""Harness of the cross-process tests: the probe service runs as real OS processes.

Every test gets its own database (``coc_t_<run>_x<n>``) and its own ``BUS_PREFIX`` on top of the
run's settings (``settings_factory``), so that a message or an outbox row left behind by one test
(a poison message, a killed relay's batch) never reaches the next one, and so that a test may fix
queue arguments of its own (``x-delivery-limit``). Both are removed at teardown, and every child
process is killed. Each child's stderr (JSON log lines) goes to a file in ``tmp_path``; the logs of
a failed test are attached to its report.

Infrastructure faults (memory alarm, ``stop_app``, PostgreSQL restart) are context managers that
always restore the service, also from a watchdog thread in case the test itself hangs.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import kombu
import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from coc_shared.db import normalise_url
from coc_shared.service import Runtime
from coc_shared.tables import parked_messages, support_actions
from coc_shared.testing import RUN_ID, STAFF_KEYS, delete_bus_names, service_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
PROBE_DIR = ROOT / "tests" / "probe"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SUPPORT_CLI = str(ROOT / ".venv" / "bin" / "coc-support")
PG_VERSION = "15"

sys.path.insert(0, str(PROBE_DIR))
import probe_service  # noqa: E402

_counter = itertools.count(1)


# --------------------------------------------------------------------------- child processes
class Proc:
    """One child process of the probe service and its captured stderr."""

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path):
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.popen.returncode

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def logs(self, event: str | None = None, **match) -> list[dict]:
        """The JSON log lines (optionally those with this ``event`` and these key values)."""
        out = []
        for line in self.text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue  # a line being written
            if event is not None and doc.get("event") != event:
                continue
            if any(doc.get(k) != v for k, v in match.items()):
                continue
            out.append(doc)
        return out

    def wait_log(self, event: str, count: int = 1, timeout: float = 30, **match) -> list[dict]:
        def found():
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode} while waiting for {event}"
                )
            lines = self.logs(event, **match)
            return lines if len(lines) >= count else None

        return wait_until(
            found,
            timeout=timeout,
            interval=0.05,
            message=f"{count} x {event} {match} in {self.name}",
        )

    def amqp_local_ports(self) -> set[int]:
        """Local ports of this process's TCP connections to the broker (from ``ss``)."""
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", "( dport = :5672 )"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        ports = set()
        for line in out.splitlines():
            if f"pid={self.pid}," in line:
                local = line.split()[
                    2
                ]  # Recv-Q Send-Q Local Peer Process (no State column with a state filter)
                ports.add(int(local.rsplit(":", 1)[1]))
        return ports


# -------------------------------------------------------------------------- the pipeline under test
class Pipeline:
    def __init__(self, settings, runtime: Runtime, tmp_path: Path, rabbitmq_url: str):
        self.settings = settings
        self.runtime = runtime
        self.tmp_path = tmp_path
        self.rabbitmq_url = rabbitmq_url
        self.procs: list[Proc] = []
        self.probe = probe_service
        self.queue = runtime.broker.queue_name("probe")

    # processes
    def env(self, **extra) -> dict:
        env = service_env(self.settings)
        env.update({"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"})
        env.pop("STAFF_TOKEN", None)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start(self, command: str, **env) -> Proc:
        """Start ``probe_service.py worker|consume|relay`` as a child process."""
        n = sum(1 for p in self.procs if p.name.startswith(command)) + 1
        name = f"{command}-{n}"
        log_path = self.tmp_path / f"{name}.stderr.log"
        with open(log_path, "wb") as err:
            popen = subprocess.Popen(
                [PYTHON, str(PROBE_DIR / "probe_service.py"), command],
                cwd=str(ROOT),
                env=self.env(**env),
                stdout=err,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def start_consumer(self, command: str = "consume", timeout: float = 30, **env) -> Proc:
        proc = self.start(command, **env)
        proc.wait_log("consumer.started", timeout=timeout)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            try:
                proc.kill9()
            except Exception:
                pass

    def report(self) -> str:
        parts = []
        for proc in self.procs:
            lines = proc.text().splitlines()
            parts.append(
                f"----- {proc.name} (pid {proc.pid}, exit {proc.popen.poll()}), "
                f"last {min(len(lines), 150)} of {len(lines)} lines -----"
            )
            parts.extend(lines[-150:])
        return "\n".join(parts)

    # events and database
    def emit(self, count: int = 1, start: int = 0, **data) -> list[str]:
        """Commit ``count`` probe.ping events to the probe's outbox (the test process is the
        producer)."""
        return probe_service.emit(self.runtime, count, start, **data)

    def scalar(self, sql: str, **params):
        with self.runtime.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        with self.runtime.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def execute(self, sql: str, **params) -> None:
        with self.runtime.engine.begin() as conn:
            conn.execute(text(sql), params)

    def count(self, table, **where) -> int:
        with self.runtime.engine.connect() as conn:
            q = select(func.count()).select_from(table)
            for k, v in where.items():
                q = q.where(table.c[k] == v)
            return conn.execute(q).scalar_one()

    def effects_by_event(self) -> dict[str, int]:
        return dict(self.rows("SELECT event_id, count(*) FROM probe.effects GROUP BY event_id"))

    def echoes_by_cause(self) -> dict[str, int]:
        return dict(self.rows("SELECT cause, count(*) FROM probe.echoes GROUP BY cause"))

    def attempts(self, event_id: str) -> int:
        return self.scalar("SELECT count FROM probe.attempts WHERE event_id = :e", e=event_id) or 0

    def done(self, ids) -> bool:
        """Every event of ``ids`` has its effect and its echo (the consumer's own event came
        back)."""
        ids = set(ids)
        effects, echoes = self.effects_by_event(), self.echoes_by_cause()
        return ids <= effects.keys() and ids <= echoes.keys()

    def wait_done(self, ids, timeout: float = 30) -> None:
        ids = list(ids)

        def progress():
            return self.done(ids) or None

        try:
            wait_until(
                progress,
                timeout=timeout,
                interval=0.1,
                message=f"effects and echoes of {len(ids)} events",
            )
        except AssertionError:
            effects, echoes = self.effects_by_event(), self.echoes_by_cause()
            raise AssertionError(
                f"after {timeout}s: {sum(1 for i in ids if i in effects)}/{len(ids)} effects, "
                f"{sum(1 for i in ids if i in echoes)}/{len(ids)} echoes"
            ) from None

    def assert_exactly_once(self, ids, total: int | None = None) -> None:
        """One effect and one echo per event id; ``total``: no other effect at all in this test's
        database."""
        ids = list(ids)
        effects, echoes = self.effects_by_event(), self.echoes_by_cause()
        wrong_effects = {i: effects.get(i, 0) for i in ids if effects.get(i, 0) != 1}
        wrong_echoes = {i: echoes.get(i, 0) for i in ids if echoes.get(i, 0) != 1}
        assert not wrong_effects, (
            f"events without exactly one effect: {dict(list(wrong_effects.items())[:10])}"
        )
        assert not wrong_echoes, (
            f"events without exactly one echo: {dict(list(wrong_echoes.items())[:10])}"
        )
        if total is not None:
            assert sum(effects.values()) == total
            assert sum(echoes.values()) == total

    def parked(self, **where) -> list[dict]:
        with self.runtime.parking_engine.connect() as conn:
            q = select(parked_messages).order_by(parked_messages.c.id)
            for k, v in where.items():
                q = q.where(parked_messages.c[k] == v)
            return [dict(r._mapping) for r in conn.execute(q)]

    def support_actions(self) -> list[dict]:
        with self.runtime.parking_engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(select(support_actions).order_by(support_actions.c.id))
            ]

    # broker
    @contextmanager
    def amqp_channel(self):
        with kombu.Connection(self.rabbitmq_url, connect_timeout=5) as conn:
            yield conn.channel()

    def queue_depth(self, name: str) -> int:
        with self.amqp_channel() as channel:
            return channel.queue_declare(name, passive=True).message_count

    # infrastructure faults (module functions below)
    @staticmethod
    def memory_alarm(max_seconds: float = 40):
        return broker_memory_alarm(max_seconds)

    @staticmethod
    def broker_stopped(max_seconds: float = 40):
        return broker_stopped(max_seconds)

    @staticmethod
    def restart_postgres() -> None:
        restart_postgres()

    # support command line
    @staticmethod
    def json(result: subprocess.CompletedProcess) -> dict:
        return cli_json(result)

    def cli(self, *args: str, token: str | None = None, **env) -> subprocess.CompletedProcess:
        environment = self.env(**env)
        environment.setdefault("STAFF_TOKEN_PRIVATE_KEY", STAFF_KEYS[0])  # the admin's key
        if token is not None:
            environment["STAFF_TOKEN"] = token
        return subprocess.run(
            [SUPPORT_CLI, *args],
            cwd=str(ROOT),
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )


def cli_json(result: subprocess.CompletedProcess) -> dict:
    assert result.stdout.strip(), (
        f"no output (exit {result.returncode}); stderr: {result.stderr[-2000:]}"
    )
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- fixtures
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.failed:
        pipeline = getattr(item, "funcargs", {}).get("pipeline")
        if isinstance(pipeline, Pipeline) and pipeline.procs:
            rep.sections.append(("child process logs", pipeline.report()))
    return rep


@pytest.fixture
def pipeline(request, tmp_path, settings_factory, postgres_server_url, rabbitmq_url):
    """The probe service's database and topology, ready for child processes (``pipeline.start``).

    ``@pytest.mark.pipeline_settings(**overrides)`` changes this test's settings (e.g.
    retry_delays)."""
    n = next(_counter)
    marker = request.node.get_closest_marker("pipeline_settings")
    overrides = dict(marker.kwargs) if marker else {}
    server = make_url(normalise_url(postgres_server_url))
    db_name = f"coc_t_{RUN_ID}_x{n}"
    admin = create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    db_url = server.set(database=db_name).render_as_string(hide_password=False)
    prefix = f"t{RUN_ID}.x{n}."
    settings = settings_factory(
        "probe", database_url=db_url, parking_database_url=db_url, bus_prefix=prefix, **overrides
    )
    runtime = Runtime(probe_service.definition, settings)
    pipe = Pipeline(settings, runtime, tmp_path, rabbitmq_url)
    try:
        runtime.migrate()
        runtime.declare_topology()
        yield pipe
    finally:
        pipe.kill_all()
        runtime.engine.dispose()
        runtime.parking_engine.dispose()

        def dropped() -> bool:
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
                return True
            except Exception as exc:
                print(f"dropping {db_name}: {exc}")
                return False

        wait_until(dropped, timeout=30, interval=0.5, message=f"database {db_name} dropped")
        try:
            delete_bus_names(rabbitmq_url, prefix)
        except Exception as exc:
            print(f"could not delete the bus names of {prefix}: {exc}")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "pipeline_settings(**overrides): settings of the test's probe service"
    )


# --------------------------------------------------------------------------- infrastructure faults
def _run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=True)


class _Watchdog:
    """Calls ``restore`` after ``seconds`` unless cancelled: a hung test never leaves the broker
    broken."""

    def __init__(self, seconds: float, restore):
        self.timer = threading.Timer(seconds, restore)
        self.timer.daemon = True

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()


def restore_memory_watermark() -> None:
    _run("rabbitmqctl", "set_vm_memory_high_watermark", "0.4")


@contextmanager
def broker_memory_alarm(max_seconds: float = 40):
    """A memory alarm on the broker: every connection that publishes is blocked (no confirm
    comes)."""
    _run("rabbitmqctl", "set_vm_memory_high_watermark", "0")
    try:
        with _Watchdog(max_seconds, restore_memory_watermark):
            yield
    finally:
        restore_memory_watermark()


def _start_app() -> None:
    _run("rabbitmqctl", "start_app")


@contextmanager
def broker_stopped(max_seconds: float = 40):
    """``rabbitmqctl stop_app`` … ``start_app`` (always started again)."""
    _run("rabbitmqctl", "stop_app")
    try:
        with _Watchdog(max_seconds, _start_app):
            yield
    finally:
        _start_app()
        _run("rabbitmqctl", "await_startup")


def restart_postgres() -> None:
    versions = os.listdir("/etc/postgresql")
    version = PG_VERSION if PG_VERSION in versions else sorted(versions)[-1]
    _run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart")
    # Pooled connections of this test process died with the server: drop them, so the test's own
    # queries start afresh (checked-out ones are not affected).
    for obj in gc.get_objects():
        if isinstance(obj, Engine):
            obj.dispose()
