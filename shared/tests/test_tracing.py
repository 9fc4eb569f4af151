"""Spans carry no exception message (it may hold personal data), and a public route's caller cannot
choose our trace: its ``traceparent`` only becomes a link of a new trace; a staff route's caller
(the console) continues its trace."""

import pytest
from flask import Flask
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from coc_shared import tracing
from coc_shared.envelope import Event
from coc_shared.http import install_common

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.install("tests").add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def test_a_failing_handler_s_span_says_the_error_class_not_its_message(spans):
    event = Event(
        type="order.placed", data={"order_id": "o-1"}, producer="orders", correlation_id="o-1"
    )
    with pytest.raises(ValueError), tracing.event_span("payments", event, {}):
        raise ValueError("no account for emilie.dupont@example.org")
    [span] = [s for s in spans.get_finished_spans() if s.attributes.get("coc.event_type")]
    assert span.events == ()  # no exception event: no message, no stack
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "ValueError"
    assert span.attributes["error.type"] == "ValueError"
    assert "emilie" not in repr(span.to_json())


def app_with_routes() -> Flask:
    app = Flask("tracing-test")
    install_common(app)
    app.add_url_rule("/v1/orders", "public", lambda: {"ok": True})
    app.add_url_rule("/v1/staff/things", "staff", lambda: {"ok": True})
    return app


def server_span(spans, route: str):
    [span] = [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name == f"GET {route}"
    ]
    return span


def test_a_public_route_starts_a_new_trace_linked_to_the_caller_s(spans):
    client = app_with_routes().test_client()
    assert client.get("/v1/orders", headers={"traceparent": TRACEPARENT}).status_code == 200
    span = server_span(spans, "/v1/orders")
    assert f"{span.context.trace_id:032x}" != CLIENT_TRACE
    assert span.parent is None
    [link] = span.links
    assert f"{link.context.trace_id:032x}" == CLIENT_TRACE
    assert f"{link.context.span_id:016x}" == CLIENT_SPAN


def test_a_public_route_without_traceparent_has_no_link(spans):
    client = app_with_routes().test_client()
    assert client.get("/v1/orders").status_code == 200
    span = server_span(spans, "/v1/orders")
    assert span.parent is None and span.links == ()


def test_a_staff_route_continues_the_caller_s_trace(spans):
    client = app_with_routes().test_client()
    assert client.get("/v1/staff/things", headers={"traceparent": TRACEPARENT}).status_code == 200
    span = server_span(spans, "/v1/staff/things")
    assert f"{span.context.trace_id:032x}" == CLIENT_TRACE
    assert f"{span.parent.span_id:016x}" == CLIENT_SPAN
