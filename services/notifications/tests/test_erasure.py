"""Minimal personal data: after sending, a mail keeps the event id, template, a hash of the address,
status, the SMTP answer and the Message-ID, never the body; account.deactivated erases what
remains for the account (its pending mails but the confirmation dropped, its order recipients,
its marketing contacts, the hashes of its sent mails) and later events of it make no mail; an
order's recipient is erased after the retention once its story ended."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from test_mail_templates import ADDRESS, event, placed

from coc_notifications.adapters import tables
from coc_notifications.domain.model import address_hash
from coc_notifications.service_layer.sender import Sender
from coc_shared.envelope import utcnow
from coc_shared.testing import handle


def row(rt, source_id):
    t = tables.mails
    with rt.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.source_id == source_id)).one()


def recipient(rt, order_id):
    t = tables.order_recipients
    with rt.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.order_id == order_id)).one()


def test_a_sent_mail_keeps_no_address_no_name_and_no_body(mailer, smtp_server):
    e = placed(str(uuid.uuid4()))
    handle(mailer, e)
    pending = row(mailer, e.id)
    assert pending.to_address is None and pending.data["order_number"] == "COC-2026-000123"
    assert Sender(mailer).send_due().sent == 1
    sent = row(mailer, e.id)
    assert sent.status == "sent" and sent.sent_at is not None
    assert (sent.to_address, sent.to_name, sent.secret_url, sent.data) == (None, None, None, None)
    assert sent.address_hash == address_hash(ADDRESS) and sent.address_masked == "e***@e***.org"
    assert sent.message_id == smtp_server.stored[-1].message_id
    assert sent.last_answer.startswith("250 2.0.0")
    values = " ".join(str(v) for v in sent)
    assert "emilie" not in values.lower() and "Bonjour" not in values


def test_account_deactivation_erases_what_remains_for_the_account(mailer, smtp_server):
    account = str(uuid.uuid4())
    email = f"compte.{uuid.uuid4().hex[:6]}@example.org"
    order = placed(str(uuid.uuid4()), account_id=account, marketing_consent=True)
    order.personal = {**order.personal, "email": email}
    handle(mailer, order)
    assert Sender(mailer).send_due().sent == 1  # the order's mail, sent
    change = event(
        "account.email_change_requested",
        {"account_id": account},
        {"email": "new.one@example.org", "confirmation_url": "https://x.example/#token=abc"},
    )
    shipped = event(
        "certificate.shipped",
        {"order_id": order.data["order_id"], "carrier": "colissimo", "tracking_number": "6A1"},
    )
    for e in (change, shipped):
        handle(mailer, e)  # pending, not sent yet
    t = tables.contacts
    with mailer.engine.connect() as conn:
        assert conn.execute(select(t).where(t.c.account_id == account)).first() is not None

    erasure = event(
        "account.erasure_requested",
        {
            "request_id": str(uuid.uuid4()),
            "account_id": account,
            "requested_at": "2026-12-01T10:00:00+00:00",
        },
    )
    handle(mailer, erasure)
    for e in (change, shipped):
        dropped = row(mailer, e.id)
        assert dropped.status == "dropped"
        assert (dropped.to_address, dropped.secret_url, dropped.data) == (None, None, None)
    sent_before = row(mailer, order.id)
    assert (sent_before.address_hash, sent_before.address_masked) == (None, None)
    kept = recipient(mailer, order.data["order_id"])
    assert (kept.email, kept.first_name) == (None, None) and kept.erased_at is not None
    with mailer.engine.connect() as conn:
        assert conn.execute(select(t).where(t.c.account_id == account)).first() is None
        assert (
            conn.execute(select(t).where(t.c.address_hash == address_hash(email))).first() is None
        )

    # once every service has reported, gdpr's summary goes to the address its request carried
    assert Sender(mailer).send_due().sent == 0
    deactivated = event(
        "account.deactivated",
        {"account_id": account, "erased_at": "2026-12-01T10:00:00+00:00"},
        {"email": email, "first_name": "Émilie"},
    )
    handle(mailer, deactivated)
    assert Sender(mailer).send_due().sent == 1
    (confirmation,) = smtp_server.to(email)[-1:]
    assert confirmation.message["Subject"] == "Votre compte COC est supprimé"
    assert row(mailer, deactivated.id).status == "sent"

    # a late event of the account's order makes no mail
    late = event("certificate.delivered", {"order_id": order.data["order_id"]})
    handle(mailer, late)
    assert row(mailer, late.id).status == "dropped"
    assert Sender(mailer).send_due().sent == 0


def test_an_order_recipient_is_erased_after_the_retention_once_its_story_ended(mailer):
    order = placed(str(uuid.uuid4()))
    handle(mailer, order)
    handle(mailer, event("certificate.delivered", {"order_id": order.data["order_id"]}))
    kept = recipient(mailer, order.data["order_id"])
    assert kept.email == ADDRESS and kept.erase_after > utcnow() + timedelta(days=29)
    sender = Sender(mailer)
    assert sender.send_due().sent == 2
    t = tables.order_recipients
    with mailer.engine.begin() as conn:  # the retention is over
        conn.execute(
            update(t)
            .where(t.c.order_id == order.data["order_id"])
            .values(erase_after=utcnow() - timedelta(seconds=1))
        )
    assert sender.erase_expired_recipients() >= 1
    erased = recipient(mailer, order.data["order_id"])
    assert (erased.email, erased.first_name) == (None, None)
