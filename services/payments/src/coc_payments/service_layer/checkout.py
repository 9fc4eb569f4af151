"""Use case: what the storefront needs for the customer to pay an order.

The order's payment is shown to its owner (a customer token naming its account) or to whoever
holds the order's access token, and only while something is to be paid. Refusals are exceptions
the entrypoint answers: ``NoSuchOrder`` (or not the caller's), ``domain.model.OrderCancelled``,
``domain.model.AlreadyPaid``, ``config.NotConfigured`` (the method's provider is not configured)
and ``adapters.paypal.ProviderError`` (PayPal did not answer).
"""

from __future__ import annotations

from datetime import UTC, datetime

from coc_shared.transfer import format_reference

from ..adapters.hosted_page import PaymentRequest
from ..adapters.providers import Providers
from ..adapters.repository import CardAttemptRepository, PaymentDueRepository, PayPalOrderRepository
from ..domain.model import PaymentDue
from .context import Payments
from .reports import TRANSFER_PROVIDER


class NoSuchOrder(Exception):
    """No payment is due for this order, or the caller may not see it."""


def checkout(
    payments: Payments,
    providers: Providers,
    order_id: str,
    account_id: str | None = None,
    order_token: str | None = None,
) -> dict:
    """The payment form, PayPal approval link or transfer details of the order."""
    due = _payable_due(payments, order_id, account_id, order_token)
    answer = _METHODS[due.method](payments, providers, due)
    return {**answer, "order_id": due.order_id}


def _payable_due(
    payments: Payments, order_id: str, account_id: str | None, order_token: str | None
) -> PaymentDue:
    with payments.unit_of_work() as uow:
        due = PaymentDueRepository(uow).get(order_id)
    if due is None or not due.visible_to(account_id, order_token):
        raise NoSuchOrder(order_id)
    due.ensure_payable()
    return due


def _card(payments: Payments, providers: Providers, due: PaymentDue) -> dict:
    page = providers.card_page()
    now = datetime.now(UTC)
    with payments.unit_of_work() as uow:
        transaction_id = CardAttemptRepository(uow).next_transaction_id(
            due.order_id, page.provider, now.strftime("%Y%m%d")
        )
        uow.commit()
    config = providers.config
    form = page.payment_form(
        PaymentRequest(
            order_id=due.order_id,
            order_number=due.order_number,
            amount_cents=due.amount_cents,
            currency=due.currency,
            transaction_id=transaction_id,
            at=now,
            return_url=config.return_url(due.order_id),
            notification_url=config.notification_url,
        )
    )
    return {
        "method": "card",
        "provider": page.provider,
        "form": {"url": form.url, "method": form.method, "fields": form.fields},
    }


def _paypal(payments: Payments, providers: Providers, due: PaymentDue) -> dict:
    """A PayPal order per order: created at PayPal once (one PayPal-Request-Id per order, so a
    concurrent or retried checkout gets the same one), outside any transaction."""
    client = providers.paypal()
    with payments.unit_of_work() as uow:
        known = PayPalOrderRepository(uow).for_order(due.order_id)
    if known is None:
        return_url = providers.config.return_url(due.order_id)
        created = client.create_order(
            order_id=due.order_id,
            order_number=due.order_number,
            amount_cents=due.amount_cents,
            currency=due.currency,
            return_url=return_url,
            cancel_url=return_url,
        )
        with payments.unit_of_work() as uow:
            orders = PayPalOrderRepository(uow)
            orders.add_unless_known(
                created.paypal_order_id, due.order_id, created.approval_url, "created"
            )
            known = orders.for_order(due.order_id)
            uow.commit()
    return {
        "method": "paypal",
        "provider": "paypal",
        "paypal_order_id": known["paypal_order_id"],
        "approval_url": known["approval_url"],
    }


def _transfer(payments: Payments, providers: Providers, due: PaymentDue) -> dict:
    iban, bic, beneficiary = providers.config.transfer_account()
    return {
        "method": "transfer",
        "provider": TRANSFER_PROVIDER,
        "iban": iban,
        "bic": bic,
        "beneficiary": beneficiary,
        "reference": format_reference(due.reference),
        "reference_compact": due.reference,
        "amount": {"amount_cents": due.amount_cents, "currency": due.currency},
    }


_METHODS = {"card": _card, "paypal": _paypal, "transfer": _transfer}
