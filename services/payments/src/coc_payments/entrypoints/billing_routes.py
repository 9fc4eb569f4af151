"""HTTP routes of invoices, credit notes, refunds, the accounting export and the VAT checks.

Customers (the order's access token in ``X-Order-Token``, or the owner's bearer token, exactly as
for the checkout):

* ``GET /v1/orders/<order_id>/invoices`` — the order's invoices and credit notes (number, date,
  totals, the PDF's link);
* ``GET /v1/orders/<order_id>/invoices/<number>.pdf`` — one of them (Factur-X PDF).

Support staff: ``/v1/staff/invoices`` (list, PDF, re-send, chain check), ``/v1/staff/refunds``
(approve, list, retry, SEPA file, transfer sent), ``/v1/staff/accounting/fec`` (the FEC file of a
period), ``/v1/staff/vat-checks`` (VIES checks of business buyers' VAT numbers).
"""

from __future__ import annotations

from datetime import date

from flask import Response, g, jsonify, request
from flask_smorest import Blueprint

from coc_shared.guards import InputRefused
from coc_shared.http import error_response, order_caller, staff_required
from coc_shared.openapi import CUSTOMER_SECURITY, STAFF_SECURITY, errors

from ..adapters.billing_repository import BillingDocumentRepository
from ..adapters.repository import PaymentDueRepository
from ..config import NotConfigured
from ..domain.billing import pdf_filename
from ..service_layer import accounting, invoicing, refunds, vat_checks
from . import schemas as s

billing = Blueprint("billing", __name__, description="Invoices and credit notes")
billing_staff = Blueprint(
    "billing_staff", __name__, url_prefix="/v1/staff", description="Invoices, refunds, accounting"
)


def _parts():
    from .routes import parts

    return parts()


def _runtime():
    from coc_shared.http import current_runtime

    return current_runtime()


def _visible_documents(order_id: str):
    """The order's documents (rows) when the caller may see the order, else None."""
    account_id, order_token = order_caller()
    with _runtime().unit_of_work() as uow:
        due = PaymentDueRepository(uow).get(order_id)
        if due is None or not due.visible_to(account_id, order_token):
            return None
        return BillingDocumentRepository(uow).listed(order_id)


def _pdf_answer(pdf: bytes, number: str) -> Response:
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{pdf_filename(number)}"'},
    )


def _document_pdf(number: str, order_id: str | None = None):
    with _runtime().unit_of_work() as uow:
        row = BillingDocumentRepository(uow).get(number)
    if row is None or (order_id is not None and row["order_id"] != order_id):
        return None
    if row["data"] is None:  # moved to the invoice archive: not served from here
        return None
    return invoicing.open_document(row, _parts().config.billing()[1]).pdf


# --------------------------------------------------------------------------- customers
@billing.route("/v1/orders/<order_id>/invoices", methods=["GET"])
@billing.doc(
    security=CUSTOMER_SECURITY,
    parameters=[s.ORDER_TOKEN_PARAM],
    summary="The order's invoices and credit notes (number, date, totals, PDF link)",
)
@billing.response(200, s.DocumentListSchema)
@errors(billing, 401, 404, 503)
def order_invoices(order_id: str):
    rows = _visible_documents(order_id)
    if rows is None:
        return error_response(404, "no such order")
    config = _parts().config
    return jsonify(
        {"order_id": order_id, "items": [invoicing.document_summary(config, r) for r in rows]}
    )


@billing.route("/v1/orders/<order_id>/invoices/<number>.pdf", methods=["GET"])
@billing.doc(
    security=CUSTOMER_SECURITY,
    parameters=[s.ORDER_TOKEN_PARAM],
    summary="One invoice or credit note of the order (Factur-X PDF)",
)
@billing.response(200, description="the PDF", content_type="application/pdf")
@errors(billing, 401, 404, 503)
def order_invoice_pdf(order_id: str, number: str):
    rows = _visible_documents(order_id)
    if rows is None or number not in {r["number"] for r in rows}:
        return error_response(404, "no such invoice")
    pdf = _document_pdf(number, order_id)
    if pdf is None:
        return error_response(404, "no such invoice")
    return _pdf_answer(pdf, number)


