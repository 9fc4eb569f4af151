"""``make run``'s local SMTP server (``python -m coc_notifications.sandbox``, or
``coc-smtp-sandbox``): aiosmtpd on 127.0.0.1 that writes every message it receives, as it
received it, to ``<folder>/<time>-<n>.eml`` (open it with any mail client, or read it as text).
It accepts any sender and recipient and relays nothing: a stand-in for the mail provider on a
developer's machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
import time

_counter = itertools.count(1)


class EmlWriter:
    """aiosmtpd handler: each accepted message to its own .eml file (written, then renamed)."""

    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{stamp}-{os.getpid()}-{next(_counter):06d}.eml"
        path = os.path.join(self.folder, name)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        with open(path + ".part", "wb") as f:
            f.write(content.replace(b"\r\n", b"\n"))
        os.replace(path + ".part", path)
        return "250 2.0.0 Saved as " + name


def serve(host: str, port: int, folder: str):
    """Start the server in a thread; returns the aiosmtpd controller (``.stop()`` to end it)."""
    from aiosmtpd.controller import Controller

    controller = Controller(EmlWriter(folder), hostname=host, port=port, enable_SMTPUTF8=True)
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coc-smtp-sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", default=os.path.join("var", "mail"))
    args = parser.parse_args(argv)
    controller = serve(args.host, args.port, os.path.abspath(args.folder))
    print(
        f"SMTP sandbox on {args.host}:{args.port}: mails saved in {os.path.abspath(args.folder)}",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
