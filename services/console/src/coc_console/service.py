"""The support console as the shared runtime sees it: name, tables, migrations, routes, its
configuration and commands. No event handlers: it reads and acts through the services' staff
HTTP APIs only (never their tables), so it has no queue and no broker user."""

from __future__ import annotations

import os

from coc_shared.launcher import persistent_secret
from coc_shared.migrate import package_migrations
from coc_shared.service import ServiceDefinition

from .adapters.tables import metadata
from .config import ConsoleConfig
from .entrypoints.commands import COMMANDS
from .entrypoints.routes import register_api


def development_defaults(data_dir: str) -> dict[str, str]:
    # make run's staff key pair (launcher.persistent_staff_keys): the console reads the private
    # key from its file; the key itself is never put in the environment of every service
    # (none when the run's public key came from the environment: its private key is elsewhere)
    path = os.path.join(data_dir, "staff-token-private.key")
    defaults = {"CONSOLE_STAFF_TOKEN_PRIVATE_KEY_FILE": path} if os.path.exists(path) else {}
    # the audit log's HMAC secret for searched addresses, made once and kept beside the run's data
    audit_key = os.path.join(data_dir, "console-audit.key")
    defaults["CONSOLE_AUDIT_KEY"] = persistent_secret(audit_key, 32)
    return defaults


definition = ServiceDefinition(
    name="console",
    metadata=metadata,
    migrations=package_migrations(__file__),
    register_api=register_api,
    config=ConsoleConfig.from_env,
    commands=COMMANDS,
    development_defaults=development_defaults,
)
