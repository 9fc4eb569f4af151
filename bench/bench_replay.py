#!/usr/bin/env python
"""Benchmark of the progressive replay of parked messages (coc_shared.replay) beside a raw
reference measured in the same run, on the same queue and the same consumer.

Run by hand: ``.venv/bin/python bench/bench_replay.py [--messages 10000] [--batch-size 100]``.
It is not a test: it prints figures beside the target (``TARGET``: 500 messages/s).

Set-up as bench_pipeline.py (its own database ``coc_bench_<run>`` and BUS_PREFIX, removed at the
end), with its bench service (handler of ``bench.ping``: one insert and one emitted event, in the
consumer's transaction per batch). The service's consumer runs in a process of its own (as the
worker does), the replay in this one (as a staff request's thread of the API process does).

1. reference  a bare publish of N ``bench.ping`` messages to the service's queue (one batch with
              publisher confirms), then the time until the consumer has handled them all (inbox).
2. replay     N messages of one group parked in ``ops.parked_messages`` (bulk insert), replayed by
              ``replay.start_run`` (1, then 10, then ``--batch-size`` at a time, each batch's
              outcomes awaited in the inbox and the parking store before the next), polled through
              ``replay.report`` until it is over: messages/s from the start to the last outcome.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_pipeline as bp
from sqlalchemy import func, insert, select

from coc_shared import replay
from coc_shared.bus import Broker, OutgoingMessage, Publisher
from coc_shared.config import Settings
from coc_shared.envelope import Event
from coc_shared.service import Runtime
from coc_shared.tables import parked_messages
from coc_shared.tokens import Actor

TARGET = 500.0  # messages/s


def make_runtime(cfg: dict) -> Runtime:
    """The bench service's runtime; every message is published by the administrator account here
    (no broker user per service), so the consumer's check of publishers is off, as in
    bench_pipeline's consumer."""
    settings = Settings.from_env(
        bp.SERVICE,
        database_url=cfg["db_url"],
        parking_database_url=cfg["db_url"],
        rabbitmq_url=cfg["amqp_url"],
        bus_prefix=cfg["prefix"],
        log_level=cfg["log_level"],
        verify_publishers=False,
    )
    return Runtime(bp.DEFINITION, settings)


def consumer_process(cfg: dict, stop_evt, ready_evt) -> None:
    """The service's worker: its consumer until ``stop_evt``."""
    bp.setup_logging(cfg)
    runtime = make_runtime(cfg)
    stop = threading.Event()
    threads = runtime.start_worker_threads(stop, consume=True, relay=False, loops=False)
    while not runtime.consumer.ready.is_set():
        time.sleep(0.05)
    ready_evt.set()
    stop_evt.wait()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    runtime.dispose()


def handled_count(runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(runtime.inbox)).scalar_one()


def wait_handled(runtime, total: int, timeout: float = 180) -> float:
    deadline = time.monotonic() + timeout
    while handled_count(runtime) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {handled_count(runtime)} of {total} handled")
        time.sleep(0.02)
    return time.perf_counter()


def events(n: int, tag: str) -> list[Event]:
    return [
        Event(
            type=bp.PING,
            data={"seq": i},
            producer=bp.SERVICE,
            correlation_id=f"{tag}-{i}",
            subject=f"{tag}-{i}",
        )
        for i in range(n)
    ]


def reference(cfg: dict, runtime, n: int) -> dict:
    """A bare publish of N messages straight to the queue, then the consumer's handling of them."""
    batch = events(n, "ref")
    queue = runtime.broker.queue_name(bp.SERVICE)
    messages = [
        OutgoingMessage(
            message_id=e.id,
            body=e.to_json(),
            routing_key=queue,
            to_queue=True,
            event_type=e.type,
            correlation_id=e.correlation_id,
        )
        for e in batch
    ]
    publisher = Publisher(Broker(cfg["amqp_url"], cfg["prefix"]))
    before = handled_count(runtime)
    t0 = time.perf_counter()
    try:
        result = publisher.publish_batch(messages)
    finally:
        publisher.close()
    published = time.perf_counter()
    if result.failed:
        raise RuntimeError(f"reference: {len(result.failed)} not confirmed")
    done = wait_handled(runtime, before + n)
    return {"publish": n / (published - t0), "publish_and_handle": n / (done - t0)}


