"""The payments service as the shared runtime sees it: name, tables, migrations, handlers, routes."""
from __future__ import annotations

from coc_shared.migrate import package_migrations
from coc_shared.service import ServiceDefinition

from . import config as _config  # noqa: F401 - declares the service's environment variables
from .adapters.orm import metadata
from .entrypoints.commands import COMMANDS
from .entrypoints.routes import register_api
from .service_layer.handlers import handlers

definition = ServiceDefinition(
    name="payments",
    metadata=metadata,
    migrations=package_migrations(__file__),
    handlers=handlers,
    register_api=register_api,
    commands=COMMANDS,
)
