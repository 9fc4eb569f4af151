"""Use cases of the payments service: checkout, provider callbacks, bank statements.

A callback is handled in one transaction: it is recorded for audit (card numbers masked), its
notification id is claimed (a repeated delivery finds the claim and changes nothing), the order's
payment row is locked and the provider's report is applied as ``domain.payments.decide`` says,
with the events it causes written to the outbox. The answer (2xx) is sent only after the commit,
so an answered callback has been durably recorded *and* applied.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy.exc import DBAPIError

from coc_shared.catalogue import UnknownEventType, lookup
from coc_shared.envelope import Event, utcnow
from coc_shared.logging import get_logger
from coc_shared.outbox import add_to_outbox, notify_channel, outbox_row
from coc_shared.service import Transaction

from ..adapters.bank import Credit
from ..adapters.hosted_page import BadSignature, HostedPaymentPage, Notification, PaymentRequest
from ..adapters.repository import (
    CallbackRepository, CardAttemptRepository, CardCallbackFastPath, ConfirmationRepository, PaymentDueRepository,
    PayPalOrderRepository, ReviewRepository,
)
from ..domain.model import PaymentDue
from ..domain.payments import (
    ALREADY, CONFIRM, DUPLICATE, FAIL, RECORD, REVERSAL, REVIEW, Decision, PaymentReport, decide,
)
from ..domain.references import format_reference, references_in

log = get_logger(__name__)
TRANSFER_PROVIDER = "bank-transfer"


@dataclass
class Outcome:
    status: int
    body: dict
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def _money(report: PaymentReport) -> dict:
    return {"amount_cents": report.amount_cents, "currency": report.currency}


def apply_report(tx, report: PaymentReport, due: PaymentDue | None, callback_id: int | None,
                 label: str | None = None, unknown_reason: str | None = None) -> Decision:
    """Apply a verified report to the (locked) payment row; events go to ``tx``'s outbox."""
    decision = decide(due, report)
    conn = tx.conn
    order_id = due.order_id if due else None
    correlation = (due.correlation_id or due.order_id) if due else None
    if decision.action == CONFIRM:
        if not PaymentDueRepository(conn).mark_paid(due.order_id, report):
            # Cannot happen under the row lock; never confirm twice all the same.
            return Decision(ALREADY, "paid_concurrently")
        event = tx.emit("payment.confirmed", {
            "order_id": due.order_id, "method": report.method, "provider": report.provider,
            "provider_transaction_id": report.provider_transaction_id, "amount": _money(report),
            "order_number": due.order_number}, subject=due.order_id, correlation_id=correlation)
        ConfirmationRepository(conn).add(due.order_id, report, callback_id, event.id)
        log.info("payment.confirmed", order_id=due.order_id, provider=report.provider, event_id=event.id)
    elif decision.action == FAIL:
        PaymentDueRepository(conn).mark_failed(due.order_id)
        tx.emit("payment.failed", {"order_id": due.order_id, "method": report.method, "provider": report.provider,
                                   "reason": decision.reason, "provider_transaction_id": report.provider_transaction_id},
                subject=due.order_id, correlation_id=correlation)
    elif decision.action == REVIEW:
        reason = unknown_reason if (due is None and unknown_reason) else decision.reason
        decision = Decision(REVIEW, reason)
        ReviewRepository(conn).add(reason, report, order_id, callback_id, label)
        log.warning("payment.review", order_id=order_id, reason=reason, provider=report.provider)
    elif decision.action == DUPLICATE:
        ReviewRepository(conn).add(decision.reason, report, order_id, callback_id, label)
        tx.emit("payment.duplicate_detected", {
            "order_id": due.order_id, "provider": report.provider, "method": report.method,
            "provider_transaction_id": report.provider_transaction_id, "amount": _money(report)},
            subject=due.order_id, correlation_id=correlation)
        log.warning("payment.duplicate_detected", order_id=order_id, provider=report.provider)
    elif decision.action == REVERSAL:
        ReviewRepository(conn).add(decision.reason, report, order_id, callback_id, label)
        try:
            lookup("payment.refunded", 1)
        except UnknownEventType:
            log.warning("payment.reversal_not_announced", order_id=order_id, kind=report.kind,
                        why="no payment.refunded in the catalogue")
        else:
            tx.emit("payment.refunded", {
                "order_id": due.order_id, "method": report.method, "provider": report.provider, "kind": report.kind,
                "provider_transaction_id": report.provider_transaction_id, "amount": _money(report)},
                subject=due.order_id, correlation_id=correlation)
    return decision


