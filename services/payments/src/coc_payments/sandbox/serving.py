"""What every sandbox's command line shares: its secrets read from files, and a werkzeug server
on 127.0.0.1 until SIGINT or SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import threading

from werkzeug.serving import make_server


def read_secret(path: str | None) -> str:
    """The stripped content of ``path`` ('' when no path is given)."""
    if not path:
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def write_secret(path: str, value: str) -> str:
    """``value`` in ``path`` (mode 600), replaced whole; returns ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    return path


class Server:
    """A werkzeug application served by threads on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, app, port: int = 0):
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_until_stopped(name: str, sandbox, port: int) -> int:
    """``sandbox.serve(port)`` until SIGINT or SIGTERM, then ``sandbox.close()``; says where it
    listens as one JSON line."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sandbox.serve(port)
    print(json.dumps({"sandbox": name, "event": "listening", "url": sandbox.url}), flush=True)
    stop.wait()
    sandbox.close()
    return 0
