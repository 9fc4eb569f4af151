"""Fixtures of the notifications tests: the service on this run's PostgreSQL database and bus
prefix (coc_shared.testing), configured to send through a real SMTP server of the test's own
(aiosmtpd, ``mail_helpers``)."""

from __future__ import annotations

import os
import sys

import pytest

from coc_notifications.service import definition

sys.path.insert(0, os.path.dirname(__file__))  # mail_helpers

from mail_helpers import SmtpTestServer, mail_settings


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
    """Every test's senders share this run's database: what another test (of any folder: others
    run the notifications consumer too) left pending is dropped before and after each test, so
    that no other test's sender sends it."""
    _drop_pending(database_url)
    yield
    _drop_pending(database_url)


def _drop_pending(database_url) -> None:
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
