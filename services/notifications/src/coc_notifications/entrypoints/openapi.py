"""Print the OpenAPI document of the notifications API (the one served at ``/openapi.json``).

    python -m coc_notifications.entrypoints.openapi > services/notifications/openapi.json

The repository keeps that file; ``tests/test_notifications_openapi.py`` fails when they differ.
"""

from __future__ import annotations

from coc_shared.openapi import main

if __name__ == "__main__":
    from ..service import definition

    main(definition)
