"""The console is an application without events (coc_shared.config.APPLICATIONS): no ops schema,
nothing parked, so it serves none of the shared staff routes of parked messages (list, show,
discard, parked-summary, dry runs, replays); the services still do (review #12)."""

from coc_console.service import definition as console_definition
from coc_orders.service import definition as orders_definition
from coc_shared.config import Settings
from coc_shared.service import Runtime
from coc_shared.testing import staff_headers

PARKED_ROUTES = ("/v1/staff/parked", "/v1/staff/parked-summary")


def app_of(definition):
    settings = Settings.from_env(
        definition.name,
        database_url="sqlite:///:memory:",
        parking_database_url="sqlite:///:memory:",
        rabbitmq_url="memory://",
    )
    runtime = Runtime(definition, settings)
    return runtime, runtime.create_app()


def parked_rules(app) -> list[str]:
    return sorted(r.rule for r in app.url_map.iter_rules() if r.rule.startswith(PARKED_ROUTES))


def test_the_console_serves_no_parked_message_route():
    runtime, app = app_of(console_definition)
    try:
        assert parked_rules(app) == []
        client = app.test_client()
        for path in ("/v1/staff/parked", "/v1/staff/parked-summary", "/v1/staff/parked/1"):
            assert client.get(path, headers=staff_headers("sam", "support")).status_code == 404
    finally:
        runtime.dispose()


def test_a_service_still_serves_them():
    runtime, app = app_of(orders_definition)
    try:
        rules = parked_rules(app)
        assert "/v1/staff/parked" in rules and "/v1/staff/parked-summary" in rules
        assert "/v1/staff/parked/replays" in rules
    finally:
        runtime.dispose()
