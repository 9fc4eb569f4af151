"""What every service does when the gdpr service asks it to erase an account
(``account.erasure_requested``): record it once, erase what the service holds for the account, and
report what it erased and what a legal obligation makes it keep
(``account.erasure_reported.<service>``), from which gdpr builds the customer's summary.

A service declares its erasure as a function ``erase(uow, deactivation) -> ErasureReport | None``
(what it deletes or anonymises, through the unit of work) and gets its handler from
``erasure_requested_handler``, which also destroys the account's data key in the shared key
store (``keystore``: crypto-shredding of every event's personal part about it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Table, select

from .envelope import Event, utcnow
from .errors import InvalidEvent
from .values import aware_datetime


@dataclass(frozen=True)
class AccountDeactivation:
    """An account whose personal data the gdpr service erased."""

    account_id: str
    event_id: str
    erased_at: datetime
    # a guest's order (no account): ``account_id`` is its id, and the service first files the
    # order's rows under it (``adopt``) so that its erasure of an account erases them
    order_ids: tuple[str, ...] = ()

    @classmethod
    def from_message(cls, event_id: str, data: dict) -> AccountDeactivation:
        account_id = data.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            raise InvalidEvent("the event carries no account_id")
        when = data.get("erased_at") or data.get("requested_at")
        return cls(
            account_id=account_id,
            event_id=event_id,
            erased_at=aware_datetime(when, "erased_at", InvalidEvent),
            order_ids=tuple(str(o) for o in data.get("order_ids") or () if o),
        )


@dataclass(frozen=True)
class Retained:
    """Data a service keeps after an erasure: what, why (the legal obligation) and until when."""

    category: str
    legal_basis: str
    until: date

    def as_data(self) -> dict:
        return {
            "category": self.category,
            "legal_basis": self.legal_basis,
            "until": self.until.isoformat(),
        }


@dataclass(frozen=True)
class ErasureReport:
    """What a service's erasure did: rows erased per category, and what it retained."""

    erased: dict[str, int] = field(default_factory=dict)
    retained: tuple[Retained, ...] = ()


class AccountDeactivationRepository:
    def __init__(self, uow, table: Table):
        self.uow = uow
        self.table = table

    def recorded(self, account_id: str) -> bool:
        t = self.table
        return (
            self.uow.execute(select(t.c.account_id).where(t.c.account_id == account_id)).first()
            is not None
        )

    def add(self, deactivation: AccountDeactivation) -> None:
        self.uow.add(
            self.table,
            {
                "account_id": deactivation.account_id,
                "event_id": deactivation.event_id,
                "erased_at": deactivation.erased_at,
                "recorded_at": utcnow(),
            },
        )


Erasure = Callable[[object, AccountDeactivation], ErasureReport | None]


Adopt = Callable[[object, str, tuple[str, ...]], None]


def adopt_rows(table: Table, order_column: str = "order_id") -> Adopt:
    """The ``adopt`` of a service whose ``table`` has an ``account_id`` column and the order's id
    in ``order_column``: the guest order's rows (no account) are filed under ``account_id``."""

    def adopt(uow, account_id: str, order_ids: tuple[str, ...]) -> None:
        uow.change(
            table,
            {"account_id": account_id},
            table.c[order_column].in_(list(order_ids)) & table.c.account_id.is_(None),
        )

    return adopt


def erasure_requested_handler(
    table: Table, erase: Erasure | None = None, adopt: Adopt | None = None
):
    """The handler of ``account.erasure_requested``: the first request of an account runs the
    service's ``erase(uow, deactivation)`` and records it; every request (a repeated one too, so
    that gdpr can close it) is answered with this service's report, on the same transaction.
    A guest's request names its order (``order_ids``, the account id being the order's): the
    service's ``adopt(uow, account_id, order_ids)`` files the order's rows without an account
    under it first, so that the same erasure applies."""

    def erasure_requested(event: Event, ctx) -> None:
        from .catalogue import erasure_report_type

        deactivation = AccountDeactivation.from_message(event.id, event.data)
        deactivations = AccountDeactivationRepository(ctx, table)
        report = ErasureReport()
        keys = getattr(ctx, "keys", None)
        if keys is not None:
            # crypto-shredding: the account's data key (and its orders') is destroyed in the
            # shared key store, by whichever service comes first; every sealed copy of its
            # personal parts (outboxes, queues, parked messages) is unreadable from now on
            keys.destroy(deactivation.account_id)
            for order_id in deactivation.order_ids:  # linked or not (a guest's, adopted)
                if order_id != deactivation.account_id:
                    keys.destroy(order_id)
        if not deactivations.recorded(deactivation.account_id):
            deactivations.add(deactivation)
            if adopt is not None and deactivation.order_ids:
                adopt(ctx, deactivation.account_id, deactivation.order_ids)
            if erase is not None:
                report = erase(ctx, deactivation) or report
        ctx.emit(
            erasure_report_type(ctx.producer),
            {
                "request_id": event.data.get("request_id") or event.id,
                "account_id": deactivation.account_id,
                "service": ctx.producer,
                "erased": [
                    {"category": category, "count": count}
                    for category, count in sorted(report.erased.items())
                ],
                "retained": [retained.as_data() for retained in report.retained],
            },
            subject=deactivation.account_id,
        )

    return erasure_requested
