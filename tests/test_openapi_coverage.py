"""Every route a service's app serves is in the OpenAPI document it serves, and that document is
the one kept in the repository (``services/<service>/openapi.json``, what
``python -m coc_<service>.entrypoints.openapi`` prints).

Routes left out: the static files, the document itself (``/openapi.json``), HEAD and OPTIONS
(Flask answers them for every route). The console's pages (HTML forms behind its session cookie)
are not an API: its JSON API is the rest (health, metrics, the shared staff routes)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from coc_shared.config import APPLICATIONS, SERVICE_NAMES
from coc_shared.openapi import document, render

ROOT = Path(__file__).resolve().parent.parent
UNDOCUMENTED_METHODS = {"HEAD", "OPTIONS"}
# the console's server-rendered pages (blueprints of coc_console.entrypoints)
CONSOLE_PAGES = {"console", "support", "replay", "order_checks"}
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def definition_of(service: str):
    return importlib.import_module(f"coc_{service.replace('-', '_')}.service").definition


def served_routes(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of each route of ``app`` that its document must describe."""
    routes = set()
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0]
        if rule.endpoint.endswith("static") or blueprint == "api-docs":
            continue
        if app.name == "console" and blueprint in CONSOLE_PAGES:
            continue
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        routes |= {(method, path) for method in rule.methods - UNDOCUMENTED_METHODS}
    return routes


def documented_routes(doc: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in doc["paths"].items()
        for method in operations
        if method != "parameters"
    }


@pytest.fixture(params=SERVICE_NAMES + APPLICATIONS)
def served(request):
    """(service, its app, the document the app serves), on an in-memory database."""
    from coc_shared.config import Settings
    from coc_shared.service import Runtime

    service = request.param
    settings = Settings.from_env(
        service,
        database_url="sqlite:///:memory:",
        parking_database_url="sqlite:///:memory:",
        rabbitmq_url="memory://",
    )
    runtime = Runtime(definition_of(service), settings)
    try:
        app = runtime.create_app()
        answer = app.test_client().get("/openapi.json")
        assert answer.status_code == 200, f"{service} serves no OpenAPI document"
        yield service, app, answer.get_json()
    finally:
        runtime.dispose()


def test_every_route_of_the_app_is_in_its_served_document(served):
    service, app, doc = served
    missing = served_routes(app) - documented_routes(doc)
    assert not missing, f"{service}: routes missing from its OpenAPI document: {sorted(missing)}"
    ghosts = documented_routes(doc) - served_routes(app)
    assert not ghosts, f"{service}: documented operations it does not serve: {sorted(ghosts)}"


def test_every_staff_operation_asks_for_a_staff_token(served):
    service, _app, doc = served
    for path, operations in doc["paths"].items():
        if path.startswith("/v1/staff/"):
            for method, operation in operations.items():
                if method == "parameters":
                    continue
                assert operation.get("security") == [{"staffAuth": []}], (service, method, path)
                assert {"401", "403"} <= set(operation["responses"]), (service, method, path)


def test_the_kept_document_is_the_one_the_module_prints(served):
    service, _app, doc = served
    kept = ROOT / "services" / service / "openapi.json"
    assert render(doc) == kept.read_text(encoding="utf-8"), (
        f"regenerate it: python -m coc_{service.replace('-', '_')}.entrypoints.openapi"
        f" > services/{service}/openapi.json"
    )
    assert render(document(definition_of(service))) == render(doc)
