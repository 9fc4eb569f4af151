"""Fixtures of the notifications tests: the service on this run's PostgreSQL database and bus
prefix (coc_shared.testing), configured to send through a real SMTP server of the test's own
(aiosmtpd, ``mail_helpers``)."""

from __future__ import annotations

import os
import sys

import pytest

from coc_notifications.service import definition

sys.path.insert(0, os.path.dirname(__file__))  # mail_helpers

from mail_helpers import SmtpTestServer

UNSUBSCRIBE_SECRET = "unsubscribe-secret-" + "u" * 32
IBAN, BIC = "FR7630006000011234567890189", "AGRIFRPP"
STOREFRONT = "https://shop.coc.example"
PUBLIC = "https://api.coc.example/notifications"


def mail_settings(smtp_port: int, **more) -> dict:
    """The notifications variables of a test (raw texts, as ``Settings.extra``)."""
    values = {
        "NOTIFICATIONS_SMTP_SERVER": f"127.0.0.1:{smtp_port}",
        "NOTIFICATIONS_SMTP_SECURITY": "none",
        "NOTIFICATIONS_SMTP_TIMEOUT": "5",
        "NOTIFICATIONS_SMTP_RETRY_DELAYS": "0.2,0.4,0.8",
        "NOTIFICATIONS_SEND_POLL_SECONDS": "0.1",
        "NOTIFICATIONS_MAIL_FROM": "COC <commandes@coc.example>",
        "NOTIFICATIONS_STOREFRONT_URL": STOREFRONT,
        "NOTIFICATIONS_PUBLIC_URL": PUBLIC,
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET,
        "NOTIFICATIONS_TRANSFER_IBAN": IBAN,
        "NOTIFICATIONS_TRANSFER_BIC": BIC,
        "NOTIFICATIONS_TRANSFER_BENEFICIARY": "COC SAS",
    }
    values.update(more)
    return values


@pytest.fixture
def smtp_server():
    server = SmtpTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailer(runtime_factory, smtp_server):
    """The notifications runtime, sending to ``smtp_server``."""
    return runtime_factory(definition, extra=mail_settings(smtp_server.port))


@pytest.fixture(autouse=True)
def no_mail_left_pending(database_url):
    """Every test's senders share this run's database: what one test leaves pending is dropped
    after it, so that no other test's sender sends it."""
    yield
    from sqlalchemy import create_engine, inspect, update
    from sqlalchemy.pool import NullPool

    from coc_notifications.adapters import tables
    from coc_shared.db import normalise_url

    engine = create_engine(normalise_url(database_url), poolclass=NullPool)
    try:
        if inspect(engine).has_table("mails", schema="notifications"):
            with engine.begin() as conn:
                conn.execute(
                    update(tables.mails)
                    .where(tables.mails.c.status == "pending")
                    .values(status="dropped", last_answer="left by a test")
                )
    finally:
        engine.dispose()
