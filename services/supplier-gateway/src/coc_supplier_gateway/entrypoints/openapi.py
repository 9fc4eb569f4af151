"""Print the OpenAPI document of the supplier-gateway API (the one served at ``/openapi.json``).

    python -m coc_supplier_gateway.entrypoints.openapi > services/supplier-gateway/openapi.json

The repository keeps that file; ``tests/test_supplier_gateway_openapi.py`` fails when they differ.
"""

from __future__ import annotations

from coc_shared.openapi import main

if __name__ == "__main__":
    from ..service import definition

    main(definition)
