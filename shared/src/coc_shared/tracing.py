"""W3C trace context across HTTP requests and events (OpenTelemetry), so that one trace follows an
order across services.

A span per HTTP request (``http.install_common``) and per handled event (``consumer``). A staff
route's caller (the console) passes its ``traceparent`` header, which becomes the span's parent; a
public route's caller is anyone, so its ``traceparent`` only becomes a link of a new trace (a
client cannot put its requests into our traces, nor pick their ids). An event emitted inside a
span (``unit_of_work.Writes.emit``) keeps that span's ``traceparent`` in its outbox row; the relay
publishes it in the message's headers, and the consuming service's handler span takes it as its
parent. Delayed retries and parked messages keep the headers, so a replay joins the same trace.

Spans are exported only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) is set
(OTLP over HTTP, the exporter's own ``OTEL_*`` variables apply); otherwise they are made, so that
their ids travel, and dropped. An exception's message may hold personal data: a span records
only its class (``error.type``), never its message or stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

HEADER = "traceparent"
EXPORT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_propagator = TraceContextTextMapPropagator()


def install(service: str) -> TracerProvider:
    """The process's tracer provider, made once (the first service of the process names it; in
    the embedded mode every span also carries its own ``coc.service``)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": f"coc-{service}"}))
    if any(os.environ.get(name) for name in EXPORT_VARIABLES):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer_provider()


def _tracer():
    return trace.get_tracer("coc_shared")


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span (None outside any)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(HEADER)


def _parent(headers: Mapping | None):
    value = (headers or {}).get(HEADER)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return _propagator.extract({HEADER: value} if isinstance(value, str) else {})


@contextmanager
def event_span(service: str, event, headers: Mapping | None):
    """The span of handling ``event``, child of the span that emitted it (its message's
    ``traceparent``); an exception escaping it marks it failed with its class only (its message
    may hold personal data: not recorded)."""
    with _tracer().start_as_current_span(
        f"{service} handle {event.type}",
        context=_parent(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "coc.service": service,
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.message.id": event.id,
            "coc.event_type": event.type,
            "coc.correlation_id": event.correlation_id,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            failed(span, exc)
            raise


def failed(span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc``: its class, not its message (which may hold personal
    data)."""
    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


class RequestSpan:
    """The span of one HTTP request, current from ``start`` to ``end`` (Flask's before_request
    and teardown_request run in the request's thread). ``trust_parent``: the caller's
    ``traceparent`` is the span's parent (a staff route); otherwise the span starts a new trace,
    linked to the caller's context when it sent one."""

    def __init__(
        self, service: str, method: str, route: str, headers: Mapping, trust_parent: bool = False
    ):
        parent = _parent({HEADER: headers.get(HEADER)})
        links = []
        if not trust_parent:
            caller = trace.get_current_span(parent).get_span_context()
            links = [Link(caller)] if caller.is_valid else []
            parent = otel_context.Context()  # a new trace
        self.span = _tracer().start_span(
            f"{method} {route}",
            context=parent,
            links=links,
            kind=SpanKind.SERVER,
            attributes={
                "coc.service": service,
                "http.request.method": method,
                "http.route": route,
            },
        )
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def answered(self, status: int) -> None:
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))

    def end(self) -> None:
        otel_context.detach(self._token)
        self.span.end()
