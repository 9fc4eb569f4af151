"""Print the OpenAPI document of the console's JSON API (the one served at ``/openapi.json``).

    python -m coc_console.entrypoints.openapi > services/console/openapi.json

The repository keeps that file; ``tests/test_openapi_coverage.py`` fails when they differ.
"""

from __future__ import annotations

from coc_shared.openapi import main

if __name__ == "__main__":
    from ..service import definition

    main(definition)
