"""Prometheus and Grafana in docker-compose.yml (read as text: no Docker engine is needed):
Prometheus scrapes exactly the APIs and workers compose runs, on the ports they listen on; Grafana
gets its data source and the pipeline's dashboard provisioned from the mounted folders; every
PromQL query of the dashboard names only metrics the services export (those of a real scrape of a
service's /metrics, and every metric the process's registry declares), and the dashboard shows
what issue 14 asks for."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import coc_console.config  # noqa: F401  (declares CONSOLE_PORT)
from coc_notifications.service import definition as notifications_definition
from coc_orders.service import definition as orders_definition
from coc_shared.config import APPLICATIONS, ENV_VARS, SERVICE_NAMES, port_variable

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
BROKER_METRICS_PORT = 15692  # rabbitmq_prometheus (deploy/rabbitmq/rabbitmq.conf)

# What the dashboard must show (issue 14, point 7): a metric family for each.
REQUIRED = {
    "coc_events_consumed_total": "events consumed per type",
    "coc_events_handled_total": "events handled per type",
    "coc_events_failed_total": "handler failures per type",
    "coc_events_parked_total": "events parked per type",
    "coc_handler_duration_seconds_bucket": "handler durations",
    "coc_outbox_backlog": "outbox backlog",
    "coc_outbox_oldest_unsent_age_seconds": "age of the oldest unsent outbox row",
    "coc_sender_backlog": "the senders' queue depths",
    "coc_http_requests_total": "HTTP requests per route",
    "coc_http_request_duration_seconds_bucket": "HTTP latency per route",
    "coc_parked_messages_waiting": "parked messages waiting",
}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip


def port_of(service: str) -> int:
    return int(ENV_VARS[port_variable(service)].default)


def environment(container: dict) -> dict:
    env = container.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def worker_port(service: str) -> int:
    """As coc_shared.worker_http.worker_port reads the container's settings."""
    set_port = environment(SERVICES[f"{service}-worker"]).get("WORKER_PORT")
    return int(set_port) if set_port is not None else port_of(service) + 1000


def scrape_targets() -> dict[str, list[str]]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        for job in config["scrape_configs"]
    }


def expected_targets() -> set[str]:
    """Every API and worker compose runs, the console if compose runs it, and the broker."""
    expected = {f"rabbitmq:{BROKER_METRICS_PORT}"}
    for service in SERVICE_NAMES:
        expected.add(f"{service}-api:{port_of(service)}")
        expected.add(f"{service}-worker:{worker_port(service)}")
    for application in APPLICATIONS:
        for name in (application, f"{application}-api"):
            if name in SERVICES:
                expected.add(f"{name}:{port_of(application)}")
    return expected


def test_prometheus_scrapes_every_api_and_worker_compose_runs_on_their_ports():
    targets = [t for job in scrape_targets().values() for t in job]
    assert len(targets) == len(set(targets)), "a target is scraped twice"
    assert set(targets) == expected_targets()
    for target in targets:
        assert target.split(":")[0] in SERVICES, f"{target}: no such container in compose"
    for service in SERVICE_NAMES:  # a worker's listener is on (WORKER_PORT=0 would turn it off)
        assert worker_port(service) != 0, service
        assert environment(SERVICES[f"{service}-worker"]).get("SERVICE_HOST", "0.0.0.0") != (
            "127.0.0.1"
        ), f"{service}-worker listens on loopback: Prometheus could not reach it"
    rabbitmq_conf = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    assert f"prometheus.tcp.port = {BROKER_METRICS_PORT}" in rabbitmq_conf


def test_each_worker_s_healthcheck_asks_its_own_listener():
    """Not a look at /proc: the worker's listener answers /healthz while every part of it lives."""
    for service in SERVICE_NAMES:
        test = SERVICES[f"{service}-worker"]["healthcheck"]["test"]
        assert f"http://127.0.0.1:{worker_port(service)}/healthz" in " ".join(test), service


