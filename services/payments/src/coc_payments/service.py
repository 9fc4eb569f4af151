"""The payments service as the shared runtime sees it: name, tables, migrations, handlers, routes,
its worker's own loops (the VIES checks; the invoices numbered, to render and issue) and their
backlog, its configuration object (``runtime.config``, a ``PaymentsConfig``), and for
``make run`` a development seller, invoice key, the payment providers' sandboxes
(``coc_payments.sandbox``: the card page, PayPal, the business bank) with their keys made once
under the run's data folder, and the VIES sandbox."""

from __future__ import annotations

import json
import os
import socket
import sys

from coc_shared.config import env
from coc_shared.launcher import persistent_secret
from coc_shared.migrate import package_migrations
from coc_shared.service import Sandbox, ServiceDefinition

from .adapters.archive_tables import ARCHIVE_MIGRATIONS, ARCHIVE_SCHEMA
from .adapters.tables import metadata
from .config import SANDBOX_KEY_PREFIX, PaymentsConfig
from .entrypoints.commands import COMMANDS
from .entrypoints.routes import register_api
from .service_layer import invoicing, vat_checks
from .service_layer.handlers import handlers

# The orders service's development defaults name this port too (ORDERS_VIES_URL).
VIES_SANDBOX_PORT = 8097
# `make run`'s payment sandboxes: their ports (chosen per run) and the shop they emulate.
SANDBOX_PORTS = "payments-sandbox-ports.json"
SANDBOX_SITE_ID = "10000001"
SANDBOX_PAYPAL_CLIENT_ID = SANDBOX_KEY_PREFIX + "paypal-client"
SANDBOX_PAYPAL_WEBHOOK_ID = SANDBOX_KEY_PREFIX + "WH-0001"
# The example account of deploy/.env.example (notifications shows the same one).
SANDBOX_IBAN, SANDBOX_BIC = "FR7630006000011234567890189", "AGRIFRPP"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sandbox_secret(data_dir: str, name: str) -> str:
    """A sandbox key made once under ``data_dir``, marked so that production refuses it."""
    return SANDBOX_KEY_PREFIX + persistent_secret(os.path.join(data_dir, name), 24)


def sandbox_ports(data_dir: str) -> dict[str, int]:
    """The ports of this run's payment sandboxes (``systempay``, ``paypal``, ``business_bank``)."""
    with open(os.path.join(data_dir, SANDBOX_PORTS)) as f:
        return json.load(f)


def development_defaults(data_dir: str) -> dict[str, str]:
    """`make run`: the development environment (COC_ENVIRONMENT, which lets the sandboxes' settings
    in), a development seller and invoice key, and every payment provider pointed at its sandbox
    on a port free now, with keys kept under ``data_dir``."""
    ports = {name: _free_port() for name in ("systempay", "paypal", "business_bank")}
    with open(os.path.join(data_dir, SANDBOX_PORTS), "w") as f:
        json.dump(ports, f)
    bank, paypal = (f"http://127.0.0.1:{ports[n]}" for n in ("systempay", "paypal"))
    return {
        "COC_ENVIRONMENT": "development",
        "INVOICE_KEY": persistent_secret(os.path.join(data_dir, "payments-invoice.key"), 32),
        "SELLER_NAME": "COC Développement SAS",
        "SELLER_STREET": "1 rue de la Paix",
        "SELLER_POSTAL_CODE": "75002",
        "SELLER_CITY": "Paris",
        "SELLER_SIREN": "732829320",
        "SELLER_VAT_NUMBER": "FR44732829320",
        "SELLER_LEGAL_MENTIONS": "SAS au capital de 10 000 € - RCS Paris 732 829 320",
        "VIES_API_URL": f"http://127.0.0.1:{VIES_SANDBOX_PORT}",
        "SYSTEMPAY_FORM_URL": f"{bank}/vads-payment/",
        "SYSTEMPAY_API_URL": bank,
        "SYSTEMPAY_SITE_ID": SANDBOX_SITE_ID,
        "SYSTEMPAY_MODE": "TEST",
        "SYSTEMPAY_TEST_KEY": _sandbox_secret(data_dir, "systempay-sandbox-test.key"),
        "SYSTEMPAY_REST_KEY": _sandbox_secret(data_dir, "systempay-sandbox-rest.key"),
        "PAYPAL_API_URL": paypal,
        "PAYPAL_CLIENT_ID": SANDBOX_PAYPAL_CLIENT_ID,
        "PAYPAL_CLIENT_SECRET": _sandbox_secret(data_dir, "paypal-sandbox-client.secret"),
        "PAYPAL_WEBHOOK_ID": SANDBOX_PAYPAL_WEBHOOK_ID,
        "PAYPAL_CERT_URL_PREFIXES": f"{paypal}/v1/notifications/certs/",
        "TRANSFER_IBAN": SANDBOX_IBAN,
        "TRANSFER_BIC": SANDBOX_BIC,
        "QONTO_WEBHOOK_SECRET": _sandbox_secret(data_dir, "business-bank-sandbox.secret"),
    }


