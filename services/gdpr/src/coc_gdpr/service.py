"""The gdpr service as the shared runtime sees it: name, tables, migrations, handlers, routes,
its configuration (the retention schedule), its commands and its worker's purge loop."""

from __future__ import annotations

import os

from coc_shared.launcher import persistent_secret
from coc_shared.migrate import package_migrations
from coc_shared.service import ServiceDefinition

from .adapters.tables import metadata
from .config import GdprConfig
from .entrypoints.commands import COMMANDS
from .entrypoints.routes import register_api
from .service_layer import purges
from .service_layer.handlers import handlers

definition = ServiceDefinition(
    name="gdpr",
    metadata=metadata,
    migrations=package_migrations(__file__),
    handlers=handlers,
    register_api=register_api,
    config=GdprConfig.from_env,
    commands=COMMANDS,
    loops=lambda runtime: {"purges": purges.loop(runtime)},
    # `make run`: the data exports' key, generated once and kept under the data folder
    development_defaults=lambda data_dir: {
        "GDPR_EXPORT_KEY": persistent_secret(os.path.join(data_dir, "gdpr-export.key"), 32)
    },
)
