"""One mail per refund: a refund of ours (approved by staff, sent through the provider) is told by
``refund.requested`` and ``refund.completed``; the provider's own report of it
(``payment.refunded``, kind ``refunded``) gets no mail of its own. A charge-back (``reversed``)
and a refund made at the provider itself (no refund of ours for the order) are mailed."""

from __future__ import annotations

import uuid

import pytest
from mail_helpers import parts
from sqlalchemy import select
from test_mail_templates import event, placed

from coc_notifications.adapters import tables
from coc_notifications.domain.model import provider_refund_is_mailed
from coc_notifications.service_layer.sender import Sender
from coc_shared.testing import handle

AMOUNT = {"amount_cents": 24900, "currency": "EUR"}
PAYMENT = {"method": "card", "provider": "systempay", "provider_transaction_id": "8a1f2c3d"}


def refund_requested(order_id: str) -> object:
    return event(
        "refund.requested",
        {**PAYMENT, "order_id": order_id, "refund_id": str(uuid.uuid4()), "amount": AMOUNT},
    )


def refund_completed(order_id: str) -> object:
    return event(
        "refund.completed",
        {**PAYMENT, "order_id": order_id, "refund_id": str(uuid.uuid4()), "amount": AMOUNT},
    )


def provider_report(order_id: str, kind: str) -> object:
    return event(
        "payment.refunded", {**PAYMENT, "order_id": order_id, "kind": kind, "amount": AMOUNT}
    )


def templates(rt, order_id: str) -> list[str]:
    t = tables.mails
    with rt.engine.connect() as conn:
        return list(
            conn.execute(select(t.c.template).where(t.c.order_id == order_id).order_by(t.c.id))
            .scalars()
            .all()
        )


def test_the_rule():
    assert provider_refund_is_mailed("reversed", our_refund_known=False)
    assert provider_refund_is_mailed("reversed", our_refund_known=True)  # the bank's charge-back
    assert provider_refund_is_mailed("refunded", our_refund_known=False)  # refunded at the provider
    assert not provider_refund_is_mailed("refunded", our_refund_known=True)  # ours: one mail


@pytest.mark.parametrize("report_before_completion", [True, False])
def test_our_refund_gets_one_refund_mail_whenever_the_provider_reports_it(
    mailer, smtp_server, report_before_completion
):
    order_id = str(uuid.uuid4())
    handle(mailer, placed(order_id))
    handle(mailer, refund_requested(order_id))
    later = [provider_report(order_id, "refunded"), refund_completed(order_id)]
    for e in later if report_before_completion else reversed(later):
        handle(mailer, e)
    assert templates(mailer, order_id) == [
        "order_confirmation",
        "refund_requested",
        "refund_completed",
    ]
    before = len(smtp_server.stored)
    assert Sender(mailer).send_due().sent == 3
    subjects = [r.message["Subject"] for r in smtp_server.stored[before:]]
    assert [s for s in subjects if "Remboursement" in s] == [
        "Remboursement de 249,00\u00a0€ effectué (commande COC-2026-000123)"
    ]


def test_a_charge_back_is_mailed_even_after_our_refund(mailer):
    order_id = str(uuid.uuid4())
    handle(mailer, placed(order_id))
    handle(mailer, provider_report(order_id, "reversed"))
    assert templates(mailer, order_id) == ["order_confirmation", "payment_refunded"]
    other = str(uuid.uuid4())
    handle(mailer, placed(other))
    handle(mailer, refund_requested(other))
    handle(mailer, provider_report(other, "reversed"))
    assert templates(mailer, other) == [
        "order_confirmation",
        "refund_requested",
        "payment_refunded",
    ]


def test_a_refund_made_at_the_provider_itself_is_mailed(mailer, smtp_server):
    order_id = str(uuid.uuid4())
    handle(mailer, placed(order_id))
    handle(mailer, provider_report(order_id, "refunded"))
    assert templates(mailer, order_id) == ["order_confirmation", "payment_refunded"]
    before = len(smtp_server.stored)
    assert Sender(mailer).send_due().sent == 2
    message = smtp_server.stored[-1].message
    assert message["Subject"] == "Remboursement effectué (commande COC-2026-000123)"
    plain, _ = parts(message)
    assert "Nous vous avons remboursé 249,00\u00a0€" in plain
    assert len(smtp_server.stored) == before + 2
