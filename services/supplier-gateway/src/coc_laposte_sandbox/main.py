"""``coc-laposte-sandbox``: La Poste's tracking API (Suivi v2) on this machine, for ``make run`` and
the tests: ``GET /suivi/v2/idships/{idShip}`` with the developer key in ``X-Okapi-Key``, answering
as La Poste does (``returnCode``, ``shipment`` with ``event``, ``timeline``, ``isFinal``,
``deliveryDate``).

A parcel exists from its first look: it is taken in charge (``PC1``), in transit (``ET1``) half
way through ``--deliver-after`` seconds, and delivered (``DI1``, ``isFinal``) after them. A number
of 11 to 15 letters and digits is valid (else 400); one starting with ``ZZ`` is unknown (404); a
missing or wrong key (``--key-file``) is 401.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIRST_SEEN: dict[str, float] = {}
PARIS = timezone(timedelta(hours=1))
STEPS = (
    "Votre colis est pris en charge",
    "Votre colis est en cours d'acheminement",
    "Votre colis est arrivé sur son site de distribution",
    "Votre colis est en cours de livraison",
    "Votre colis est livré",
)


def _json(body: dict, status: int) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")


def shipment(id_ship: str, age: float, deliver_after: float, now: datetime) -> dict:
    start = now - timedelta(seconds=age)
    events = [
        {
            "code": "PC1",
            "label": "Votre colis est pris en charge par La Poste",
            "date": start.isoformat(),
        }
    ]
    reached = 1
    if age >= deliver_after / 2:
        events.append(
            {
                "code": "ET1",
                "label": "Votre colis est en cours d'acheminement",
                "date": (start + timedelta(seconds=deliver_after / 2)).isoformat(),
            }
        )
        reached = 2
    delivered = age >= deliver_after
    delivered_at = start + timedelta(seconds=deliver_after)
    if delivered:
        events.append(
            {"code": "DI1", "label": "Votre colis est livré", "date": delivered_at.isoformat()}
        )
        reached = 5
    body = {
        "idShip": id_ship,
        "holder": 4,
        "product": "colissimo",
        "isFinal": delivered,
        "entryDate": start.isoformat(),
        "timeline": [
            {
                "id": i,
                "shortLabel": label,
                "longLabel": label,
                "date": start.isoformat() if i <= reached else "",
                "country": "FR",
                "status": i <= reached,
                "type": 1,
            }
            for i, label in enumerate(STEPS, start=1)
        ],
        "event": list(reversed(events)),
        "contextData": {
            "deliveryChoice": {"deliveryChoice": 0},
            "originCountry": "FR",
            "arrivalCountry": {"code": "FR", "name": "France"},
        },
        "url": f"https://www.laposte.fr/outils/suivre-vos-envois?code={id_ship}",
    }
    if delivered:
        body["deliveryDate"] = delivered_at.isoformat()
    return body


def application(key: str, deliver_after: float):
    @Request.application
    def app(request: Request) -> Response:
        match = re.fullmatch(r"/suivi/v2/idships/([^/]+)", request.path)
        if request.method != "GET" or not match:
            return _json({"code": "NOT_FOUND", "message": "Resource not found"}, 404)
        if not key or request.headers.get("X-Okapi-Key") != key:
            return _json({"code": "UNAUTHORIZED", "message": "Invalid or missing API key"}, 401)
        id_ship = match.group(1)
        lang = request.args.get("lang", "fr_FR")
        if not re.fullmatch(r"[A-Za-z0-9]{11,15}", id_ship):
            return _json(
                {
                    "lang": lang,
                    "returnCode": 400,
                    "returnMessage": "Numéro invalide",
                    "idShip": id_ship,
                },
                400,
            )
        if id_ship.upper().startswith("ZZ"):
            return _json(
                {
                    "lang": lang,
                    "scope": "open",
                    "returnCode": 104,
                    "returnMessage": "Numéro de suivi inconnu",
                    "idShip": id_ship,
                },
                404,
            )
        age = time.monotonic() - FIRST_SEEN.setdefault(id_ship, time.monotonic())
        now = datetime.now(PARIS)
        return _json(
            {
                "lang": lang,
                "scope": "open",
                "returnCode": 200,
                "shipment": shipment(id_ship, age, deliver_after, now),
            },
            200,
        )

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coc-laposte-sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8110)
    parser.add_argument("--deliver-after", type=float, default=20.0)
    parser.add_argument("--key-file", help="file holding the X-Okapi-Key it accepts")
    args = parser.parse_args(argv)
    key = ""
    if args.key_file:
        with open(args.key_file, encoding="utf-8") as f:
            key = f.read().strip()
    server = make_server(
        "127.0.0.1", args.port, application(key, args.deliver_after), threaded=True
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"sandbox": "laposte", "event": "listening", "port": args.port}), flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