def _secret_file(data_dir: str, name: str, value: str) -> str:
    """``value`` in a file of its own (mode 600): a sandbox reads its secrets from files, never
    from its command line."""
    from .sandbox.serving import write_secret

    return write_secret(os.path.join(data_dir, name), value)


def sandboxes(data_dir: str) -> list[Sandbox]:
    """The VIES sandbox and, with the values the service runs with (the development defaults or
    the developer's own), the card page, PayPal and the business bank."""
    ports = sandbox_ports(data_dir)
    public = env("PAYMENTS_PUBLIC_URL").rstrip("/")
    module = [sys.executable, "-m"]
    bank, paypal, business = (
        f"http://127.0.0.1:{ports[n]}" for n in ("systempay", "paypal", "business_bank")
    )
    statements = os.path.join(data_dir, "bank-statements")
    return [
        Sandbox(
            name="vies",
            command=[*module, "coc_shared.vies", "--port", str(VIES_SANDBOX_PORT)],
            address=f"http://127.0.0.1:{VIES_SANDBOX_PORT}/ms/DE/vat/136695976 (VIES REST API)",
        ),
        Sandbox(
            name="card bank",
            command=[
                *module,
                "coc_payments.sandbox.bank",
                "--port",
                str(ports["systempay"]),
                "--site-id",
                env("SYSTEMPAY_SITE_ID") or SANDBOX_SITE_ID,
                "--test-key-file",
                _secret_file(
                    data_dir, "systempay-sandbox-test.key.current", env("SYSTEMPAY_TEST_KEY") or ""
                ),
                "--rest-key-file",
                _secret_file(
                    data_dir, "systempay-sandbox-rest.key.current", env("SYSTEMPAY_REST_KEY") or ""
                ),
            ],
            address=f"{bank}/vads-payment/ (Systempay hosted page: test cards; REST refunds)",
        ),
        Sandbox(
            name="paypal",
            command=[
                *module,
                "coc_payments.sandbox.paypal",
                "--port",
                str(ports["paypal"]),
                "--client-id",
                env("PAYPAL_CLIENT_ID") or SANDBOX_PAYPAL_CLIENT_ID,
                "--client-secret-file",
                _secret_file(
                    data_dir,
                    "paypal-sandbox-client.secret.current",
                    env("PAYPAL_CLIENT_SECRET") or "",
                ),
                "--webhook-id",
                env("PAYPAL_WEBHOOK_ID") or SANDBOX_PAYPAL_WEBHOOK_ID,
                "--webhook-url",
                f"{public}/v1/callbacks/paypal",
                "--signing-key-file",
                os.path.join(data_dir, "paypal-sandbox-signing.pem"),
            ],
            address=f"{paypal} (PayPal REST API, buyer approval at /checkoutnow, webhooks)",
        ),
        Sandbox(
            name="business bank",
            command=[
                *module,
                "coc_payments.sandbox.business_bank",
                "--port",
                str(ports["business_bank"]),
                "--iban",
                env("TRANSFER_IBAN") or SANDBOX_IBAN,
                "--webhook-url",
                f"{public}/v1/callbacks/bank-transfer",
                "--secret-file",
                _secret_file(
                    data_dir,
                    "business-bank-sandbox.secret.current",
                    env("QONTO_WEBHOOK_SECRET") or "",
                ),
                "--statements-dir",
                statements,
            ],
            address=f"{business}/sandbox/transfers (transfers: signed webhooks; camt.053 in "
            f"{statements}/)",
        ),
    ]


definition = ServiceDefinition(
    name="payments",
    metadata=metadata,
    migrations=package_migrations(__file__),
    # the invoice archive, where payments only writes (adapters/archive_tables.py)
    foreign_schemas={ARCHIVE_SCHEMA: ARCHIVE_MIGRATIONS},
    handlers=handlers,
    register_api=register_api,
    commands=COMMANDS,
    config=PaymentsConfig.from_env,
    loops=lambda runtime: {
        "vat-checks": vat_checks.loop(runtime),
        "invoices": invoicing.loop(runtime),
    },
    backlogs=lambda runtime: {"invoices": lambda: invoicing.pending_count(runtime)},
    development_defaults=development_defaults,
    sandboxes=sandboxes,
)
