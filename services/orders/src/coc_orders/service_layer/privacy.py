"""The customer's data-protection requests that the gdpr service carries out: a copy of their
personal data (GDPR 15 and 20: ``account.data_export_requested``), for an account (with its
orders) or, for a guest, for the order their access token opens; and a guest's erasure of their
order (``account.deactivation_requested`` naming the order: the same saga as an account's, the
order's id standing for the account). The gdpr service answers by mail; a repeated request while
one is pending joins it there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters.export import order_ids_of_account
from ..adapters.repository import AccountRepository
from ..domain.errors import NotFound
from .orders import Credentials, open_order

log = get_logger(__name__)


@dataclass(frozen=True)
class ExportRequested:
    account_id: str | None
    order_id: str | None
    requested_at: datetime


def request_account_export(runtime, account_id: str) -> ExportRequested:
    now = utcnow()
    with runtime.unit_of_work(correlation_id=account_id) as uow:
        account = AccountRepository(uow).get(account_id)
        if account is None or account.deactivation_requested_at is not None:
            raise NotFound("no such account")
        uow.emit(
            "account.data_export_requested",
            {
                "account_id": account_id,
                "order_id": None,
                "order_ids": order_ids_of_account(uow, account_id),
                "requested_at": now.isoformat(),
            },
            subject=account_id,
            personal={
                "email": account.email,
                "first_name": (account.profile or {}).get("first_name"),
            },
        )
        uow.commit()
    log.info("account.export_requested", account_id=account_id)
    return ExportRequested(account_id, None, now)


def request_order_export(runtime, order_id: str, credentials: Credentials) -> ExportRequested:
    """A guest's export (the order's token), or the owner's of the order's account."""
    order = open_order(runtime, order_id, credentials)
    if order.account_id is not None and order.account_id == credentials.account_id:
        return request_account_export(runtime, order.account_id)
    customer = order.customer or {}
    if not customer.get("email"):
        raise NotFound("no such order")  # erased: nothing of the person is left to export
    now = utcnow()
    with runtime.unit_of_work(correlation_id=order_id) as uow:
        uow.emit(
            "account.data_export_requested",
            {
                "account_id": None,
                "order_id": order_id,
                "order_ids": [order_id],
                "requested_at": now.isoformat(),
            },
            subject=order_id,
            personal={"email": customer["email"], "first_name": customer.get("first_name")},
        )
        uow.commit()
    log.info("order.export_requested", order_id=order_id)
    return ExportRequested(None, order_id, now)


@dataclass(frozen=True)
class GuestDeactivationRequested:
    order_id: str
    requested_at: datetime


def request_guest_deactivation(runtime, order_id: str, credentials: Credentials):
    """A guest asks for the erasure of the order their token opens (the owner of an account's
    order asks for the account's deactivation: ``accounts.request_deactivation``)."""
    from .accounts import request_deactivation

    order = open_order(runtime, order_id, credentials)
    if order.account_id is not None:
        if order.account_id != credentials.account_id:
            raise NotFound("no such order")
        return request_deactivation(runtime, order.account_id)
    customer = order.customer or {}
    if not customer.get("email"):
        raise NotFound("no such order")  # erased already
    now = utcnow()
    with runtime.unit_of_work(correlation_id=order_id) as uow:
        uow.emit(
            "account.deactivation_requested",
            {"account_id": order_id, "guest_order_id": order_id, "requested_at": now.isoformat()},
            subject=order_id,
            personal={"email": customer["email"], "first_name": customer.get("first_name")},
        )
        uow.commit()
    log.info("order.erasure_requested", order_id=order_id)
    return GuestDeactivationRequested(order_id, now)
