#!/usr/bin/env python
"""Benchmark of the consumer with the events' personal part sealed (coc_shared.keystore) beside
the same consumer with sealing off, in the same run, on the same machine.

Run by hand: ``.venv/bin/python bench/bench_sealing.py [--events 20000] [--rounds 2]``. It is not
a test: it prints figures beside the target (``TARGET_CONSUMER``: 1,000 events/s).

Set-up as bench_pipeline.py (its own database ``coc_bench_<run>`` and BUS_PREFIX, removed at the
end). Each round preloads N ``bench.personal_ping`` events into the service's quorum queue, then
one EventConsumer (the shared runtime's, unchanged) handles them: the handler reads the opened
personal part, writes an effect row and emits ``bench.personal_handled`` with a personal part
(sealed again on the way to the outbox), in the consumer's transaction per batch. Sealing off:
the runtime has no key-encryption key, the personal parts travel in clear. Sealing on: every event
is about a subject of its own (an order id), the worst case for the key store: each batch of 100
looks up 100 keys it never saw (one SELECT), unwraps them (AES key wrap) and opens 100
AES-256-GCM parts, and seals the 100 emitted events (keys now cached). The consumer starts cold
(a new runtime, empty key cache) each round.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
import time
import uuid
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_pipeline as bp
from marshmallow import fields

from coc_shared.bus import Broker, OutgoingMessage, Publisher
from coc_shared.catalogue import EventType, TolerantSchema, register
from coc_shared.config import Settings
from coc_shared.envelope import Event
from coc_shared.service import Runtime, ServiceDefinition

PPING, PHANDLED = "bench.personal_ping", "bench.personal_handled"
KEK = base64.b64encode(os.urandom(32)).decode()


class PersonalPingV1(TolerantSchema):
    seq = fields.Integer(required=True)
    order_id = fields.String(required=True)


class PersonalV1(TolerantSchema):
    email = fields.String(required=True)
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    shipping_address = fields.Dict(required=True)


PERSONAL = {
    "email": "emilie.durand@example.org",
    "first_name": "Émilie",
    "last_name": "Durand",
    "shipping_address": {"line1": "12 rue des Lilas", "postal_code": "69003", "city": "Lyon"},
}
register(
    EventType(
        PPING,
        1,
        bp.SERVICE,
        (bp.SERVICE,),
        PersonalPingV1,
        PersonalV1,
        "Benchmark event with a personal part.",
        {"seq": 1, "order_id": "o-1"},
        PERSONAL,
    )
)
register(
    EventType(
        PHANDLED,
        1,
        bp.SERVICE,
        ("bench-sink",),
        PersonalPingV1,
        PersonalV1,
        "Emitted by the benchmark handler, with a personal part.",
        {"seq": 1, "order_id": "o-1"},
        PERSONAL,
    )
)


def handlers(_runtime):
    def on_personal_ping(event, ctx):
        assert event.personal is not None and event.personal["email"]  # opened
        ctx.add(bp.effects, {"event_id": event.id, "seq": event.data["seq"]})
        ctx.emit(PHANDLED, dict(event.data), personal=event.personal)  # sealed again

    return {PPING: on_personal_ping}


DEFINITION = ServiceDefinition(
    name=bp.SERVICE, metadata=bp.metadata, migrations="", handlers=handlers
)


def runtime(cfg: dict, sealing: bool) -> Runtime:
    settings = Settings.from_env(
        bp.SERVICE,
        database_url=cfg["db_url"],
        parking_database_url=cfg["db_url"],
        rabbitmq_url=cfg["amqp_url"],
        bus_prefix=cfg["prefix"],
        log_level=cfg["log_level"],
        personal_data_kek=KEK if sealing else None,
    )
    return Runtime(DEFINITION, settings)


def preload(cfg: dict, n: int, sealing: bool, round_: int, per_subject: int = 1) -> float:
    """N events in the queue (sealed with a key per order when ``sealing``); returns the seconds
    spent sealing them (keys made and stored included)."""
    rt = runtime(cfg, sealing)
    publisher = Publisher(Broker(cfg["amqp_url"], cfg["prefix"]))
    sealing_seconds = 0.0
    try:
        for start in range(0, n, 1000):
            events = [
                Event(
                    type=PPING,
                    data={"seq": i, "order_id": f"o-{round_}-{sealing}-{i // per_subject}"},
                    personal=dict(PERSONAL),
                    producer=bp.SERVICE,
                    correlation_id=str(uuid.uuid4()),
                    subject=f"o-{round_}-{sealing}-{i // per_subject}",
                )
                for i in range(start, min(n, start + 1000))
            ]
            if rt.keys is not None:
                t0 = time.perf_counter()
                rt.keys.seal_events(events)
                sealing_seconds += time.perf_counter() - t0
            result = publisher.publish_batch(
                [
                    OutgoingMessage(
                        message_id=e.id,
                        body=e.to_json(),
                        routing_key=PPING,
                        event_type=PPING,
                        correlation_id=e.correlation_id,
                    )
                    for e in events
                ]
            )
            if result.failed:
                raise RuntimeError(f"preload: {len(result.failed)} messages not confirmed")
    finally:
        publisher.close()
        rt.dispose()
    name = bp.queue_names(cfg)["queue"]
    deadline = time.monotonic() + 30
    while bp.queue_depth(cfg, name) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return sealing_seconds


def consume(cfg: dict, n: int, sealing: bool) -> dict:
    rt = runtime(cfg, sealing)
    consumer = bp._make_bench_consumer(rt, target=n, keys=rt.keys)
    stop = threading.Event()
    timer = threading.Timer(600, stop.set)
    timer.daemon = True
    timer.start()
    consumer.run(stop)
    timer.cancel()
    parked = rt.parking.count(service=bp.SERVICE)
    rt.dispose()
    if consumer.t_end is None:
        raise RuntimeError(f"consumer handled only {consumer.handled} of {n}")
    return {
        "handled": consumer.handled,
        "seconds": consumer.t_end - consumer.t0,
        "cpu": consumer.cpu,
        "parked": parked,
    }


def clear_outbox(cfg: dict) -> dict:
    """Check and clear what the round left: the outbox rows (clear personal data in them?)."""
    with bp.pg(cfg) as db:
        rows = db.execute(
            f"SELECT count(*), count(*) FILTER (WHERE position(%s IN body) > 0) "
            f"FROM {bp.SCHEMA}.outbox",
            (PERSONAL["email"].encode(),),
        ).fetchone()
        db.execute(f"TRUNCATE {bp.SCHEMA}.outbox, {bp.SCHEMA}.inbox, {bp.SCHEMA}.effects")
    return {"outbox_rows": rows[0], "with_clear_email": rows[1]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (off, on)")
    parser.add_argument(
        "--per-subject",
        type=int,
        default=1,
        help="events per subject (1: a key of its own per event, the worst case; an order's "
        "story has about 8)",
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    bp.QUIET["max_wait"] = 30.0
    cfg = bp.run_config(args.log_level)
    bp.setup_logging(cfg)
    print(f"coc sealing benchmark  {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  {bp.machine()}")
    print(
        f"{args.events} events per round, {args.per_subject} per subject (order); consumer "
        f"prefetch and batch as configured; target >= {bp.TARGET_CONSUMER:.0f} events/s"
    )
    results: dict[str, list] = {"off": [], "on": []}
    try:
        bp.create_environment(cfg)
        rt = runtime(cfg, True)
        rt.declare_topology()
        conn = rt.broker.connect()
        try:
            rt.broker.declare_service(conn.channel(), "bench-sink", [PHANDLED], ())
        finally:
            conn.release()
        rt.dispose()
        print(bp.server_versions(cfg))
        for round_ in range(args.rounds):
            for mode in ("off", "on"):
                sealing = mode == "on"
                bp.wait_for_quiet_machine()
                sealed_in = preload(cfg, args.events, sealing, round_, args.per_subject)
                result = consume(cfg, args.events, sealing)
                left = clear_outbox(cfg)
                rate = result["handled"] / result["seconds"]
                results[mode].append(rate)
                print(
                    f"  round {round_ + 1} sealing {mode:3}: {rate:7.0f} events/s "
                    f"({result['handled']} in {result['seconds']:.2f} s, consumer CPU "
                    f"{result['cpu'] / result['handled'] * 1e6:.0f} us/event), parked "
                    f"{result['parked']}, outbox rows {left['outbox_rows']} of which with the "
                    f"e-mail in clear {left['with_clear_email']}"
                    + (
                        f"; preload sealed at {args.events / sealed_in:.0f} events/s "
                        "(keys made and stored)"
                        if sealing
                        else ""
                    )
                )
        with bp.pg(cfg) as db:
            keys = db.execute("SELECT count(*) FROM ops.subject_keys").fetchone()[0]
        print(f"  data keys in ops.subject_keys: {keys}")
        off, on = min(results["off"]), min(results["on"])
        verdict = "MET" if on >= bp.TARGET_CONSUMER else "MISSED"
        print(
            f"\nconsumer with sealing on: worst {on:.0f} events/s, best "
            f"{max(results['on']):.0f} (target {bp.TARGET_CONSUMER:.0f}: {verdict}); sealing off: "
            f"worst {off:.0f}, best {max(results['off']):.0f}; on/off "
            f"{sum(results['on']) / sum(results['off']):.2f}"
        )
        return 0
    finally:
        bp.destroy_environment(cfg)


if __name__ == "__main__":
    sys.exit(main())