def _claim_or_duplicate(tx, provider: str, dedupe_key: str, callback_id: int) -> int | None:
    earlier = CallbackRepository(tx.conn).claim(provider, dedupe_key, callback_id)
    if earlier is not None:
        CallbackRepository(tx.conn).conclude(callback_id, "duplicate", f"duplicate_of:{earlier}")
    return earlier


@contextmanager
def _callback_transaction(runtime):
    """``Runtime.transaction`` on ``runtime.worker_engine``: the pool's connection is used without
    a pre-ping (a round trip per request); a connection found dead is retried by the caller."""
    with runtime.worker_engine.begin() as conn:
        tx = Transaction(conn, runtime.definition.name, None, None)
        yield tx
        add_to_outbox(conn, runtime.outbox, tx.events)


def receive_card_notification(runtime, page: HostedPaymentPage, pairs, headers: dict, audit_body: str) -> Outcome:
    """One transaction: the callback recorded, its notification id claimed, the report applied.

    It runs on the runtime's worker engine (no pre-ping, see ``_callback_transaction``): when the
    pooled connection turns out dead (the database restarted), SQLAlchemy invalidates the pool and
    the whole transaction is run once more on a new connection. That is safe even when the
    connection died during the COMMIT: the claimed notification id makes a second run a
    ``duplicate`` that changes nothing."""
    for attempt in (1, 2):
        try:
            return _receive_card_notification(runtime, page, pairs, headers, audit_body)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.warning("callback.connection_lost", provider=page.provider, retrying=True)
    raise AssertionError("unreachable")


def _receive_card_notification(runtime, page: HostedPaymentPage, pairs, headers: dict, audit_body: str) -> Outcome:
    with _callback_transaction(runtime) as tx:
        callbacks = CallbackRepository(tx.conn)
        try:
            notification = page.verify_notification(pairs)
        except BadSignature as exc:
            callbacks.record(page.provider, headers, audit_body, "rejected", str(exc))
            return Outcome(401, {"status": "rejected"})
        if tx.conn.dialect.name != "postgresql":
            callback_id = callbacks.record(page.provider, headers, audit_body, "accepted",
                                           dedupe_key=notification.dedupe_key)
            if _claim_or_duplicate(tx, page.provider, notification.dedupe_key, callback_id) is not None:
                return Outcome(200, {"status": "duplicate"})
            due = PaymentDueRepository(tx.conn).by_number(notification.order_number or "", lock=True)
        else:
            # The same steps in one statement (CardCallbackFastPath), and a confirmation in one more.
            received_at = utcnow()
            fast = CardCallbackFastPath(tx.conn, runtime.outbox)
            callback_id, due = fast.claim_and_lock(page.provider, notification.dedupe_key,
                                                   notification.order_number or "", received_at)
            if callback_id is None:
                callback_id = callbacks.record(page.provider, headers, audit_body, "accepted",
                                               dedupe_key=notification.dedupe_key, received_at=received_at)
                earlier = callbacks.claimed_by(page.provider, notification.dedupe_key)
                callbacks.conclude(callback_id, "duplicate", f"duplicate_of:{earlier}")
                return Outcome(200, {"status": "duplicate"})
            report = notification.report
            if decide(due, report).action == CONFIRM:
                return _confirm_card(runtime, tx, fast, due, report, callback_id, received_at, headers,
                                     audit_body, notification.dedupe_key)
            callbacks.record(page.provider, headers, audit_body, "accepted", dedupe_key=notification.dedupe_key,
                             callback_id=callback_id, received_at=received_at)
        decision = apply_report(tx, notification.report, due, callback_id)
        callbacks.conclude(callback_id, "accepted", decision.action, order_id=due.order_id if due else None,
                           detail=decision.reason)
    return Outcome(200, {"status": "received", "outcome": decision.action})


