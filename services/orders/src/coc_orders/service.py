"""The orders service as the shared runtime sees it: name, tables, migrations, handlers, routes."""

from __future__ import annotations

import os

from coc_shared.launcher import persistent_secret
from coc_shared.migrate import package_migrations
from coc_shared.service import ServiceDefinition

from .adapters.tables import metadata
from .config import OrdersConfig
from .entrypoints.commands import COMMANDS
from .entrypoints.routes import register_api
from .service_layer import stuck
from .service_layer.handlers import handlers

definition = ServiceDefinition(
    name="orders",
    metadata=metadata,
    migrations=package_migrations(__file__),
    handlers=handlers,
    register_api=register_api,
    config=OrdersConfig.from_env,
    commands=COMMANDS,
    loops=lambda runtime: {"stuck": stuck.loop(runtime)},
    development_defaults=lambda data_dir: {
        # `make run` on a developer's machine: encrypted documents in a local folder, under a key
        # generated once and kept beside them (production sets ORDERS_DOCUMENT_KEY and S3).
        "ORDERS_DOCUMENT_KEY": persistent_secret(os.path.join(data_dir, "orders-document.key"), 32),
        "ORDERS_DOCUMENT_STORE": "local",
        "ORDERS_DOCUMENTS_DIR": os.path.join(data_dir, "orders-documents"),
        # the supplier gateway signs suppliers' document links with the same secret (same file)
        "ORDERS_DOCUMENT_LINK_SECRET": persistent_secret(
            os.path.join(data_dir, "document-link.secret"), 32
        ),
        # the VIES sandbox the payments service's definition starts (its VIES_SANDBOX_PORT)
        "ORDERS_VIES_URL": "http://127.0.0.1:8097",
    },
)
