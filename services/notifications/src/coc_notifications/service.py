"""The notifications service as the shared runtime sees it: name, tables, migrations, handlers,
routes, its configuration (``runtime.config``, a ``NotificationsConfig``), its sender loop, its
commands, and for ``make run`` the local SMTP sandbox with the defaults that point the service
at it."""

from __future__ import annotations

import os
import sys

from coc_shared.config import env
from coc_shared.launcher import persistent_secret
from coc_shared.migrate import package_migrations
from coc_shared.service import Sandbox, ServiceDefinition

from . import config as _config  # noqa: F401  (declares the variables)
from .adapters.repository import MailRepository
from .adapters.tables import metadata
from .config import NotificationsConfig
from .domain.model import PENDING
from .entrypoints.commands import COMMANDS
from .entrypoints.routes import register_api
from .service_layer.handlers import handlers
from .service_layer.sender import sender_loops

# The example account of deploy/.env.example: what a development run's transfer mails show when
# the payments service's TRANSFER_* are not set either.
_DEVELOPMENT_IBAN, _DEVELOPMENT_BIC = "FR76 3000 6000 0112 3456 7890 189", "AGRIFRPP"


def mail_folder(data_dir: str) -> str:
    return os.path.join(data_dir, "mail")


def development_defaults(data_dir: str) -> dict[str, str]:
    """``make run``: mails go to the local sandbox (plain SMTP on 127.0.0.1), from a development
    sender, with an unsubscribe secret kept under ``data_dir``, and the transfer details of the
    payments service's settings (or the example account)."""
    return {
        "NOTIFICATIONS_SMTP_SERVER": f"127.0.0.1:{env('NOTIFICATIONS_SMTP_SANDBOX_PORT')}",
        "NOTIFICATIONS_SMTP_SECURITY": "none",
        "NOTIFICATIONS_MAIL_FROM": "COC (development) <commandes@coc.test>",
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET": persistent_secret(
            os.path.join(data_dir, "unsubscribe.secret"), 48
        ),
        "NOTIFICATIONS_TRANSFER_IBAN": os.environ.get("TRANSFER_IBAN") or _DEVELOPMENT_IBAN,
        "NOTIFICATIONS_TRANSFER_BIC": os.environ.get("TRANSFER_BIC") or _DEVELOPMENT_BIC,
        "NOTIFICATIONS_TRANSFER_BENEFICIARY": os.environ.get("TRANSFER_BENEFICIARY") or "COC",
    }


def backlogs(runtime) -> dict:
    """``/metrics``' coc_sender_backlog: the mails the sender has still to send."""

    def mails() -> int:
        with runtime.unit_of_work() as uow:
            return MailRepository(uow).counts().get(PENDING, 0)

    return {"mails": mails}


def sandboxes(data_dir: str) -> list[Sandbox]:
    port = env("NOTIFICATIONS_SMTP_SANDBOX_PORT")
    folder = mail_folder(data_dir)
    return [
        Sandbox(
            name="smtp",
            command=[
                sys.executable,
                "-m",
                "coc_notifications.sandbox",
                "--port",
                str(port),
                "--folder",
                folder,
            ],
            address=f"smtp://127.0.0.1:{port}  (each mail saved as an .eml file in {folder}/)",
        )
    ]


definition = ServiceDefinition(
    name="notifications",
    metadata=metadata,
    migrations=package_migrations(__file__),
    handlers=handlers,
    register_api=register_api,
    commands=COMMANDS,
    development_defaults=development_defaults,
    loops=sender_loops,
    backlogs=backlogs,
    sandboxes=sandboxes,
    config=NotificationsConfig.from_env,
)