def _confirm_card(runtime, tx, fast: CardCallbackFastPath, due: PaymentDue, report: PaymentReport,
                  callback_id: int, received_at, headers: dict, audit_body: str, dedupe_key: str) -> Outcome:
    """``apply_report``'s CONFIRM branch, the callback's audit row (concluded) and the outbox
    write, as one statement; the event is the one ``tx.emit`` makes, validated as
    ``add_to_outbox`` does."""
    event = Event(type="payment.confirmed", version=1, data={
        "order_id": due.order_id, "method": report.method, "provider": report.provider,
        "provider_transaction_id": report.provider_transaction_id, "amount": _money(report),
        "order_number": due.order_number}, producer=tx.producer, correlation_id=due.correlation_id or due.order_id,
        causation_id=tx.causation_id, subject=due.order_id)
    row = outbox_row(event)
    row["event_body"] = row.pop("body")  # the statement's parameter name ("body" is the callback's)
    row.pop("attempts")
    if not fast.confirm(due, report, callback_id, received_at, headers, audit_body, dedupe_key, row,
                        notify_channel(runtime.outbox.schema)):
        # Cannot happen under the row lock; never confirm twice all the same (concluded as such).
        return Outcome(200, {"status": "received", "outcome": ALREADY})
    log.info("payment.confirmed", order_id=due.order_id, provider=report.provider, event_id=event.id)
    return Outcome(200, {"status": "received", "outcome": CONFIRM})


def _find_paypal_due(tx, order_number: str | None, paypal_order_id: str | None) -> PaymentDue | None:
    repo = PaymentDueRepository(tx.conn)
    due = repo.by_number(order_number, lock=True) if order_number else None
    if due is None and paypal_order_id:
        row = PayPalOrderRepository(tx.conn).get(paypal_order_id)
        if row is not None:
            due = repo.get(row["order_id"], lock=True)
    return due


def receive_paypal_webhook(runtime, webhooks, client_factory, headers, raw: bytes, audit_body: str,
                           audit_headers: dict) -> Outcome:
    from ..adapters.paypal import CAPTURE_KINDS, ProviderError, capture_notification

    try:
        doc = webhooks.verify(headers, raw)
        rejection = None
    except BadSignature as exc:
        doc, rejection = None, str(exc)
    except ProviderError as exc:
        with runtime.transaction() as tx:
            CallbackRepository(tx.conn).record("paypal", audit_headers, audit_body, "unverified", str(exc))
        return Outcome(503, {"status": "try_again"})
    outcome = Outcome(200, {"status": "received"})
    with runtime.transaction() as tx:
        callbacks = CallbackRepository(tx.conn)
        if rejection is not None:
            callbacks.record("paypal", audit_headers, audit_body, "rejected", rejection)
            return Outcome(401, {"status": "rejected"})
        event_type = doc["event_type"]
        callback_id = callbacks.record("paypal", audit_headers, audit_body, "accepted", dedupe_key=doc["id"])
        duplicate = _claim_or_duplicate(tx, "paypal", doc["id"], callback_id) is not None
        if event_type == "CHECKOUT.ORDER.APPROVED":
            paypal_order_id = (doc.get("resource") or {}).get("id")
            row = PayPalOrderRepository(tx.conn).get(paypal_order_id, lock=True) if paypal_order_id else None
            if row is None:
                callbacks.conclude(callback_id, "duplicate" if duplicate else "accepted", "unknown_paypal_order")
                return Outcome(200, {"status": "ignored"})
            due = PaymentDueRepository(tx.conn).get(row["order_id"], lock=True)
            if due is not None and due.cancelled and row["status"] in ("created", "approved"):
                # The order was cancelled after the checkout: take no money. An approved PayPal
                # order that is never captured expires at PayPal by itself.
                PayPalOrderRepository(tx.conn).update(paypal_order_id, status="approved")
                if not duplicate:
                    callbacks.conclude(callback_id, "accepted", "not_captured", order_id=row["order_id"],
                                       detail="order_cancelled")
                log.warning("paypal.not_captured", order_id=row["order_id"], reason="order_cancelled")
                outcome.body["outcome"] = "not_captured"
                return outcome
            if row["status"] in ("created", "approved"):
                PayPalOrderRepository(tx.conn).update(paypal_order_id, status="approved")
                outcome.after_commit.append(lambda: capture_paypal_order(runtime, client_factory, paypal_order_id))
            if not duplicate:
                callbacks.conclude(callback_id, "accepted", "capture_requested", order_id=row["order_id"])
            outcome.body["outcome"] = "capture_requested"
        elif duplicate:
            outcome.body["status"] = "duplicate"
        elif event_type in CAPTURE_KINDS:
            notification, paypal_order_id = capture_notification(doc)
            due = _find_paypal_due(tx, notification.order_number, paypal_order_id)
            decision = apply_report(tx, notification.report, due, callback_id)
            callbacks.conclude(callback_id, "accepted", decision.action, order_id=due.order_id if due else None,
                               detail=decision.reason)
            if paypal_order_id and notification.report.kind in ("succeeded", "pending"):
                PayPalOrderRepository(tx.conn).update(paypal_order_id, status="captured",
                                                      capture_id=notification.report.provider_transaction_id,
                                                      capture_status=doc["resource"].get("status"))
            outcome.body["outcome"] = decision.action
        else:
            callbacks.conclude(callback_id, "accepted", RECORD, detail=f"not handled: {event_type}")
    return outcome