def mounts(container: dict) -> dict[str, str]:
    """Container path -> host path of the bind mounts (``./x:/y[:ro]``)."""
    out = {}
    for volume in container.get("volumes", []):
        host, target = volume.split(":")[:2]
        out[target] = host
    return out


def pinned(image: str) -> bool:
    _name, _, tag = image.rpartition(":")
    return bool(re.search(r"\d", tag)) and tag != "latest"


def test_prometheus_and_grafana_are_pinned_and_provisioned_from_deploy():
    prometheus, grafana = SERVICES["prometheus"], SERVICES["grafana"]
    assert pinned(prometheus["image"]) and pinned(grafana["image"])
    config_path = next(
        arg.split("=", 1)[1] for arg in prometheus["command"] if arg.startswith("--config.file=")
    )
    assert mounts(prometheus)[config_path] == "./deploy/prometheus/prometheus.yml"
    assert "http://127.0.0.1:9090/" in " ".join(prometheus["healthcheck"]["test"])

    grafana_mounts = mounts(grafana)
    assert grafana_mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    [provider] = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "coc.yml").read_text())[
        "providers"
    ]
    assert grafana_mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    [source] = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).name in {d.name for d in DASHBOARDS}
    assert DASHBOARDS
    for dashboard in DASHBOARDS:
        for panel in panels(json.loads(dashboard.read_text())):
            for target in panel.get("targets", []):
                assert (target.get("datasource") or panel["datasource"])["uid"] == source["uid"]


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out += panels(panel)  # a row's panels
    return out


def queries() -> list[tuple[str, str]]:
    return [
        (f"{dashboard.name}: {panel['title']}", target["expr"])
        for dashboard in DASHBOARDS
        for panel in panels(json.loads(dashboard.read_text()))
        for target in panel.get("targets", [])
    ]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are neither functions,
    keywords, label names (in ``{...}``, ``by (...)``), durations nor Grafana's variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in PROMQL_WORDS:
            names.add(name)
    return names


def test_metric_names_are_read_from_promql():
    expr = (
        'histogram_quantile(0.95, sum by (le, service) (rate(coc_x_bucket{status=~"5.."}'
        "[$__rate_interval]))) / on (service) group_left max without (type) (coc_y) > bool 2"
    )
    assert metric_names(expr) == {"coc_x_bucket", "coc_y"}


def exported_by_registry() -> set[str]:
    """Every sample name the process's collectors can export (a labelled counter has no sample
    until it counts something: its declared family stands for it)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created"),
        "gauge": ("",),
    }
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        names |= {s.name for s in family.samples}
    return names


@pytest.fixture
def scraped(runtime_factory) -> set[str]:
    """The sample names of real scrapes of the orders and notifications services' /metrics (their
    states read from their databases: notifications has a sender) after they answered requests."""
    names = set()
    for definition in (orders_definition, notifications_definition):
        client = runtime_factory(definition).create_app().test_client()
        client.get("/healthz")
        client.get("/v1/orders/not-an-order")
        response = client.get("/metrics")
        assert response.status_code == 200
        names |= {
            sample.name
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples
        }
    return names


def test_every_dashboard_query_names_metrics_the_services_export(scraped):
    exported = scraped | exported_by_registry()
    assert {
        "coc_outbox_backlog",
        "coc_outbox_oldest_unsent_age_seconds",
        "coc_parked_messages_waiting",
        "coc_http_requests_total",
        "coc_sender_backlog",
    } <= scraped
    used = set()
    for where, expr in queries():
        names = metric_names(expr)
        assert names, f"{where}: {expr} selects no metric"
        assert names <= exported, f"{where}: {sorted(names - exported)} is not exported"
        used |= names
    missing = {what for name, what in REQUIRED.items() if name not in used}
    assert not missing, f"the dashboard does not show {sorted(missing)}"