# --------------------------------------------------------------------------- staff: documents
@billing_staff.route("/invoices", methods=["GET"])
@billing_staff.doc(
    security=STAFF_SECURITY,
    parameters=[s.ORDER_ID_QUERY],
    summary="Invoices and credit notes (an order's, or the latest 200)",
)
@billing_staff.response(200, s.DocumentListSchema)
@errors(billing_staff, 401, 403, 503)
@staff_required()
def staff_invoices():
    order_id = request.args.get("order_id") or None
    with _runtime().unit_of_work() as uow:
        rows = BillingDocumentRepository(uow).listed(order_id)
    config = _parts().config
    return jsonify(
        {"order_id": order_id, "items": [invoicing.document_summary(config, r) for r in rows]}
    )


@billing_staff.route("/invoices/<number>.pdf", methods=["GET"])
@billing_staff.doc(security=STAFF_SECURITY, summary="One invoice or credit note (PDF)")
@billing_staff.response(200, description="the PDF", content_type="application/pdf")
@errors(billing_staff, 401, 403, 404, 503)
@staff_required()
def staff_invoice_pdf(number: str):
    pdf = _document_pdf(number)
    if pdf is None:
        return error_response(404, "no such invoice")
    _runtime().parking.record_action(g.staff, "read_invoice", number, None, {"service": "payments"})
    return _pdf_answer(pdf, number)


@billing_staff.route("/invoices/<number>/resend", methods=["POST"])
@billing_staff.doc(
    security=STAFF_SECURITY,
    summary="Send an invoice or credit note to the customer again (invoice.issued, resent)",
    requestBody=s.REASON_BODY,
)
@billing_staff.response(202, s.ResentSchema)
@errors(billing_staff, 401, 403, 404, 422, 503)
@staff_required()
def resend_invoice(number: str):
    body = request.get_json(silent=True) or {}
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return error_response(422, "a reason is needed", {"reason": ["Required."]})
    result = invoicing.resend(_runtime(), _parts().config, number, g.staff, reason.strip()[:500])
    if result is None:
        return error_response(404, "no such invoice")
    return jsonify(result), 202


@billing_staff.route("/invoices/verify", methods=["GET"])
@billing_staff.doc(
    security=STAFF_SECURITY,
    summary="Check both series: numbers without gap, digests and chain (any alteration shows)",
)
@billing_staff.response(200, s.ChainReportSchema)
@errors(billing_staff, 401, 403, 503)
@staff_required()
def verify_invoices():
    report = invoicing.verify_series(_runtime(), _parts().config.billing()[1])
    return jsonify(report.as_dict())


# --------------------------------------------------------------------------- staff: refunds
def _refund_error(exc: refunds.RefundRefusedByRules):
    return error_response(exc.status, str(exc), exc.fields)


@billing_staff.route("/refunds", methods=["POST"])
@billing_staff.doc(
    security=STAFF_SECURITY,
    summary="Approve a refund: credit note, then the refund through the provider that took the "
    "money (a SEPA file for a transfer); admin role above REFUND_ADMIN_ABOVE_CENTS",
    requestBody=s.REFUND_BODY,
)
@billing_staff.response(200, s.RefundSchema)
@errors(billing_staff, 401, 403, 404, 409, 422, 503)
@staff_required()
def approve_refund():
    asked = refund_request(request.get_json(silent=True))
    try:
        result = refunds.request_refund(_runtime(), _parts().config, asked, g.staff)
    except refunds.RefundRefusedByRules as exc:
        return _refund_error(exc)
    return jsonify(result)


REFUND_TEXTS = (
    "order_id",
    "reason",
    "note",
    "provider_transaction_id",
    "iban",
    "bic",
    "account_holder",
)
REFUND_REQUIRED = ("order_id", "reason", "note")


def refund_request(body) -> refunds.RefundRequest:
    """The refund a JSON body asks for; refused with 422 naming each field that is missing or not
    of its type."""
    if not isinstance(body, dict):
        raise InputRefused(422, "a JSON object is expected", {"body": ["Not an object."]})
    problems = {}
    texts = {}
    for name in REFUND_TEXTS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            problems[name] = ["Not a string."]
        texts[name] = value
    for name in REFUND_REQUIRED:
        if not texts.get(name):
            problems[name] = ["Required."]
    amount = body.get("amount_cents")
    if amount is not None and (type(amount) is not int or not 0 < amount < 10**12):
        problems["amount_cents"] = ["A whole number of cents above 0."]
    if problems:
        raise InputRefused(422, "invalid refund", problems)
    return refunds.RefundRequest(amount_cents=amount, **texts)


