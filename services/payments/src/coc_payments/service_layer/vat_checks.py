"""The VIES check of business buyers' VAT numbers (``coc_shared.vies``), kept for staff.

``order.placed`` records a pending check for an order whose company gives a VAT number; the
worker's ``vat-checks`` loop asks VIES for the checks that are due, one short unit of work per
result. VIES unavailable is recorded as such and tried again later with a growing delay (up to
six hours): it never holds an order, a payment or an invoice back."""

from __future__ import annotations

import threading
from datetime import timedelta

from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger
from coc_shared.values import as_utc
from coc_shared.vies import ViesClient

from ..adapters.billing_repository import VatCheckRepository

log = get_logger(__name__)
MAX_DELAY = timedelta(hours=6)


def record_pending(ctx, order_id: str, vat_number: str | None) -> None:
    if vat_number:
        VatCheckRepository(ctx).add_pending(order_id, vat_number)


def retry_delay(attempts: int) -> timedelta:
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), MAX_DELAY)


def check_due(runtime, client: ViesClient, limit: int = 20) -> int:
    """Check what is due; returns how many checks were made."""
    with runtime.unit_of_work() as uow:
        due = VatCheckRepository(uow).due(utcnow(), limit)
    for row in due:
        result = client.check(row["vat_number"])
        attempts = row["attempts"] + 1
        with runtime.unit_of_work() as uow:
            VatCheckRepository(uow).record(
                row["order_id"],
                row["attempts"],
                status=result.status,
                name=result.name,
                address=result.address,
                detail=result.detail,
                attempts=attempts,
                checked_at=result.checked_at,
                next_attempt_at=None if result.final else utcnow() + retry_delay(attempts),
            )
            uow.commit()
        log.info(
            "vat_check.checked", order_id=row["order_id"], status=result.status, attempts=attempts
        )
    return len(due)


def loop(runtime, poll_seconds: float = 5.0):
    """The worker's ``vat-checks`` loop (``ServiceDefinition.loops``)."""
    client = ViesClient(runtime.config.vies_api_url, runtime.config.provider_http_timeout)

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                made = check_due(runtime, client)
            except Exception as exc:  # the database is down: try again later
                log.warning("vat_check.loop_error", error_type=type(exc).__name__)
                made = 0
            if not made:
                stop.wait(poll_seconds)

    return run


def listed(runtime, status: str | None = None, order_id: str | None = None) -> list[dict]:
    with runtime.unit_of_work() as uow:
        rows = VatCheckRepository(uow).listed(status, order_id)
    for row in rows:
        for key in ("next_attempt_at", "checked_at", "created_at"):
            if row.get(key) is not None:
                row[key] = as_utc(row[key]).isoformat()
    return rows
