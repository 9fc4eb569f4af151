"""Metrics of every API and worker, in Prometheus' text format (``prometheus_client``).

What is counted where it happens: the consumer's events by outcome and type (consumed, handled,
failed, retried, parked with the reason, refused as forged, duplicates) and its handlers'
durations; the APIs' requests by route and status and their latency. What is a state is read
from the database when scraped (``RuntimeCollector``): the outbox's backlog and the age of its
oldest unsent row, the parked messages waiting, and the backlogs of the service's own senders
(``ServiceDefinition.backlogs``).

An API under gunicorn runs several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (the images
set it), every process writes its counts there and ``/metrics`` adds them up.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from .config import APPLICATIONS
from .logging import get_logger

log = get_logger(__name__)

_EVENT_LABELS = ["service", "type"]
EVENTS_CONSUMED = Counter("coc_events_consumed", "Messages the consumer took", _EVENT_LABELS)
EVENTS_HANDLED = Counter("coc_events_handled", "Events handled (committed)", _EVENT_LABELS)
EVENTS_FAILED = Counter("coc_events_failed", "Failed attempts of a handler", _EVENT_LABELS)
EVENTS_RETRIED = Counter("coc_events_retried", "Events sent to a delayed retry", _EVENT_LABELS)
EVENTS_PARKED = Counter("coc_events_parked", "Events parked", [*_EVENT_LABELS, "reason"])
EVENTS_REFUSED = Counter(
    "coc_events_refused", "Events refused: not published by their producer", _EVENT_LABELS
)
EVENTS_DUPLICATE = Counter(
    "coc_events_duplicate", "Deliveries of events already handled", _EVENT_LABELS
)
HANDLER_SECONDS = Histogram(
    "coc_handler_duration_seconds",
    "Time a handler took",
    _EVENT_LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HTTP_REQUESTS = Counter(
    "coc_http_requests", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "coc_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class RuntimeCollector:
    """The states of one service, read at scrape time from its database."""

    def __init__(self, runtime):
        self.runtime = runtime

    def collect(self):
        service = self.runtime.definition.name
        if service in APPLICATIONS:  # no events (the console): no outbox, nothing parked
            return
        backlog = GaugeMetricFamily(
            "coc_outbox_backlog", "Outbox rows not yet published", labels=["service"]
        )
        oldest = GaugeMetricFamily(
            "coc_outbox_oldest_unsent_age_seconds",
            "Age of the oldest unpublished outbox row",
            labels=["service"],
        )
        parked = GaugeMetricFamily(
            "coc_parked_messages_waiting",
            "Parked messages not replayed or discarded",
            labels=["service"],
        )
        senders = GaugeMetricFamily(
            "coc_sender_backlog",
            "Items a sender of the service has still to send",
            labels=["service", "sender"],
        )
        try:
            count, first = self._outbox()
            backlog.add_metric([service], count)
            oldest.add_metric([service], first)
            parked.add_metric([service], self.runtime.parking.count(service=service))
            backlogs = self.runtime.definition.backlogs
            for sender, measure in (backlogs(self.runtime) if backlogs else {}).items():
                senders.add_metric([service, sender], measure())
        except Exception as exc:  # a scrape reports what it can, never fails
            log.warning("metrics.state_unavailable", error_type=type(exc).__name__)
        yield from (backlog, oldest, parked, senders)

    def _outbox(self) -> tuple[int, float]:
        o = self.runtime.outbox
        with self.runtime.engine.connect() as conn:
            count, first = conn.execute(
                select(func.count(), func.min(o.c.created_at)).where(o.c.sent_at.is_(None))
            ).one()
        if first is None:
            return count, 0.0
        from .envelope import utcnow
        from .values import as_utc

        return count, max(0.0, (utcnow() - as_utc(first)).total_seconds())


def exposition(runtime) -> tuple[bytes, str]:
    """The text of ``/metrics`` for ``runtime``: this process's counts (or, under gunicorn with
    PROMETHEUS_MULTIPROC_DIR, every process's), and the service's states."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    state = CollectorRegistry()
    state.register(RuntimeCollector(runtime))
    return body + generate_latest(state), CONTENT_TYPE_LATEST
