"""Use case: support staff import a bank statement (ISO 20022 camt.053).

One unit of work: each booked credit's bank reference is claimed (a line imported before, by this
or an earlier statement, is ``already_imported`` and changes nothing), then matched by its RF
reference and applied as the bank's webhook is (``reports.apply_credit``); the import's audit row
is written once, at the end, with its counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coc_shared.envelope import utcnow

from ..adapters.bank import Credit
from ..adapters.repository import CallbackRepository
from ..domain.callbacks import Callback
from ..domain.payments import CONFIRM, DUPLICATE, FAIL, REVIEW, Decision
from .context import Payments
from .reports import apply_credit

PROVIDER = "camt053"
_COUNTED = {CONFIRM: "confirmed", REVIEW: "review", DUPLICATE: "duplicate", FAIL: "failed"}


@dataclass
class ImportSummary:
    credits: int = 0
    confirmed: int = 0
    review: int = 0
    duplicate: int = 0
    already_imported: int = 0
    ignored: int = 0
    failed: int = 0
    items: list[dict] = field(default_factory=list)

    def already(self, credit: Credit) -> None:
        self.already_imported += 1
        self.items.append({"transaction_id": credit.transaction_id, "outcome": "already_imported"})

    def applied(self, credit: Credit, decision: Decision) -> None:
        if decision.action in _COUNTED:
            key = _COUNTED[decision.action]
            setattr(self, key, getattr(self, key) + 1)
        self.items.append(
            {
                "transaction_id": credit.transaction_id,
                "amount_cents": credit.amount_cents,
                "currency": credit.currency,
                "outcome": decision.action,
                "reason": decision.reason,
            }
        )

    def as_dict(self) -> dict:
        return {
            "credits": self.credits,
            "confirmed": self.confirmed,
            "review": self.review,
            "duplicate": self.duplicate,
            "already_imported": self.already_imported,
            "ignored": self.ignored,
            "failed": self.failed,
            "items": self.items,
        }


def import_statement(
    payments: Payments,
    credits: list[Credit],
    body: bytes | str,
    staff: str,
    filename: str | None = None,
) -> ImportSummary:
    """Apply a statement's booked credits (``body``: the statement as kept for audit, card numbers
    masked)."""
    summary = ImportSummary()
    record = Callback(
        id=payments.callback_ids.next(),
        provider=PROVIDER,
        received_at=utcnow(),
        headers={"imported-by": staff, "file": filename or ""},
        body=body,
    )
    with payments.unit_of_work() as uow:
        callbacks = CallbackRepository(uow)
        for credit in credits:
            if not credit.credit or not credit.booked:
                summary.ignored += 1
                continue
            summary.credits += 1
            if callbacks.claim(PROVIDER, credit.transaction_id, record.id) is not None:
                summary.already(credit)
                continue
            decision, _due = apply_credit(uow, credit, record.id)
            summary.applied(credit, decision)
        callbacks.add(
            record.concluded(
                "imported", detail=f"{summary.confirmed} confirmed, {summary.review} to review"
            )
        )
        uow.commit()
    return summary