@billing_staff.route("/refunds", methods=["GET"])
@billing_staff.doc(
    security=STAFF_SECURITY,
    parameters=[s.ORDER_ID_QUERY, s.STATUS_QUERY],
    summary="Refunds, newest first",
)
@billing_staff.response(200, s.RefundListSchema)
@errors(billing_staff, 401, 403, 503)
@staff_required()
def list_refunds():
    items = refunds.list_refunds(
        _runtime(), request.args.get("order_id") or None, request.args.get("status") or None
    )
    return jsonify({"items": items})


@billing_staff.route("/refunds/<refund_id>/retry", methods=["POST"])
@billing_staff.doc(security=STAFF_SECURITY, summary="Ask the provider again (a failed refund)")
@billing_staff.response(200, s.RefundSchema)
@errors(billing_staff, 401, 403, 404, 503)
@staff_required()
def retry_refund(refund_id: str):
    result = refunds.execute_refund(_runtime(), _parts().config, refund_id)
    if result is None:
        return error_response(404, "no such refund")
    _runtime().parking.record_action(
        g.staff, "retry_refund", refund_id, None, {"service": "payments"}
    )
    return jsonify(result)


@billing_staff.route("/refunds/<refund_id>/sepa.xml", methods=["GET"])
@billing_staff.doc(
    security=STAFF_SECURITY, summary="The SEPA credit transfer file (pain.001) of a transfer refund"
)
@billing_staff.response(200, description="pain.001.001.03", content_type="application/xml")
@errors(billing_staff, 401, 403, 404, 503)
@staff_required()
def refund_sepa_file(refund_id: str):
    raw = refunds.sepa_file(_runtime(), _parts().config, refund_id, g.staff)
    if raw is None:
        return error_response(404, "no SEPA file for this refund")
    return Response(
        raw,
        mimetype="application/xml",
        headers={"Content-Disposition": f'attachment; filename="refund-{refund_id[:8]}.xml"'},
    )


@billing_staff.route("/refunds/<refund_id>/transfer-sent", methods=["POST"])
@billing_staff.doc(
    security=STAFF_SECURITY,
    summary="The SEPA file was uploaded to the bank: the transfer's refund is completed",
    requestBody=s.REASON_BODY,
)
@billing_staff.response(200, s.RefundSchema)
@errors(billing_staff, 401, 403, 404, 409, 503)
@staff_required()
def transfer_sent(refund_id: str):
    body = request.get_json(silent=True) or {}
    reason = body.get("reason") if isinstance(body, dict) else None
    note = reason.strip()[:500] if isinstance(reason, str) else None
    try:
        result = refunds.complete_transfer(_runtime(), refund_id, g.staff, note)
    except refunds.RefundRefusedByRules as exc:
        return _refund_error(exc)
    if result is None:
        return error_response(404, "no such refund")
    return jsonify(result)


# --------------------------------------------------------------------------- staff: accounting
@billing_staff.route("/accounting/fec", methods=["GET"])
@billing_staff.doc(
    security=STAFF_SECURITY,
    parameters=s.PERIOD_QUERY,
    summary="The FEC file (Fichier des Écritures Comptables) of a period: sales and bank journals",
)
@billing_staff.response(200, description="the FEC file", content_type="text/plain")
@errors(billing_staff, 400, 401, 403, 503)
@staff_required()
def fec_file():
    try:
        first = date.fromisoformat(request.args.get("from", ""))
        last = date.fromisoformat(request.args.get("to", ""))
    except ValueError:
        return error_response(
            400, "a period is needed", {"from": ["YYYY-MM-DD"], "to": ["YYYY-MM-DD"]}
        )
    if last < first or (last - first).days > 800:
        return error_response(400, "the period is reversed or too long", {"to": ["Out of range."]})
    export = accounting.export_fec(_runtime(), _parts().config, first, last)
    _runtime().parking.record_action(
        g.staff, "export_fec", export.name, None, {"service": "payments", "from": str(first)}
    )
    return Response(
        export.text.encode("utf-8"),
        mimetype="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{export.name}"'},
    )


@billing_staff.route("/vat-checks", methods=["GET"])
@billing_staff.doc(
    security=STAFF_SECURITY,
    parameters=[s.ORDER_ID_QUERY, s.STATUS_QUERY],
    summary="VIES checks of business buyers' VAT numbers (pending, valid, invalid, unavailable)",
)
@billing_staff.response(200, s.VatCheckListSchema)
@errors(billing_staff, 401, 403, 503)
@staff_required()
def list_vat_checks():
    items = vat_checks.listed(
        _runtime(), request.args.get("status") or None, request.args.get("order_id") or None
    )
    return jsonify({"items": items})


def not_configured(exc: NotConfigured):
    return error_response(503, f"{exc.method} are not available now (not configured)")