def capture_paypal_order(runtime, client_factory, paypal_order_id: str) -> None:
    """Capture an approved PayPal order (idempotent: one PayPal-Request-Id per order). The
    confirmation itself comes with the PAYMENT.CAPTURE.COMPLETED webhook."""
    capture = client_factory().capture(paypal_order_id)
    with runtime.transaction() as tx:
        PayPalOrderRepository(tx.conn).update(paypal_order_id, status="captured", capture_id=capture.capture_id,
                                              capture_status=capture.status)
    log.info("paypal.captured", paypal_order_id=paypal_order_id, capture_status=capture.status)


def apply_credit(tx, credit: Credit, callback_id: int) -> Decision:
    """An incoming transfer (bank webhook or statement line) matched by its RF reference."""
    if not credit.credit:
        return Decision(RECORD, "debit")
    report = PaymentReport(provider=TRANSFER_PROVIDER, method="transfer",
                           kind="succeeded" if credit.booked else "pending",
                           provider_transaction_id=credit.transaction_id, amount_cents=credit.amount_cents,
                           currency=credit.currency)
    if not credit.booked:
        return Decision(RECORD, "not_booked")
    references, mistyped = references_in(credit.label)
    due = PaymentDueRepository(tx.conn).by_reference(references, lock=True)
    return apply_report(tx, report, due, callback_id, label=credit.label[:500],
                        unknown_reason="invalid_reference" if mistyped else "unmatched_credit")


def receive_bank_webhook(runtime, verify: Callable[[], None], parse, headers: dict, raw: bytes,
                         audit_body: str) -> Outcome:
    with runtime.transaction() as tx:
        callbacks = CallbackRepository(tx.conn)
        try:
            verify()
            credit, dedupe_key = parse(raw)
        except BadSignature as exc:
            callbacks.record("qonto", headers, audit_body, "rejected", str(exc))
            return Outcome(401, {"status": "rejected"})
        except (ValueError, TypeError, AttributeError) as exc:
            callbacks.record("qonto", headers, audit_body, "unreadable", str(exc))
            return Outcome(422, {"status": "unreadable"})
        callback_id = callbacks.record("qonto", headers, audit_body, "accepted", dedupe_key=dedupe_key)
        if _claim_or_duplicate(tx, "qonto", dedupe_key, callback_id) is not None:
            return Outcome(200, {"status": "duplicate"})
        decision = apply_credit(tx, credit, callback_id)
        callbacks.conclude(callback_id, "accepted", decision.action, detail=decision.reason)
    return Outcome(200, {"status": "received", "outcome": decision.action})


