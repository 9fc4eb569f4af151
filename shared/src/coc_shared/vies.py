"""Intra-EU VAT numbers: the format check (python-stdnum) and the European Commission's VIES REST
API, for every service that must know whether a business buyer's VAT number is valid (orders
before payment, to price an EU business order under the reverse charge; payments, which keeps the
check of each order's number for staff).

``ViesClient.check`` never raises for VIES being down: it answers ``unavailable`` (VIES or the
member state's register did not answer, or refused for load), and the caller decides — a check
that is ``unavailable`` must not block an order; it is tried again later. ``malformed`` numbers
are refused without asking VIES.

``SandboxVies`` speaks the same REST API on a local port (tests, ``make run``):
``python -m coc_shared.vies --port 8097`` serves it, with numbers that ``stdnum`` accepts valid
unless listed as invalid, and a switch to play VIES being down.

No dependency beyond the standard library and python-stdnum (the call is ``urllib``).
"""

from __future__ import annotations

import argparse
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

VALID, INVALID, UNAVAILABLE, MALFORMED = "valid", "invalid", "unavailable", "malformed"
# userError values of the VIES REST API that mean "try again later"
UNAVAILABLE_ERRORS = {
    "MS_UNAVAILABLE",
    "TIMEOUT",
    "SERVICE_UNAVAILABLE",
    "MS_MAX_CONCURRENT_REQ",
    "GLOBAL_MAX_CONCURRENT_REQ",
    "SERVER_BUSY",
}
DEFAULT_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api"


@dataclass(frozen=True)
class VatCheck:
    vat_number: str  # compact, with its country prefix (EL for Greece)
    status: str  # valid | invalid | unavailable | malformed
    checked_at: datetime
    name: str | None = None
    address: str | None = None
    detail: str | None = None

    @property
    def final(self) -> bool:
        """A status that another check will not change (``unavailable`` is retried)."""
        return self.status != UNAVAILABLE


def split(vat_number: str) -> tuple[str, str] | None:
    """(country prefix, number) of a well-formed intra-EU VAT number, else None."""
    from stdnum.eu import vat as eu_vat

    if not vat_number or not eu_vat.is_valid(vat_number):
        return None
    compact = eu_vat.compact(vat_number)
    return compact[:2], compact[2:]


def _clean(value) -> str | None:
    text = " ".join(str(value or "").split())
    return None if text in ("", "---") else text


class ViesClient:
    def __init__(self, base_url: str = DEFAULT_URL, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def check(self, vat_number: str) -> VatCheck:
        now = datetime.now(UTC)
        parts = split(vat_number)
        if parts is None:
            return VatCheck(vat_number, MALFORMED, now, detail="not a valid intra-EU VAT number")
        country, number = parts
        url = f"{self.base_url}/ms/{country}/vat/{urllib.request.quote(number)}"
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                doc = json.loads(answer.read(1_000_000))
        except urllib.error.HTTPError as exc:
            return VatCheck(country + number, UNAVAILABLE, now, detail=f"HTTP {exc.code}")
        except (OSError, ValueError) as exc:
            return VatCheck(country + number, UNAVAILABLE, now, detail=type(exc).__name__)
        error = doc.get("userError")
        if error in UNAVAILABLE_ERRORS:
            return VatCheck(country + number, UNAVAILABLE, now, detail=error)
        return VatCheck(
            country + number,
            VALID if doc.get("isValid") is True else INVALID,
            now,
            name=_clean(doc.get("name")),
            address=_clean(doc.get("address")),
            detail=error if error not in (None, "VALID") else None,
        )


# --------------------------------------------------------------------------- sandbox
@dataclass
class SandboxVies:
    """VIES's REST API on a local port: ``GET /ms/<country>/vat/<number>``."""

    invalid: set = field(default_factory=set)  # compact numbers answered not valid
    names: dict = field(default_factory=dict)  # compact number -> (name, address)
    unavailable: bool = False  # every member state answers MS_UNAVAILABLE
    calls: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._server = None

    def answer(self, country: str, number: str) -> tuple[int, dict]:
        with self._lock:
            self.calls += 1
        compact = country + number
        if self.unavailable:
            return 200, {"isValid": False, "userError": "MS_UNAVAILABLE", "vatNumber": number}
        valid = split(compact) is not None and compact not in self.invalid
        name, address = self.names.get(compact, ("---", "---"))
        return 200, {
            "isValid": valid,
            "requestDate": datetime.now(UTC).isoformat(),
            "userError": "VALID" if valid else "INVALID",
            "name": name if valid else "---",
            "address": address if valid else "---",
            "vatNumber": number,
            "countryCode": country,
        }

    def wsgi(self, environ, start_response):
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if len(parts) >= 4 and parts[-4] == "ms" and parts[-2] == "vat":
            status, doc = self.answer(parts[-3].upper(), parts[-1])
        else:
            status, doc = 404, {"errorWrappers": [{"error": "NOT_FOUND"}]}
        body = json.dumps(doc).encode()
        start_response(
            f"{status} {'OK' if status == 200 else 'Not Found'}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a thread; returns the base URL."""
        from werkzeug.serving import make_server

        self._server = make_server(host, port, self.wsgi, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://{host}:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m coc_shared.vies", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8097)
    args = parser.parse_args(argv)
    from werkzeug.serving import run_simple

    run_simple(args.host, args.port, SandboxVies().wsgi, threaded=True)


if __name__ == "__main__":
    main()
