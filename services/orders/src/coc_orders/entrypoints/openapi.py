"""Print the OpenAPI document of the orders API (the one served at ``/openapi.json``).

    python -m coc_orders.entrypoints.openapi > services/orders/openapi.json

The repository keeps that file; ``tests/test_openapi.py`` fails when the two differ.
"""

from __future__ import annotations

import json
import sys

from coc_shared.config import Settings
from coc_shared.service import Runtime


def document() -> dict:
    from ..service import definition

    settings = Settings.from_env(
        "orders",
        database_url="sqlite:///:memory:",
        parking_database_url="sqlite:///:memory:",
        rabbitmq_url="memory://",
    )
    app = Runtime(definition, settings).create_app()
    return app.test_client().get("/openapi.json").get_json()


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    sys.stdout.write(render(document()))


if __name__ == "__main__":
    main()
