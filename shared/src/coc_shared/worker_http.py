"""The worker's small HTTP listener: ``/metrics`` (Prometheus), ``/healthz`` (every part of the
worker alive: liveness) and ``/readyz`` (the consumer connected and the database reachable).
Container health checks and Prometheus use it instead of looking at processes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import text

from .logging import get_logger
from .metrics import exposition

log = get_logger(__name__)


def worker_port(settings) -> int:
    """WORKER_PORT, else the API's port + 1000; 0 means no listener."""
    return settings.worker_port if settings.worker_port is not None else settings.http_port + 1000


class WorkerListener:
    def __init__(
        self, runtime, threads: list[threading.Thread], port: int, host: str | None = None
    ):
        self.runtime = runtime
        self.threads = threads
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, content_type, body = listener.answer(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # scrapes every few seconds: no line each
                pass

        self.server = ThreadingHTTPServer((host or runtime.settings.http_host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            body, content_type = exposition(self.runtime)
            return 200, content_type, body
        if path == "/healthz":
            dead = [t.name for t in self.threads if not t.is_alive()]
            return self._json(
                503 if dead else 200, {"status": "dead" if dead else "ok", "dead": dead}
            )
        if path == "/readyz":
            checks = {"database": self._database()}
            consumer = self.runtime.consumer
            if consumer is not None:
                checks["broker"] = "ok" if consumer.ready.is_set() else "consumer not connected"
            ok = all(v == "ok" for v in checks.values())
            return self._json(
                200 if ok else 503, {"status": "ready" if ok else "not_ready", "checks": checks}
            )
        return self._json(404, {"error": "not found"})

    def _database(self) -> str:
        try:
            with self.runtime.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return "ok"
        except Exception as exc:  # readiness reports, it does not fail
            return f"unavailable: {type(exc).__name__}"

    def _json(self, status: int, doc: dict) -> tuple[int, str, bytes]:
        return (
            status,
            "application/json",
            json.dumps({**doc, "service": self.runtime.definition.name}).encode(),
        )

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="worker-http", daemon=True).start()
        log.info("worker.http_listening", port=self.port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
