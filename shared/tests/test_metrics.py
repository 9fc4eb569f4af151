"""Metrics: after a scripted run the counters equal what happened (the consumer's outcomes by
type, the API's answers by route), the states are read from the database when scraped, and a
worker's listener answers /metrics, /healthz and /readyz."""

import threading

import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sharedkit import item_event, publish_event

from coc_shared.testing import wait_until
from coc_shared.worker_http import WorkerListener


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_consumer_s_counters_equal_what_happened(make_service, publisher):
    svc = make_service()
    labels = {"service": svc.name, "type": svc.type}
    before = {
        n: sample(n, **labels)
        for n in (
            "coc_events_consumed_total",
            "coc_events_handled_total",
            "coc_events_failed_total",
            "coc_events_duplicate_total",
            "coc_handler_duration_seconds_count",
        )
    }
    fine = [item_event(svc.type, n) for n in range(5)]
    broken = item_event(svc.type, 99, mode="permanent")
    for event in [*fine, broken, fine[0]]:  # the first one delivered twice
        publish_event(publisher, event)
    wait_until(lambda: svc.effects_of() == 5 and len(svc.parked()) == 1, message="all settled")
    wait_until(
        lambda: (
            sample("coc_events_consumed_total", **labels) - before["coc_events_consumed_total"] == 7
        ),
        message="7 consumed",
    )
    assert sample("coc_events_handled_total", **labels) - before["coc_events_handled_total"] == 5
    assert (
        sample("coc_events_duplicate_total", **labels) - before["coc_events_duplicate_total"] == 1
    )
    assert sample("coc_events_failed_total", **labels) - before["coc_events_failed_total"] == 1
    assert sample("coc_events_parked_total", **labels, reason="PermanentError") == 1
    # every successful run of a handler is timed: at least the 5 handled (more when a batch that
    # held the broken event was rolled back and its events handled again one by one)
    assert (
        sample("coc_handler_duration_seconds_count", **labels)
        - before["coc_handler_duration_seconds_count"]
        >= 5
    )


def test_an_api_counts_its_answers_by_route_and_reads_its_states_when_scraped(make_service):
    svc = make_service(start=False)
    from coc_shared.http import create_base_app

    client = create_base_app(svc.runtime).test_client()
    for _ in range(3):
        client.get("/healthz")
    client.get("/v1/staff/parked")  # 503 or 401: counted with its status
    client.get("/no/such/route")
    scraped = client.get("/metrics")
    assert scraped.status_code == 200 and scraped.mimetype == "text/plain"
    got = samples(scraped.get_data(as_text=True))
    name = svc.name
    assert (
        got[
            (
                "coc_http_requests_total",
                (("method", "GET"), ("route", "/healthz"), ("service", name), ("status", "200")),
            )
        ]
        == 3
    )
    assert any(k[0] == "coc_http_requests_total" and ("route", "(no route)") in k[1] for k in got)
    assert got[("coc_outbox_backlog", (("service", name),))] == 0
    assert got[("coc_parked_messages_waiting", (("service", name),))] == 0


def test_a_worker_answers_metrics_health_and_readiness(make_service):
    svc = make_service(start=False)
    stop = threading.Event()
    threads = svc.runtime.start_worker_threads(stop)
    listener = WorkerListener(svc.runtime, threads, 0, host="127.0.0.1")
    listener.start()
    base = f"http://127.0.0.1:{listener.port}"
    try:
        wait_until(
            lambda: requests.get(base + "/readyz", timeout=2).status_code == 200,
            message="the worker ready",
        )
        health = requests.get(base + "/healthz", timeout=2)
        assert health.status_code == 200 and health.json()["dead"] == []
        metrics = requests.get(base + "/metrics", timeout=2)
        assert "coc_outbox_oldest_unsent_age_seconds" in metrics.text
        stop.set()
        for t in threads:
            t.join(timeout=10)
        health = requests.get(base + "/healthz", timeout=2)
        assert health.status_code == 503 and health.json()["dead"]
    finally:
        stop.set()
        listener.stop()
