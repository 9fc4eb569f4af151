"""What the services say of one order, compared (pure rules): each disagreement between the
orders service's status, payments' payment and invoice, and the supplier gateway's request."""

from __future__ import annotations

from dataclasses import dataclass

# the orders service's statuses that say the order was paid / went to the supplier / has its
# certificate / was shipped
PAID = frozenset(
    {
        "paid",
        "sent_to_supplier",
        "supplier_rejected",
        "certificate_received",
        "shipped",
        "delivered",
    }
)
UNPAID = frozenset({"placed", "payment_failed"})
AT_SUPPLIER = frozenset(
    {"sent_to_supplier", "supplier_rejected", "certificate_received", "shipped", "delivered"}
)
BEFORE_CERTIFICATE = frozenset({"placed", "payment_failed", "paid", "sent_to_supplier"})
SHIPPED = frozenset({"shipped", "delivered"})
# the supplier gateway's statuses of a request handed to the supplier
SENT = frozenset({"sent", "accepted", "rejected", "issued", "shipped", "delivered"})

KINDS: dict[str, str] = {
    "paid_not_in_payments": "orders says paid; payments has no confirmed payment",
    "paid_in_payments_not_in_orders": "payments has a confirmed payment; orders says unpaid",
    "invoice_missing": "paid, and payments has no invoice for it",
    "cancelled_but_paid": "orders says cancelled; payments holds a payment not refunded",
    "at_supplier_without_request": "orders says it went to the supplier; the gateway sent no "
    "request",
    "certificate_not_in_orders": "the gateway received the certificate; orders does not know",
    "shipped_without_shipment": "orders says shipped; the gateway recorded no shipment",
    "shipment_not_in_orders": "the gateway recorded the shipment; orders still waits for it",
}


@dataclass(frozen=True)
class Disagreement:
    order_id: str
    number: str
    kind: str
    orders_says: str
    payments_says: str
    gateway_says: str

    @property
    def meaning(self) -> str:
        return KINDS[self.kind]


def _payment_says(payment: dict | None) -> str:
    if payment is None:
        return "no record"
    said = payment.get("payment") or "no payment due"
    if payment.get("invoice"):
        said += f", invoice {payment['invoice']}"
    if payment.get("refunded_cents"):
        said += f", {payment['refunded_cents'] / 100:.2f} refunded"
    return said


def _gateway_says(request: dict | None) -> str:
    if request is None:
        return "no request"
    return f"{request.get('status')} at {request.get('supplier') or '?'}"


def disagreements(order: dict, payment: dict | None, request: dict | None) -> list[Disagreement]:
    """Every disagreement about ``order`` (orders' ``order-states`` item) with what payments
    (``payment``) and the gateway (``request``) say; none when they agree."""
    status = order["status"]
    paid = payment is not None and payment.get("payment") == "paid"
    refunded = payment is not None and bool(payment.get("refunded_cents"))
    sent = request is not None and request.get("status") in SENT
    kinds = []
    if status in PAID and not paid:
        kinds.append("paid_not_in_payments")
    if status in UNPAID and paid:
        kinds.append("paid_in_payments_not_in_orders")
    if (status in PAID or paid) and not (payment or {}).get("invoice"):
        kinds.append("invoice_missing")
    if status == "cancelled" and paid and not refunded:
        kinds.append("cancelled_but_paid")
    if status in AT_SUPPLIER and not sent:
        kinds.append("at_supplier_without_request")
    if status in BEFORE_CERTIFICATE and request is not None and request.get("issued_at"):
        kinds.append("certificate_not_in_orders")
    if status in SHIPPED and not (request or {}).get("shipped_at"):
        kinds.append("shipped_without_shipment")
    if status == "certificate_received" and (request or {}).get("shipped_at"):
        kinds.append("shipment_not_in_orders")
    said = (status, _payment_says(payment), _gateway_says(request))
    return [Disagreement(order["order_id"], order["number"], kind, *said) for kind in kinds]
