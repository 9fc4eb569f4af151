"""Staff use cases on customer support: attach a support record to an order or an account (the
internal record of the assistance a customer received), read an order's records (with its
account's), and the admins' search of orders by the customer's e-mail address."""

from __future__ import annotations

from coc_shared.envelope import utcnow

from ..adapters.repository import AccountRepository, OrderRepository
from ..adapters.support import OrderSearchRepository, SupportRecordRepository
from ..domain.errors import NotFound, ValidationFailed
from ..domain.model import Order
from ..domain.support import SupportRecord, new_support_record

MAX_EMAIL = 320


def add_support_record(runtime, actor, fields: dict) -> SupportRecord:
    """Records what ``fields`` describe, by ``actor`` (the staff token's ``Actor``); an order's
    record is also its account's. NotFound when the order or account does not exist."""
    record = new_support_record(fields, actor.name, actor.role, utcnow())
    with runtime.unit_of_work(correlation_id=record.order_id or record.id) as uow:
        account_id = record.account_id
        if record.order_id:
            order = OrderRepository(uow).get(record.order_id)
            if order is None:
                raise NotFound("no such order")
            if account_id and order.account_id != account_id:
                raise ValidationFailed({"account_id": ["not the account of this order"]})
            account_id = order.account_id
        elif AccountRepository(uow).get(account_id) is None:
            raise NotFound("no such account")
        record = SupportRecord(**{**record.__dict__, "account_id": account_id})
        SupportRecordRepository(uow).add(record)
        uow.commit()
    return record


def support_records(
    runtime, order_id: str | None = None, account_id: str | None = None
) -> list[SupportRecord]:
    """The records of the order and of its account (or of the account alone), latest first."""
    with runtime.unit_of_work() as uow:
        if order_id and not account_id:
            order = OrderRepository(uow).get(order_id) if len(order_id) <= 36 else None
            account_id = order.account_id if order is not None else None
        return SupportRecordRepository(uow).about(order_id, account_id)


def orders_by_email(runtime, email: str) -> list[Order]:
    """The orders of a customer's e-mail address (the order's own or its account's)."""
    email = (email or "").strip()
    if not email or "@" not in email or len(email) > MAX_EMAIL:
        raise ValidationFailed({"email": ["an e-mail address"]})
    with runtime.unit_of_work() as uow:
        return OrderSearchRepository(uow).by_customer_email(email)
