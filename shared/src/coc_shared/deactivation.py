"""What every service does when the gdpr service announces an erased account
(``account.deactivated``): record it once, and erase what the service holds for the account.

A service declares its erasure as a function ``erase(uow, deactivation)`` (what it deletes or
anonymises, through the unit of work) and gets its handler from ``account_deactivated_handler``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

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

    @classmethod
    def from_message(cls, event_id: str, data: dict) -> AccountDeactivation:
        account_id = data.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            raise InvalidEvent("account.deactivated carries no account_id")
        return cls(
            account_id=account_id,
            event_id=event_id,
            erased_at=aware_datetime(data.get("erased_at"), "erased_at", InvalidEvent),
        )


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


Erasure = Callable[[object, AccountDeactivation], None]


def account_deactivated_handler(table: Table, erase: Erasure | None = None):
    """The handler of ``account.deactivated``: records the deactivation once and, the first time,
    runs the service's ``erase(uow, deactivation)``."""

    def account_deactivated(event: Event, ctx) -> None:
        deactivation = AccountDeactivation.from_message(event.id, event.data)
        deactivations = AccountDeactivationRepository(ctx, table)
        if deactivations.recorded(deactivation.account_id):
            return
        deactivations.add(deactivation)
        if erase is not None:
            erase(ctx, deactivation)

    return account_deactivated