def park(runtime, n: int) -> str:
    """N parked messages of one group (a new error class); returns the error class."""
    error_type = f"BenchError{uuid.uuid4().hex[:6]}"
    queue = runtime.broker.queue_name(bp.SERVICE)
    now = datetime.now(UTC)
    rows = [
        {
            "service": bp.SERVICE,
            "host": "bench",
            "queue": queue,
            "routing_key": bp.PING,
            "event_id": e.id,
            "event_type": bp.PING,
            "order_id": e.subject,
            "correlation_id": e.correlation_id,
            "body": e.to_json(),
            "headers": {"x-coc-attempts": 5},
            "properties": {"message_id": e.id, "type": bp.PING},
            "error_type": error_type,
            "error_message": "the handler failed (before its fix)",
            "attempts": 5,
            "first_failed_at": now,
            "last_failed_at": now,
            "parked_at": now,
            "status": "parked",
        }
        for e in events(n, "parked")
    ]
    with runtime.parking_engine.begin() as conn:
        for start in range(0, n, 2000):
            conn.execute(insert(parked_messages), rows[start : start + 2000])
    return error_type


def progressive_replay(runtime, error_type: str, batch_size: int) -> dict:
    actor = Actor(name="bench", role="support")
    t0 = time.perf_counter()
    started = replay.start_run(
        runtime, actor, "benchmark", bp.PING, error_type, batch_size=batch_size
    )
    while True:
        report = replay.report(runtime, started["id"])
        if report["status"] != "running":
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    return {**report, "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=replay.BATCH_SIZE)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    bp.QUIET["max_wait"] = 30.0
    cfg = bp.run_config(args.log_level)
    bp.setup_logging(cfg)
    n = args.messages
    print(f"coc replay benchmark  {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  {bp.machine()}")
    print(
        f"{n} parked messages replayed 1, 10, then {args.batch_size} at a time; consumer in its "
        f"own process, prefetch and batch as configured; target >= {TARGET:.0f} messages/s"
    )
    ctx = mp.get_context("spawn")
    stop_evt, ready_evt = ctx.Event(), ctx.Event()
    worker = None
    try:
        bp.create_environment(cfg)
        print(bp.server_versions(cfg))
        runtime = make_runtime(cfg)
        worker = ctx.Process(target=consumer_process, args=(cfg, stop_evt, ready_evt))
        worker.start()
        if not ready_evt.wait(60):
            raise RuntimeError("the consumer did not start")
        bp.wait_for_quiet_machine()
        ref = reference(cfg, runtime, n)
        print(
            f"  reference: bare publish to the queue {ref['publish']:7.0f} messages/s; "
            f"publish and handled by the consumer {ref['publish_and_handle']:7.0f} messages/s"
        )
        error_type = park(runtime, n)
        bp.wait_for_quiet_machine()
        run = progressive_replay(runtime, error_type, args.batch_size)
        rate = run["replayed"] / run["seconds"]
        sizes = [b["size"] for b in run["batches"]]
        print(
            f"  replay:    {rate:7.0f} messages/s ({run['replayed']} replayed, {run['handled']} "
            f"handled, {len(run['failed_again'])} failed again, in {run['seconds']:.2f} s; "
            f"{len(sizes)} batches: {sizes[:3]} ... {sizes[-1]}; status {run['status']})"
        )
        left = runtime.parking.count(service=bp.SERVICE, error_type=error_type)
        print(f"  still parked in the group: {left}; handled in all: {handled_count(runtime)}")
        verdict = "MET" if rate >= TARGET and run["status"] == "completed" else "MISSED"
        print(
            f"\nprogressive replay {rate:.0f} messages/s (target {TARGET:.0f}: {verdict}) = "
            f"{rate / ref['publish_and_handle']:.2f} x publish-and-handle, "
            f"{rate / ref['publish']:.2f} x the bare publish"
        )
        runtime.dispose()
        return 0
    finally:
        stop_evt.set()
        if worker is not None:
            worker.join(timeout=30)
        bp.destroy_environment(cfg)


if __name__ == "__main__":
    sys.exit(main())
