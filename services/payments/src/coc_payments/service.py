"""The payments service as the shared runtime sees it: name, tables, migrations, handlers, routes,
its worker's own loop (the VIES checks), its configuration object (``runtime.config``, a
``PaymentsConfig``), and for ``make run`` a development seller, invoice key and VIES sandbox."""

from __future__ import annotations

import os
import sys

from coc_shared.launcher import persistent_secret
from coc_shared.migrate import package_migrations
from coc_shared.service import Sandbox, ServiceDefinition

from .adapters.tables import metadata
from .config import PaymentsConfig
from .entrypoints.commands import COMMANDS
from .entrypoints.routes import register_api
from .service_layer import vat_checks
from .service_layer.handlers import handlers

VIES_SANDBOX_PORT = 8097

definition = ServiceDefinition(
    name="payments",
    metadata=metadata,
    migrations=package_migrations(__file__),
    handlers=handlers,
    register_api=register_api,
    commands=COMMANDS,
    config=PaymentsConfig.from_env,
    loops=lambda runtime: {"vat-checks": vat_checks.loop(runtime)},
    development_defaults=lambda data_dir: {
        # `make run`: a development seller and invoice key (production declares its own), and
        # the VIES sandbox instead of the Commission's service.
        "INVOICE_KEY": persistent_secret(os.path.join(data_dir, "payments-invoice.key"), 32),
        "SELLER_NAME": "COC Développement SAS",
        "SELLER_STREET": "1 rue de la Paix",
        "SELLER_POSTAL_CODE": "75002",
        "SELLER_CITY": "Paris",
        "SELLER_SIREN": "732829320",
        "SELLER_VAT_NUMBER": "FR44732829320",
        "SELLER_LEGAL_MENTIONS": "SAS au capital de 10 000 € - RCS Paris 732 829 320",
        "VIES_API_URL": f"http://127.0.0.1:{VIES_SANDBOX_PORT}",
    },
    sandboxes=lambda data_dir: [
        Sandbox(
            name="vies",
            command=[sys.executable, "-m", "coc_shared.vies", "--port", str(VIES_SANDBOX_PORT)],
            address=f"http://127.0.0.1:{VIES_SANDBOX_PORT}/ms/DE/vat/136695976 (VIES REST API)",
        )
    ],
)
