"""RabbitMQ topology and the confirming publisher, over kombu.

The same code drives two transports: RabbitMQ (``amqp://``, py-amqp underneath) in production
and tests, and kombu's in-process ``memory://`` transport in the embedded mode of ``make run``.
What differs is confined here: RabbitMQ gets quorum queues, publisher confirms, ``mandatory``
returns and TTL-based delay queues; the memory transport routes inside one process only.

Names (``BUS_PREFIX`` is empty in production)::

    {prefix}coc.events                  durable topic exchange, routing key = event type
    {prefix}coc.{service}               the service's quorum queue, bound to the types it handles
    {prefix}coc.{service}.retry.{ms}ms  delay queue: TTL, then dead-lettered back to the queue
    {prefix}coc.{service}.dead          quorum queue for messages past x-delivery-limit
                                        (parked from there)

The supplier gateway's exchanges with the makers' COC suppliers' integrations (their contract:
docs/supplier-integration.md)::

    {prefix}coc.suppliers               durable direct exchange of requests, routing key = supplier
    {prefix}coc.supplier.{code}         one durable quorum queue per supplier, bound with its code
    {prefix}coc.supplier-replies        durable topic exchange of replies, routing key = supplier
                                        (a topic exchange so that RabbitMQ's topic permissions
                                        hold each supplier's user to its own code)
    {prefix}coc.supplier-gateway.replies  the gateway's quorum queue of replies, bound per supplier
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import kombu
from kombu import Exchange, Queue, binding

from .logging import get_logger
from .retry import call_with_backoff

log = get_logger(__name__)

EXCHANGE = "coc.events"
SUPPLIERS_EXCHANGE = "coc.suppliers"
SUPPLIER_REPLIES_EXCHANGE = "coc.supplier-replies"
HEADER_ATTEMPTS = "x-coc-attempts"
HEADER_FIRST_FAILURE = "x-coc-first-failed-at"
HEADER_LAST_ERROR = "x-coc-last-error"
HEADER_ORIGINAL_ROUTING_KEY = "x-coc-original-routing-key"
HEADER_ORIGINAL_QUEUE = "x-coc-original-queue"
HEADER_REPLAYED_FROM = "x-coc-replayed-from-parked-id"
# a progressive replay's run (replay.py): a failure parks it again at once, no delayed rounds
HEADER_REPLAY_RUN = "x-coc-replay-run"


class PublishError(Exception):
    """The broker did not confirm a publish (nacked, returned as unroutable, or timed out)."""


@dataclass
class OutgoingMessage:
    message_id: str
    body: bytes
    routing_key: str
    event_type: str | None = None
    correlation_id: str | None = None
    headers: dict = field(default_factory=dict)
    to_queue: bool = False  # True: routing_key is a queue name, sent through the default exchange
    exchange: str | None = None  # another exchange than the events' (e.g. the suppliers')


@dataclass
class PublishResult:
    confirmed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class Broker:
    """Names and declarations of the topology, and connections to the broker.

    ``amqps://`` connects over TLS and checks the broker's certificate *and* that it names the host
    of the URL (``ca_file``: the CA to trust, else the system's)."""

    def __init__(
        self, url: str, prefix: str = "", delivery_limit: int = 10, ca_file: str | None = None
    ):
        self.url = url
        self.prefix = prefix
        self.delivery_limit = delivery_limit
        self.ca_file = ca_file
        self.memory = url.startswith("memory://")
        parts = urlsplit(url)
        # The user every message is stamped with (``user_id``, validated by RabbitMQ).
        self.user = unquote(parts.username) if parts.username else None
        self.host = parts.hostname
        self.tls = parts.scheme == "amqps"

    # names
    @property
    def exchange_name(self) -> str:
        return self.prefix + EXCHANGE

    def queue_name(self, service: str) -> str:
        return f"{self.prefix}coc.{service}"

    @staticmethod
    def retry_queue_name(queue: str, delay_seconds: float) -> str:
        return f"{queue}.retry.{int(round(delay_seconds * 1000))}ms"

    @staticmethod
    def dead_queue_name(queue: str) -> str:
        return f"{queue}.dead"

    def connect(self) -> kombu.Connection:
        if self.memory:
            return kombu.Connection(self.url, transport_options={"polling_interval": 0.01})
        tls = None
        if self.tls:
            tls = {
                "server_hostname": self.host,
                "cert_reqs": ssl.CERT_REQUIRED,
                "ca_certs": self.ca_file,
            }
        return kombu.Connection(self.url, heartbeat=30, connect_timeout=5, ssl=tls or False)

    # declarations
    def exchange(self) -> Exchange:
        return Exchange(self.exchange_name, type="topic", durable=True)

    def _quorum_args(self, dead_letter_to: str) -> dict:
        if self.memory:
            return {}
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead_letter_to,
            # At-least-once dead-lettering (RabbitMQ >= 3.10) needs reject-publish overflow.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def service_queue(self, service: str, event_types: list[str]) -> Queue:
        name = self.queue_name(service)
        exchange = self.exchange()
        return Queue(
            name,
            bindings=[binding(exchange, routing_key=t) for t in sorted(event_types)],
            durable=True,
            queue_arguments=self._quorum_args(self.dead_queue_name(name)),
        )

    def dead_queue(self, queue: str) -> Queue:
        args = {} if self.memory else {"x-queue-type": "quorum"}
        return Queue(
            self.dead_queue_name(queue), durable=True, queue_arguments=args, no_declare=False
        )

    def retry_queue(self, queue: str, delay_seconds: float) -> Queue:
        args = (
            {}
            if self.memory
            else {
                "x-queue-type": "quorum",
                "x-message-ttl": int(round(delay_seconds * 1000)),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        )
        return Queue(
            self.retry_queue_name(queue, delay_seconds), durable=True, queue_arguments=args
        )

    def declare_exchange(self, channel) -> None:
        self.exchange()(channel).declare()

    # the suppliers' exchanges (supplier gateway)
    @property
    def suppliers_exchange_name(self) -> str:
        return self.prefix + SUPPLIERS_EXCHANGE

    @property
    def replies_exchange_name(self) -> str:
        return self.prefix + SUPPLIER_REPLIES_EXCHANGE

    def supplier_queue_name(self, code: str) -> str:
        return f"{self.prefix}coc.supplier.{code}"

    def replies_queue_name(self, service: str = "supplier-gateway") -> str:
        return f"{self.queue_name(service)}.replies"

    def suppliers_exchange(self) -> Exchange:
        return Exchange(self.suppliers_exchange_name, type="direct", durable=True)

    def replies_exchange(self) -> Exchange:
        return Exchange(self.replies_exchange_name, type="topic", durable=True)

    def supplier_queue(self, code: str) -> Queue:
        """A supplier's queue of requests (quorum; its integration consumes it)."""
        return Queue(
            self.supplier_queue_name(code),
            exchange=self.suppliers_exchange(),
            routing_key=code,
            durable=True,
            queue_arguments={} if self.memory else {"x-queue-type": "quorum"},
        )

    def replies_queue(self, codes: list[str], service: str = "supplier-gateway") -> Queue:
        """The gateway's queue of replies, bound with each supplier's code."""
        exchange = self.replies_exchange()
        name = self.replies_queue_name(service)
        return Queue(
            name,
            bindings=[binding(exchange, routing_key=c) for c in sorted(codes)],
            durable=True,
            queue_arguments=self._quorum_args(self.dead_queue_name(name)),
        )

    def declare_suppliers(
        self, channel, queue_codes: list[str], reply_codes: list[str], service="supplier-gateway"
    ) -> None:
        """The suppliers' exchanges, a queue per supplier in ``queue_codes`` and the gateway's
        replies queue bound for ``reply_codes`` (with its dead queue)."""
        self.suppliers_exchange()(channel).declare()
        self.replies_exchange()(channel).declare()
        for code in queue_codes:
            self.supplier_queue(code)(channel).declare()
        replies = self.replies_queue(reply_codes, service)
        self.dead_queue(replies.name)(channel).declare()
        replies(channel).declare()

    def declare_service(self, channel, service: str, event_types: list[str], retry_delays) -> Queue:
        """Declare the exchange, the service's queue and bindings, its dead queue and delay
        queues."""
        self.declare_exchange(channel)
        queue = self.service_queue(service, event_types)
        self.dead_queue(queue.name)(channel).declare()
        for delay in retry_delays:
            self.retry_queue(queue.name, delay)(channel).declare()
        queue(channel).declare()
        return queue


def wait_for_connection(
    broker: Broker, stop: threading.Event | None = None, what: str = "bus"
) -> kombu.Connection:
    """Connect, retrying with the common backoff until it works; ``retry.Stopped`` when ``stop``
    is set first."""

    def connect() -> kombu.Connection:
        conn = broker.connect()
        try:
            conn.ensure_connection(max_retries=1)
        except Exception:
            conn.release()
            raise
        return conn

    return call_with_backoff(
        connect,
        stop=stop,
        on_retry=lambda exc, wait: log.warning(
            "broker.unreachable", component=what, error=str(exc), retry_in=wait
        ),
    )


class Publisher:
    """Publishes batches of messages and reports which ones the broker confirmed.

    On RabbitMQ the channel is in confirm mode and every message is ``mandatory`` and persistent;
    all messages of a batch are sent, then the confirms are awaited together (one round trip per
    batch instead of per message). A message counts as confirmed only when it was acked and not
    returned as unroutable.
    """

    def __init__(
        self, broker: Broker, confirm_timeout: float = 10.0, stop: threading.Event | None = None
    ):
        self.broker = broker
        self.confirm_timeout = confirm_timeout
        self.stop = stop
        self._conn: kombu.Connection | None = None
        self._channel = None
        self._producer: kombu.Producer | None = None
        self._next_tag = 0
        self._pending: set[int] = set()  # delivery tags sent and not yet acked or nacked
        self._verdicts: dict[int, str] = {}  # tag -> "ack" | "nack"
        self._returned: dict[str, str] = {}

    # connection management
    def _ensure(self) -> None:
        if self._producer is not None:
            return
        self._conn = wait_for_connection(self.broker, self.stop, what="publisher")
        self._channel = self._conn.channel()
        if not self.broker.memory:
            self._channel.events["basic_ack"].add(self._on_ack)
            self._channel.events["basic_nack"].add(self._on_nack)
            self._channel.events["basic_return"].add(self._on_return)
            self._channel.confirm_select()
        self._next_tag = 0
        self._pending.clear()
        self._verdicts.clear()
        self._producer = kombu.Producer(self._channel)
        self.broker.declare_exchange(self._channel)

    def close(self, graceful: bool = True) -> None:
        """Close the connection. After a failure it is closed without the AMQP handshake: a broker
        that blocks publishers (memory or disk alarm) would never answer Close-Ok."""
        conn, self._conn, self._producer, self._channel = self._conn, None, None, None
        if conn is not None:
            try:
                if graceful:
                    conn.release()
                else:
                    conn.collect()
            except Exception:
                pass

    def _settle_tags(self, tag: int, multiple: bool, verdict: str) -> None:
        # A 'multiple' ack/nack covers every tag up to it that is still pending, and only those.
        tags = [t for t in self._pending if t <= tag] if multiple else [tag]
        for t in tags:
            self._pending.discard(t)
            self._verdicts[t] = verdict

    def _on_ack(self, tag, multiple):
        self._settle_tags(tag, multiple, "ack")

    def _on_nack(self, tag, multiple):
        self._settle_tags(tag, multiple, "nack")

    def _on_return(self, exc, exchange, routing_key, message):
        message_id = message.properties.get("message_id")
        self._returned[message_id] = (
            f"unroutable: {exc} (exchange={exchange!r}, routing_key={routing_key!r})"
        )

    def _resolved(self, tag) -> str | None:
        return self._verdicts.get(tag)

    # publishing
    @property
    def _stamp(self) -> dict:
        """``user_id``: the broker user publishing, which RabbitMQ validates and consumers check."""
        return {"user_id": self.broker.user} if self.broker.user and not self.broker.memory else {}

    def _send(self, msg: OutgoingMessage) -> None:
        headers = dict(msg.headers)
        self._producer.publish(
            msg.body,
            exchange="" if msg.to_queue else (msg.exchange or self.broker.exchange_name),
            routing_key=msg.routing_key,
            content_type="application/json",
            content_encoding="utf-8",
            serializer=None,
            headers=headers,
            message_id=msg.message_id,
            correlation_id=msg.correlation_id,
            type=msg.event_type,
            delivery_mode=2,
            mandatory=True,
            **self._stamp,
            retry=False,
            # A broker that blocks publishers (memory or disk alarm) stops reading the socket: the
            # write must time out too, or the relay would hang instead of reconnecting.
            timeout=self.confirm_timeout,
        )

    def publish_batch(self, messages: list[OutgoingMessage]) -> PublishResult:
        """Publish ``messages``; raises on a connection failure (nothing then counts as
        confirmed)."""
        result = PublishResult()
        if not messages:
            return result
        try:
            self._ensure()
            if self.broker.memory:
                return self._publish_memory(messages)
            self._returned.clear()
            tags: list[tuple[int, OutgoingMessage]] = []
            for msg in messages:
                self._next_tag += 1
                self._pending.add(self._next_tag)
                self._send(msg)
                tags.append((self._next_tag, msg))
            deadline = time.monotonic() + self.confirm_timeout
            while any(self._resolved(tag) is None for tag, _ in tags):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishError(f"no confirm within {self.confirm_timeout}s")
                try:
                    self._conn.drain_events(timeout=min(remaining, 1.0))
                except TimeoutError:
                    pass
            for tag, msg in tags:
                verdict = self._resolved(tag)
                if msg.message_id in self._returned:
                    result.failed[msg.message_id] = self._returned[msg.message_id]
                elif verdict == "ack":
                    result.confirmed.append(msg.message_id)
                else:
                    result.failed[msg.message_id] = "nacked by the broker"
                self._verdicts.pop(tag, None)
            return result
        except Exception:
            # A broken channel or connection: forget it; unconfirmed messages are published again.
            self.close(graceful=False)
            raise

    def _publish_memory(self, messages: list[OutgoingMessage]) -> PublishResult:
        result = PublishResult()
        channel = self._channel
        for msg in messages:
            if not msg.to_queue:
                exchange = msg.exchange or self.broker.exchange_name
                routes = channel.typeof(exchange).lookup(
                    channel.get_table(exchange), exchange, msg.routing_key, None
                )
                if not routes:
                    result.failed[msg.message_id] = (
                        f"unroutable: no queue bound for {msg.routing_key!r}"
                    )
                    continue
            self._send(msg)
            result.confirmed.append(msg.message_id)
        return result

    def publish_one(self, message: OutgoingMessage) -> None:
        result = self.publish_batch([message])
        if message.message_id not in result.confirmed:
            raise PublishError(result.failed.get(message.message_id, "not confirmed"))
