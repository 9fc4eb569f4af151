"""One order's story across the real services: the W3C trace context travels in the events'
headers (kept in the outbox row, published by the relay), so that the span of the orders API's
request and the spans of the consumers' handlers share one trace id; every inbox records the
order's correlation id; every log line of the request and of the workers handling its events names
its service and carries the order's correlation id."""

import json
import sys
import uuid
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import running_services

from coc_shared import tracing
from coc_shared.testing import wait_until

CONSUMERS_OF_ORDER_PLACED = {"payments", "supplier-gateway", "notifications", "gdpr"}


@pytest.fixture
def spans():
    """Every span this process ends from now on, in memory (no exporter reaches the network)."""
    exporter = InMemorySpanExporter()
    tracing.install("tests").add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays on the provider; a shut exporter drops its spans




def handler_spans(exporter, order_id: str) -> list:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.CONSUMER and s.attributes.get("coc.correlation_id") == order_id
    ]


def test_an_order_s_request_and_handlers_share_one_trace_inbox_and_log_story(
    settings_factory, tmp_path, spans, log_stream, storefront_order
):
    with running_services(settings_factory, tmp_path) as runtimes:
        client = runtimes["orders"].create_app().test_client()
        request_id = str(uuid.uuid4())
        started_at = len(log_stream.getvalue())  # the set-up's lines (migrations) are the test's
        placed = client.post(
            "/v1/orders", json=storefront_order, headers={"X-Correlation-ID": request_id}
        )
        assert placed.status_code == 201, placed.get_json()
        order_id = placed.get_json()["id"]
        wait_until(
            lambda: (
                {
                    s.attributes["coc.service"]
                    for s in handler_spans(spans, order_id)
                    if s.attributes["coc.event_type"] == "order.placed"
                }
                >= CONSUMERS_OF_ORDER_PLACED
            ),
            timeout=30,
            message="order.placed handled by its four consumers",
        )

        # one trace: the orders API's request span is the parent of every handler's span
        [request] = [
            s
            for s in spans.get_finished_spans()
            if s.kind == SpanKind.SERVER and s.name == "POST /v1/orders"
        ]
        assert request.attributes["coc.service"] == "orders"
        assert request.attributes["http.response.status_code"] == 201
        placed_spans = [
            s
            for s in handler_spans(spans, order_id)
            if s.attributes["coc.event_type"] == "order.placed"
        ]
        for span in placed_spans:
            assert span.context.trace_id == request.context.trace_id, span.name
            assert span.parent.span_id == request.context.span_id, span.name
        # orders' outbox row kept the request's trace context (the relay published it)
        orders = runtimes["orders"]
        with orders.engine.connect() as conn:
            kept = conn.execute(
                select(orders.outbox.c.traceparent).where(
                    orders.outbox.c.correlation_id == order_id,
                    orders.outbox.c.event_type == "order.placed",
                )
            ).scalar_one()
        assert kept.split("-")[1:3] == [
            f"{request.context.trace_id:032x}",
            f"{request.context.span_id:016x}",
        ]

        # every consumer's inbox recorded the event with the order's correlation id
        [event_id] = {s.attributes["messaging.message.id"] for s in placed_spans}
        for service in CONSUMERS_OF_ORDER_PLACED:
            runtime = runtimes[service]
            with runtime.engine.connect() as conn:
                recorded = conn.execute(
                    select(runtime.inbox.c.correlation_id).where(
                        runtime.inbox.c.event_id == event_id
                    )
                ).scalar_one()
            assert recorded == order_id, service

    logged = log_stream.getvalue()[started_at:]
    lines = [json.loads(line) for line in logged.splitlines() if line.strip()]
    # every line written since names one of the services (worker threads included)
    assert lines and all(line.get("service") in {*runtimes} for line in lines), [
        line for line in lines if line.get("service") not in runtimes
    ][:3]
    # the request's lines: the orders service's, in the order's story once it is placed
    of_request = [line for line in lines if line.get("request_id") == request_id]
    assert of_request and all(line["service"] == "orders" for line in of_request)
    assert any(line.get("correlation_id") == order_id for line in of_request)
    # the workers' lines about the event: each its handling service's, in the order's story
    of_handling = [line for line in lines if line.get("event_id") == event_id]
    handled_by = {line["service"] for line in of_handling if line["event"] == "event.handled"}
    assert handled_by == CONSUMERS_OF_ORDER_PLACED
    assert all(line.get("correlation_id") == order_id for line in of_handling), of_handling