def import_statement(runtime, credits: list[Credit], audit_body: str, staff: str, filename: str | None = None) -> dict:
    """Apply a camt.053 statement's booked credits; a line imported before changes nothing."""
    summary = {"credits": 0, "confirmed": 0, "review": 0, "duplicate": 0, "already_imported": 0, "ignored": 0,
               "failed": 0, "items": []}
    with runtime.transaction() as tx:
        callbacks = CallbackRepository(tx.conn)
        callback_id = callbacks.record("camt053", {"imported-by": staff, "file": filename or ""}, audit_body,
                                       "accepted")
        for credit in credits:
            if not credit.credit or not credit.booked:
                summary["ignored"] += 1
                continue
            summary["credits"] += 1
            if CallbackRepository(tx.conn).claim("camt053", credit.transaction_id, callback_id) is not None:
                summary["already_imported"] += 1
                summary["items"].append({"transaction_id": credit.transaction_id, "outcome": "already_imported"})
                continue
            decision = apply_credit(tx, credit, callback_id)
            key = {CONFIRM: "confirmed", REVIEW: "review", DUPLICATE: "duplicate", FAIL: "failed"}.get(decision.action)
            if key:
                summary[key] += 1
            summary["items"].append({"transaction_id": credit.transaction_id, "amount_cents": credit.amount_cents,
                                     "currency": credit.currency, "outcome": decision.action,
                                     "reason": decision.reason})
        callbacks.conclude(callback_id, "accepted", "imported",
                           detail=f"{summary['confirmed']} confirmed, {summary['review']} to review")
    return summary


# --------------------------------------------------------------------------- checkout
def checkout_card(runtime, page: HostedPaymentPage, due: PaymentDue, notification_url: str, return_url: str) -> dict:
    now = datetime.now(timezone.utc)
    with runtime.transaction() as tx:
        transaction_id = CardAttemptRepository(tx.conn).next_transaction_id(due.order_id, page.provider,
                                                                            now.strftime("%Y%m%d"))
    form = page.payment_form(PaymentRequest(
        order_id=due.order_id, order_number=due.order_number, amount_cents=due.amount_cents, currency=due.currency,
        transaction_id=transaction_id, at=now, return_url=return_url, notification_url=notification_url))
    return {"method": "card", "provider": page.provider,
            "form": {"url": form.url, "method": form.method, "fields": form.fields}}


def checkout_paypal(runtime, client_factory, due: PaymentDue, return_url: str) -> dict:
    with runtime.engine.connect() as conn:
        existing = PayPalOrderRepository(conn).for_order(due.order_id)
    if existing is None:
        created = client_factory().create_order(order_id=due.order_id, order_number=due.order_number,
                                                amount_cents=due.amount_cents, currency=due.currency,
                                                return_url=return_url, cancel_url=return_url)
        from sqlalchemy.exc import IntegrityError
        try:
            with runtime.transaction() as tx:
                PayPalOrderRepository(tx.conn).add(created.paypal_order_id, due.order_id, created.approval_url,
                                                   "created")
        except IntegrityError:
            pass  # a concurrent checkout recorded the same order (same PayPal-Request-Id)
        with runtime.engine.connect() as conn:
            existing = PayPalOrderRepository(conn).for_order(due.order_id)
    return {"method": "paypal", "provider": "paypal", "paypal_order_id": existing["paypal_order_id"],
            "approval_url": existing["approval_url"]}


def checkout_transfer(due: PaymentDue, account: tuple[str, str, str]) -> dict:
    iban, bic, beneficiary = account
    return {"method": "transfer", "provider": TRANSFER_PROVIDER, "iban": iban, "bic": bic,
            "beneficiary": beneficiary, "reference": format_reference(due.reference),
            "reference_compact": due.reference,
            "amount": {"amount_cents": due.amount_cents, "currency": due.currency}}
