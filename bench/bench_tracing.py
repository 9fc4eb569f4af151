#!/usr/bin/env python
"""What the W3C trace context costs the consumer per event (coc_shared.tracing), beside what the
consumer already spends per message on decoding its envelope, in the same run.

Run by hand: ``.venv/bin/python bench/bench_tracing.py [--events 50000] [--rounds 3]``. It is not a
test. Per event the consumer now opens a span whose parent is the message's ``traceparent``
(``tracing.event_span``) and each event a handler emits reads the span's ``traceparent`` for its
outbox row (``tracing.current_traceparent``); the reference is ``Event.from_json`` of the same
message's body (the envelope decoding every delivery already pays). No exporter (the default):
spans are made and dropped, as in production without OTEL_EXPORTER_OTLP_ENDPOINT.
"""

from __future__ import annotations

import argparse
import time

from coc_shared import tracing
from coc_shared.catalogue import example_event, lookup
from coc_shared.envelope import Event


def per_event_us(work, events: int) -> float:
    started = time.perf_counter()
    for _ in range(events):
        work()
    return (time.perf_counter() - started) / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tracing.install("bench")
    event = example_event(lookup("order.placed", 1))
    body = event.to_json()
    with tracing.event_span("orders", event, {}):  # the emitter's span, as the API's would be
        headers = {tracing.HEADER: tracing.current_traceparent()}

    def traced():
        with tracing.event_span("payments", event, headers):
            tracing.current_traceparent()  # one emitted event

    def decode():
        Event.from_json(body)

    print(f"{args.events} events per round; per event, in microseconds")
    print("round  tracing (span + traceparent)  reference (Event.from_json)  ratio")
    for round_ in range(1, args.rounds + 1):
        reference = per_event_us(decode, args.events)
        cost = per_event_us(traced, args.events)
        print(f"{round_:5}  {cost:28.1f}  {reference:27.1f}  {cost / reference:5.2f}")


if __name__ == "__main__":
    main()
