"""The accounting export: the FEC file of a period (``domain.fec``) from the documents issued,
the payments received and the refunds completed in it; dates are Paris dates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from coc_shared.documents import Cipher
from coc_shared.values import as_utc

from ..adapters.billing_repository import (
    BillingDocumentRepository,
    LedgerRepository,
    RefundRepository,
)
from ..config import PaymentsConfig
from ..domain import fec
from .refunds import DUPLICATE_REVIEWS

PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class FecExport:
    name: str
    text: str
    entries: list


def _local(value: datetime) -> date:
    return as_utc(value).astimezone(PARIS).date()


def _naive(value: datetime) -> datetime:
    """UTC without its zone (comparable with ``datetime.min``)."""
    return as_utc(value).astimezone(UTC).replace(tzinfo=None)


def export_fec(runtime, config: PaymentsConfig, first: date, last: date) -> FecExport:
    """The FEC of the days ``first`` to ``last`` (Paris dates, both included)."""
    seller, key = config.billing()
    start = datetime.combine(first, time.min, PARIS)
    end = datetime.combine(last + timedelta(days=1), time.min, PARIS)
    cipher = Cipher(key)
    movements = []
    customers: dict[str, str] = {}
    with runtime.unit_of_work() as uow:
        ledger = LedgerRepository(uow)
        documents = BillingDocumentRepository(uow).issued_between(start, end)
        # an archived document's buyer is in the invoice archive only: named by the order's number
        archived_orders = ledger.order_numbers(
            [row["order_id"] for row in documents if row["data"] is None]
        )
        for row in documents:
            if row["data"] is None:
                order_number = archived_orders.get(row["order_id"], row["order_id"])
                customers[row["order_id"]] = f"Client {order_number}"
            else:
                data = json.loads(cipher.decrypt(row["data"], row["number"]))
                buyer, order_number = data["buyer"], data["order_number"]
                customers[row["order_id"]] = buyer.get("company_name") or buyer["name"]
            movements.append(
                fec.Movement(
                    kind=row["kind"],
                    on=_local(row["issued_at"]),
                    at=_naive(row["issued_at"]),
                    reference=row["number"],
                    order_number=order_number,
                    customer=customers[row["order_id"]],
                    net_cents=row["net_cents"],
                    vat_cents=row["vat_cents"],
                    total_cents=row["total_cents"],
                )
            )
        received = [(r, r["confirmed_at"]) for r in ledger.payments_received(start, end)]
        received += [
            (r, r["created_at"]) for r in ledger.duplicates_received(start, end, DUPLICATE_REVIEWS)
        ]
        for row, at in received:
            movements.append(
                fec.Movement(
                    kind="payment",
                    on=_local(at),
                    at=_naive(at),
                    reference=row["provider_transaction_id"],
                    order_number=row["order_number"],
                    customer=customers.get(row["order_id"], f"Client {row['order_number']}"),
                    total_cents=row["amount_cents"],
                    provider=row["provider"],
                )
            )
        refunds = RefundRepository(uow).in_period(start, end)
        numbers = ledger.order_numbers([r["order_id"] for r in refunds])
        for row in refunds:
            number = numbers.get(row["order_id"], row["order_id"])
            movements.append(
                fec.Movement(
                    kind="refund",
                    on=_local(row["completed_at"]),
                    at=_naive(row["completed_at"]),
                    reference=row["provider_refund_id"] or row["id"],
                    order_number=number,
                    customer=customers.get(row["order_id"], f"Client {number}"),
                    total_cents=row["amount_cents"],
                    provider=row["provider"],
                )
            )
    entries = fec.entries(movements, config.accounts)
    return FecExport(fec.file_name(seller.siren, last), fec.render(entries), entries)
