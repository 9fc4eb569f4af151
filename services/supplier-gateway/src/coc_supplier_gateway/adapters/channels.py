"""How a request reaches a supplier: its queue on our broker (``AmqpChannel``) or a signed JSON POST
to its endpoint (``HttpChannel``). Both send a batch of prepared messages and say, per message,
whether the supplier has it (``None``) or why not (``SendFailure``: try again later, or a refusal
that no retry will change).

The HTTP channel signs each request with the supplier's key (HMAC-SHA256 over ``timestamp + "." +
body``, headers ``X-COC-Timestamp`` and ``X-COC-Signature: sha256=<hex>``), sends the request id as
``Idempotency-Key``, calls with ``requests`` and a timeout, retries with tenacity (exponential
backoff) and keeps a circuit breaker per supplier: pybreaker, well kept and thread-safe; once a
supplier failed ``SUPPLIER_GATEWAY_BREAKER_FAILURES`` times in a row its calls fail at once (no
timeout to wait for) until ``SUPPLIER_GATEWAY_BREAKER_RESET_SECONDS`` have passed, then one call
tries it again and closes the breaker when it succeeds. A refusal (4xx) is not an outage: it does
not count against the breaker.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

import pybreaker
import requests
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from coc_shared.bus import Broker, OutgoingMessage, Publisher
from coc_shared.logging import get_logger

from ..contract import SIGNATURE_HEADER, SUPPLIER_HEADER, TIMESTAMP_HEADER

log = get_logger(__name__)


@dataclass(frozen=True)
class Outgoing:
    key: int  # the dispatch row's id
    supplier: str
    request_id: str
    order_id: str
    body: bytes


@dataclass(frozen=True)
class SendFailure:
    error: str
    permanent: bool = False  # a refusal: trying again would not help
    retry_after: float | None = None  # at the earliest (an open breaker)


class AmqpChannel:
    """Publishes requests to ``coc.suppliers`` (routing key = the supplier's code), persistent and
    mandatory, and waits for the broker's confirms of the whole batch."""

    def __init__(self, broker: Broker, confirm_timeout: float = 10.0, stop=None):
        self.publisher = Publisher(broker, confirm_timeout=confirm_timeout, stop=stop)
        self.broker = broker

    def send(self, items: list[Outgoing]) -> dict[int, SendFailure | None]:
        messages = [
            OutgoingMessage(
                message_id=item.request_id,
                body=item.body,
                routing_key=item.supplier,
                exchange=self.broker.suppliers_exchange_name,
                event_type="supplier.request",
                correlation_id=item.order_id,
            )
            for item in items
        ]
        try:
            result = self.publisher.publish_batch(messages)
        except Exception as exc:  # the connection broke: nothing counts as sent
            error = f"{type(exc).__name__}: {exc}"
            return {item.key: SendFailure(error) for item in items}
        return {
            item.key: (
                None
                if item.request_id in result.confirmed
                else SendFailure(result.failed.get(item.request_id, "not confirmed"))
            )
            for item in items
        }

    def close(self) -> None:
        self.publisher.close()


class SupplierUnavailable(Exception):
    """The supplier did not take the request now (5xx, 408, 429, no answer): try again."""


class SupplierRefused(Exception):
    """The supplier refused the request (4xx): retrying would not change it."""


def signature(key: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>``."""
    digest = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class HttpChannel:
    """POSTs requests to each supplier's endpoint, one circuit breaker per supplier."""

    def __init__(self, config, directory):
        self.config = config
        self.directory = directory
        self.session = requests.Session()
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self._lock = threading.Lock()

    def breaker(self, code: str) -> pybreaker.CircuitBreaker:
        with self._lock:
            if code not in self._breakers:
                self._breakers[code] = pybreaker.CircuitBreaker(
                    fail_max=self.config.breaker_failures,
                    reset_timeout=self.config.breaker_reset_seconds,
                    exclude=[SupplierRefused],
                    name=code,
                    listeners=[_BreakerLog()],
                )
            return self._breakers[code]

    def send(self, items: list[Outgoing]) -> dict[int, SendFailure | None]:
        return {item.key: self.send_one(item) for item in items}

    def send_one(self, item: Outgoing) -> SendFailure | None:
        supplier = self.directory.get(item.supplier)
        key = self.config.key_of(item.supplier)
        if supplier is None or supplier.endpoint is None:
            return SendFailure(f"{item.supplier} has no HTTP endpoint", permanent=True)
        if key is None:
            return SendFailure("SUPPLIER_GATEWAY_SUPPLIER_SECRET is not configured")
        breaker = self.breaker(item.supplier)
        attempt = retry(
            retry=retry_if_exception_type(
                (SupplierUnavailable, requests.ConnectionError, requests.Timeout)
            ),
            stop=stop_after_attempt(self.config.http_attempts),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            reraise=True,
        )(lambda: breaker.call(self._post, supplier.endpoint, key, item))
        try:
            attempt()
            return None
        except pybreaker.CircuitBreakerError:
            return SendFailure(
                f"circuit breaker of {item.supplier} is open",
                retry_after=self.config.breaker_reset_seconds,
            )
        except SupplierRefused as exc:
            return SendFailure(str(exc), permanent=True)
        except (SupplierUnavailable, requests.RequestException) as exc:
            return SendFailure(f"{type(exc).__name__}: {exc}")

    def _post(self, endpoint: str, key: str, item: Outgoing) -> None:
        timestamp = str(int(time.time()))
        answer = self.session.post(
            endpoint,
            data=item.body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": item.request_id,
                SUPPLIER_HEADER: item.supplier,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(key, timestamp, item.body),
            },
            timeout=(min(3.05, self.config.http_timeout), self.config.http_timeout),
            allow_redirects=False,
        )
        status = answer.status_code
        if 200 <= status < 300 or status == 409:  # 409: it has this request id already
            return
        text = answer.text[:300]
        if status in (408, 425, 429) or status >= 500:
            raise SupplierUnavailable(f"HTTP {status}: {text}")
        raise SupplierRefused(f"HTTP {status}: {text}")

    def states(self) -> dict[str, str]:
        return {code: b.current_state for code, b in self._breakers.items()}


class _BreakerLog(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state):
        log.warning(
            "supplier.breaker_state",
            supplier=cb.name,
            before=getattr(old_state, "name", str(old_state)),
            after=getattr(new_state, "name", str(new_state)),
        )
