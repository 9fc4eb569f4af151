"""``coc-supplier-sandbox``: the reference supplier integration, written only against the documented
contract (docs/supplier-integration.md, docs/supplier-asyncapi.json, the HTTP callback in
services/supplier-gateway/openapi.json); it imports nothing of the gateway.

It plays one supplier (``--supplier CODE``):

* amqp channel: connects with the URL in ``--amqp-url-file`` (its own user ``coc-supplier-<code>``),
  consumes ``<prefix>coc.supplier.<code>`` and publishes replies to ``<prefix>coc.supplier-replies``
  with its code as routing key, its user as ``user_id``, persistent, with publisher confirms;
* http channel (``--http-port``): serves ``POST /coc/requests``, checks the signature
  (HMAC-SHA256 over ``timestamp + "." + body``, 5-minute window), answers
  202, and replies through the gateway's signed callback (``--gateway-url``).

Its key (``--key-file``: the 64 hex characters the gateway's admin gave it) signs its HTTP calls
and checks ours.

For each request (handled once per ``request_id``: a duplicate is acknowledged and ignored) it
downloads every document through its link, then replies ``rejected`` when the VIN matches
``--reject-vin`` (or a download failed), else ``accepted`` after ``--accept-after`` seconds and
``issued`` with a generated PDF (or ``original_posted`` with ``--paper``) after ``--issue-after``;
with ``--ships`` it also replies ``shipped`` (Colissimo, a tracking number of its own) after
``--ship-after`` more seconds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import hmac
import json
import queue
import random
import re
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import requests

RECEIVED: dict[str, dict] = {}  # request_id -> the request (duplicates are recognised by it)
LOG_LOCK = threading.Lock()


def log(event: str, **fields) -> None:
    line = {"at": datetime.now(UTC).isoformat(), "sandbox": "supplier", "event": event}
    line.update(fields)
    with LOG_LOCK:
        print(json.dumps(line, ensure_ascii=False), flush=True)


def sign(key: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def certificate_pdf(request: dict) -> bytes:
    """A one-page PDF certificate (written by hand: objects, cross-reference table, trailer)."""
    vehicle = request.get("vehicle") or {}
    lines = [
        "CERTIFICATE OF CONFORMITY (sandbox)",
        f"Supplier: {request.get('supplier')}",
        f"Order: {request.get('order_number')}",
        f"VIN: {vehicle.get('vin', '-')}",
        f"Request: {request.get('request_id')}",
    ]
    text = (
        "BT /F1 14 Tf 72 760 Td 18 TL "
        + " ".join(
            f"({re.sub(r'[^ -~]', '?', line).replace('(', '[').replace(')', ']')}) '"
            for line in lines
        )
        + " ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


class Supplier:
    def __init__(self, args):
        self.args = args
        self.code = args.supplier
        self.key = read_file(args.key_file)
        self.inbox: queue.Queue = queue.Queue()  # requests received, handled by the main loop
        self.due: list = []  # heap of (when, n, reply)
        self.n = 0

    # ------------------------------------------------------------------ a request
    def received(self, request: dict) -> bool:
        """True the first time this request id is seen."""
        request_id = request.get("request_id")
        if not isinstance(request_id, str) or request.get("supplier") != self.code:
            log("request.refused", reason="no request_id, or not for this supplier")
            return False
        if request_id in RECEIVED:
            log("request.duplicate", request_id=request_id, resend=request.get("resend"))
            return False
        RECEIVED[request_id] = request
        log(
            "request.received",
            request_id=request_id,
            order_number=request.get("order_number"),
            documents=len(request.get("documents") or []),
        )
        return True

    def handle(self, request: dict) -> None:
        failed = []
        for document in request.get("documents") or []:
            try:
                answer = requests.get(document["url"], timeout=10)
                ok = answer.status_code == 200 and len(answer.content) > 0
            except requests.RequestException:
                ok = False
            log(
                "document.downloaded" if ok else "document.unavailable",
                request_id=request["request_id"],
                kind=document.get("kind"),
            )
            if not ok:
                failed.append(document.get("kind"))
        vin = (request.get("vehicle") or {}).get("vin") or ""
        now = time.monotonic()
        if failed or (self.args.reject_vin and re.search(self.args.reject_vin, vin)):
            reason = (
                "a document could not be downloaded"
                if failed
                else "the registration certificate does not match the vehicle"
            )
            self.schedule(
                now + self.args.accept_after,
                request,
                "rejected",
                {
                    "reason": reason,
                    "documents_to_redo": failed or ["registration_certificate"],
                },
            )
            return
        self.schedule(now + self.args.accept_after, request, "accepted", {})
        issued = (
            {"original_posted": True}
            if self.args.paper
            else {
                "certificate": {
                    "content_type": "application/pdf",
                    "data_base64": base64.b64encode(certificate_pdf(request)).decode(),
                }
            }
        )
        self.schedule(now + self.args.issue_after, request, "issued", issued)
        if self.args.ships and request.get("ships_to_customer", True):
            number = "6A" + "".join(random.choice("0123456789") for _ in range(11))
            self.schedule(
                now + self.args.issue_after + self.args.ship_after,
                request,
                "shipped",
                {"carrier": "colissimo", "tracking_number": number},
            )

    def schedule(self, when: float, request: dict, kind: str, fields: dict) -> None:
        self.n += 1
        reply = {
            "reply_id": str(uuid.uuid4()),
            "request_id": request["request_id"],
            "supplier": self.code,
            "kind": kind,
            **fields,
        }
        heapq.heappush(self.due, (when, self.n, reply))

    def due_replies(self) -> list[dict]:
        ready = []
        while self.due and self.due[0][0] <= time.monotonic():
            ready.append(heapq.heappop(self.due)[2])
        return ready

    def stamp(self, reply: dict) -> bytes:
        reply["occurred_at"] = datetime.now(UTC).isoformat()
        return json.dumps(reply).encode()

    # ------------------------------------------------------------------ http channel
    def callback(self, reply: dict) -> bool:
        body = self.stamp(reply)
        timestamp = str(int(time.time()))
        try:
            answer = requests.post(
                f"{self.args.gateway_url.rstrip('/')}/v1/suppliers/{self.code}/replies",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-COC-Timestamp": timestamp,
                    "X-COC-Signature": sign(self.key, timestamp, body),
                },
                timeout=10,
            )
        except requests.RequestException as exc:
            log("reply.failed", kind=reply["kind"], error=str(exc)[:200])
            return False
        log(
            "reply.sent",
            kind=reply["kind"],
            request_id=reply["request_id"],
            via="http",
            status=answer.status_code,
            answer=answer.text[:200],
        )
        return answer.status_code < 500


def serve_http(supplier: Supplier, port: int):
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    @Request.application
    def app(request: Request) -> Response:
        if request.method != "POST" or request.path != "/coc/requests":
            return Response("not found", 404)
        body = request.get_data()
        timestamp = request.headers.get("X-COC-Timestamp", "")
        given = request.headers.get("X-COC-Signature", "")
        if (
            not timestamp.isdigit()
            or abs(time.time() - int(timestamp)) > 300
            or not hmac.compare_digest(sign(supplier.key, timestamp, body), given)
        ):
            log("request.bad_signature")
            return Response('{"error":"bad signature"}', 401, mimetype="application/json")
        try:
            message = json.loads(body)
        except ValueError:
            return Response('{"error":"not JSON"}', 400, mimetype="application/json")
        if message.get("request_id") != request.headers.get("Idempotency-Key"):
            return Response('{"error":"Idempotency-Key"}', 400, mimetype="application/json")
        if supplier.received(message):
            supplier.inbox.put(message)
        return Response('{"status":"received"}', 202, mimetype="application/json")

    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log("http.listening", port=port)
    return server


def run_http(supplier: Supplier, stop: threading.Event) -> None:
    server = serve_http(supplier, supplier.args.http_port)
    retry: list[dict] = []
    try:
        while not stop.is_set():
            try:
                supplier.handle(supplier.inbox.get(timeout=0.2))
            except queue.Empty:
                pass
            pending, retry = retry + supplier.due_replies(), []
            for reply in pending:
                if not supplier.callback(reply):
                    retry.append(reply)
    finally:
        server.shutdown()


# ------------------------------------------------------------------ amqp channel
def run_amqp(supplier: Supplier, stop: threading.Event) -> None:
    import amqp

    url = read_file(supplier.args.amqp_url_file)
    prefix = supplier.args.prefix
    queue_name = f"{prefix}coc.supplier.{supplier.code}"
    exchange = f"{prefix}coc.supplier-replies"
    while not stop.is_set():
        try:
            connection = connect(url)
        except Exception as exc:
            log("amqp.unreachable", error=str(exc)[:200])
            stop.wait(5)
            continue
        user = connection.userid if hasattr(connection, "userid") else None
        try:
            channel = connection.channel()
            channel.confirm_select()
            channel.basic_qos(0, 20, False)

            def on_message(message, channel=channel):
                try:
                    request = json.loads(message.body)
                except ValueError:
                    log("request.not_json")
                    request = None
                if isinstance(request, dict) and supplier.received(request):
                    supplier.inbox.put(request)
                channel.basic_ack(message.delivery_tag)  # stored (in memory) before the ack

            channel.basic_consume(queue_name, callback=on_message)
            log("amqp.consuming", queue=queue_name)
            retry: list[dict] = []
            while not stop.is_set():
                try:
                    connection.drain_events(timeout=0.2)
                except TimeoutError:
                    connection.heartbeat_tick()
                while not supplier.inbox.empty():
                    supplier.handle(supplier.inbox.get())
                for reply in retry + supplier.due_replies():
                    body = supplier.stamp(reply)
                    channel.basic_publish(
                        amqp.Message(
                            body,
                            content_type="application/json",
                            delivery_mode=2,
                            message_id=reply["reply_id"],
                            user_id=user,
                        ),
                        exchange=exchange,
                        routing_key=supplier.code,
                    )
                    log(
                        "reply.sent", kind=reply["kind"], request_id=reply["request_id"], via="amqp"
                    )
                retry = []
        except Exception as exc:
            log("amqp.connection_lost", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            stop.wait(1)
        finally:
            try:
                connection.collect()
            except Exception:
                pass


def read_file(path: str | None) -> str:
    """A secret kept in a file (never on the command line, where other users see it)."""
    if not path:
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def connect(url: str):
    from urllib.parse import unquote, urlsplit

    import amqp

    parts = urlsplit(url)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    connection = amqp.Connection(
        f"{parts.hostname}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=vhost,
        heartbeat=30,
        connect_timeout=5,
    )
    connection.connect()
    connection.userid = unquote(parts.username or "guest")
    return connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="coc-supplier-sandbox", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--supplier", required=True)
    parser.add_argument("--prefix", default="", help="BUS_PREFIX of the broker's names")
    parser.add_argument("--http-port", type=int, help="play an http supplier on this port")
    parser.add_argument("--gateway-url", default="http://127.0.0.1:8003")
    parser.add_argument("--key-file", help="file holding the supplier's HMAC key")
    parser.add_argument("--amqp-url-file", help="file holding the broker URL (amqp channel)")
    parser.add_argument("--accept-after", type=float, default=2.0)
    parser.add_argument("--issue-after", type=float, default=5.0)
    parser.add_argument("--ship-after", type=float, default=3.0)
    parser.add_argument("--ships", action="store_true", help="ship to the customer, reply shipped")
    parser.add_argument("--paper", action="store_true", help="issue on paper (original_posted)")
    parser.add_argument(
        "--reject-vin",
        default="^VF3REJECT",
        help="reject requests whose VIN matches this regular expression",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    supplier = Supplier(args)
    log("started", supplier=args.supplier, channel="http" if args.http_port else "amqp")
    if args.http_port:
        run_http(supplier, stop)
    else:
        run_amqp(supplier, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
