"""Print the OpenAPI document of the payments API (the one served at ``/openapi.json``).

    python -m coc_payments.entrypoints.openapi > services/payments/openapi.json

The repository keeps that file; ``tests/test_payments_openapi.py`` fails when they differ.
"""

from __future__ import annotations

from coc_shared.openapi import main

if __name__ == "__main__":
    from ..service import definition

    main(definition)
