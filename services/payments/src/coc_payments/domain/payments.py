"""What a provider's report does to the payment an order awaits (pure rules, no I/O).

A report is what a verified callback or a bank statement says: a payment succeeded, failed, is
pending, or was refunded/reversed. ``decide`` says what follows; the service layer applies it in
the transaction that recorded the callback. The rules that keep money safe:

* only a success whose amount and currency equal what is due confirms, and only while the order
  is not paid yet: an order is confirmed at most once;
* the same success reported again (a retried or duplicated callback) changes nothing;
* a different success for a paid order is a duplicate payment: reviewed and announced for refund;
* a mismatching amount or currency, a partial or excess transfer, or a payment for no known order
  is never applied: it goes to the review list;
* once the order is cancelled nothing confirms any more: a success (other than the transaction
  that paid before the cancellation) goes to the review list as ``paid_after_cancellation``, to
  be refunded; no event is emitted for it (``payment.duplicate_detected`` means "paid twice",
  which would tell the customer the wrong story), so the order never moves.

``on_cancellation`` says what ``order.cancelled`` does to the payment: one not paid is simply no
longer due; one already paid is cancelled too and reviewed (``cancelled_after_payment``) so that
staff refund it; the provider's refund then comes back as ``payment.refunded``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import CANCELLED, PAID, PAYMENT_METHODS, PaymentDue

KINDS = ("succeeded", "failed", "pending", "refunded", "reversed")

# Decisions
CONFIRM = "confirm"
FAIL = "fail"
REVIEW = "review"
DUPLICATE = "duplicate"  # reviewed and announced (payment.duplicate_detected)
ALREADY = "already_applied"
RECORD = "record"  # kept in the audit log, nothing else
REVERSAL = "reversal"  # money went back: reviewed and announced where the catalogue allows

# What an order's cancellation does to its payment
CANCEL = "cancel"  # nothing was paid: no longer due
CANCEL_AND_REFUND = "cancel_and_refund"  # it was paid: no longer due, and reviewed for a refund
UNCHANGED = "unchanged"  # cancelled already


@dataclass(frozen=True)
class PaymentReport:
    provider: str  # systempay | paypal | qonto | camt053
    method: str  # card | paypal | transfer
    kind: str  # one of KINDS
    provider_transaction_id: str
    amount_cents: int | None = None
    currency: str | None = None
    reason: str | None = None  # the provider's status or error, for failures

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown report kind {self.kind!r}")
        if self.method not in PAYMENT_METHODS:
            raise ValueError(f"unknown payment method {self.method!r}")
        if not self.provider_transaction_id:
            raise ValueError("a report needs the provider's transaction id")


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str

    @property
    def applies(self) -> bool:
        return self.action in (CONFIRM, FAIL)


def decide(due: PaymentDue | None, report: PaymentReport) -> Decision:  # noqa: C901 - a decision table, read as one piece
    if report.kind == "pending":
        return Decision(RECORD, "pending: waiting for the final status")
    if due is None:
        if report.kind == "succeeded":
            return Decision(REVIEW, "unknown_order")
        return Decision(RECORD, "unknown_order")
    if report.kind in ("refunded", "reversed"):
        return Decision(REVERSAL, report.kind)
    paid_here = due.paid_by(report.provider, report.provider_transaction_id)
    if due.status == CANCELLED:
        if report.kind == "failed":
            return Decision(RECORD, "failure_after_cancellation")
        if paid_here:
            return Decision(ALREADY, "already_confirmed_by_this_transaction")
        return Decision(REVIEW, "paid_after_cancellation")
    paid_here = paid_here and due.status == PAID
    if report.kind == "failed":
        if due.status == "paid":
            return Decision(RECORD, "failure_after_payment")
        return Decision(FAIL, report.reason or "failed")
    # succeeded
    if paid_here:
        return Decision(ALREADY, "already_confirmed_by_this_transaction")
    if due.status == "paid":
        return Decision(DUPLICATE, "duplicate_payment")
    if report.currency != due.currency:
        return Decision(REVIEW, "currency_mismatch")
    if report.amount_cents != due.amount_cents:
        if report.method == "transfer" and report.amount_cents is not None:
            return Decision(
                REVIEW,
                "partial_transfer"
                if report.amount_cents < due.amount_cents
                else "overpaid_transfer",
            )
        return Decision(REVIEW, "amount_mismatch")
    return Decision(CONFIRM, "paid")


def on_cancellation(due: PaymentDue) -> Decision:
    """What ``order.cancelled`` does to the order's payment."""
    if due.status == CANCELLED:
        return Decision(UNCHANGED, "already_cancelled")
    if due.status == PAID:
        return Decision(CANCEL_AND_REFUND, "cancelled_after_payment")
    return Decision(CANCEL, "order_cancelled")


PROVIDER_METHODS = {"systempay": "card", "paypal": "paypal", "bank-transfer": "transfer"}


def paid_report(due: PaymentDue) -> PaymentReport:
    """The payment that paid ``due`` (for the review list when it is to be refunded)."""
    return PaymentReport(
        provider=due.paid_provider or "unknown",
        method=PROVIDER_METHODS.get(due.paid_provider or "", due.method),
        kind="succeeded",
        provider_transaction_id=due.paid_transaction_id or "unknown",
        amount_cents=due.amount_cents,
        currency=due.currency,
    )
