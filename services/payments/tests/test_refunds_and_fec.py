"""Refunds approved by staff through the provider that took the money (Systempay's REST refund,
PayPal's capture refund, a SEPA pain.001 for a transfer), with their credit notes; the FEC of a
period; the VIES checks. Local servers speak each provider's API."""

import io
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from facturx import get_xml_from_pdf, xml_check_xsd
from lxml import etree
from payments_testkit import (
    FORM,
    billing_rows,
    document,
    form_body,
    outbox_events,
    paid,
    pdf_text,
    review_reasons,
    systempay_ipn,
)
from sqlalchemy import text

from coc_payments.adapters.cii import summary
from coc_payments.domain import fec
from coc_payments.domain.billing import euros
from coc_payments.service_layer import vat_checks
from coc_payments.service_layer.accounting import export_fec
from coc_shared.testing import staff_headers
from coc_shared.vies import INVALID, MALFORMED, UNAVAILABLE, VALID, SandboxVies, ViesClient

SUPPORT = staff_headers("carol", "support")
ADMIN = staff_headers("dave", "admin")
CUSTOMER_IBAN = "DE89370400440532013000"


def refund(client, auth=SUPPORT, **body):
    body.setdefault("note", "le client a annulé, accord du responsable")
    return client.post("/v1/staff/refunds", json=body, headers=auth)


def events(runtime, event_type, order_id):
    return [e["data"] for e in outbox_events(runtime, event_type, order_id)]


def test_a_card_refund_goes_through_systempays_rest_api_with_its_credit_note(
    runtime, client, fake_systempay_api
):
    order, transaction = paid(runtime, client, "card", 24900)
    answer = refund(client, order_id=order["order_id"], reason="cancelled_after_payment")
    assert answer.status_code == 200, answer.get_json()
    result = answer.get_json()
    assert result["status"] == "completed" and result["credit_note_number"].startswith("AV-")
    call = fake_systempay_api.calls[-1]
    assert (call["uuid"], call["amount"], call["currency"]) == (transaction, 24900, "EUR")
    (requested,) = events(runtime, "refund.requested", order["order_id"])
    (completed,) = events(runtime, "refund.completed", order["order_id"])
    assert requested["credit_note_number"] == result["credit_note_number"]
    assert completed["provider_refund_id"] == result["provider_refund_id"]
    # the credit note: its own series, the invoice's amounts, a valid Factur-X (381)
    (credit_note,) = billing_rows(runtime, "credit_note", order["order_id"])
    invoice = billing_rows(runtime, "invoice", order["order_id"])[0]
    assert (credit_note["total_cents"], credit_note["vat_cents"]) == (24900, 4150)
    data, pdf = document(runtime, credit_note["number"])
    assert data["corrects"]["number"] == invoice["number"]
    words = " ".join(pdf_text(pdf).split())
    assert f"Avoir n° {credit_note['number']}" in words
    assert f"Facture d'origine : {invoice['number']}" in words
    assert euros(24900) in words and "TVA 20 %" in words
    _, xml = get_xml_from_pdf(pdf, check_xsd=True)
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert summary(xml)["type_code"] == "381"
    kinds = [e["kind"] for e in events(runtime, "invoice.issued", order["order_id"])]
    assert kinds == ["invoice", "credit_note"]
    # the approval is in the support actions log, with the staff member and the reason
    with runtime.engine.connect() as conn:
        (action,) = conn.execute(
            text("SELECT actor, role, reason FROM ops.support_actions WHERE target = :t"),
            {"t": result["id"]},
        ).all()
    assert tuple(action) == ("carol", "support", "le client a annulé, accord du responsable")
    # one refund per payment
    again = refund(client, order_id=order["order_id"], reason="cancelled_after_payment")
    assert again.status_code == 409


def test_a_refused_card_refund_fails_and_is_retried(runtime, client, fake_systempay_api):
    order, _ = paid(runtime, client, "card", 24900)
    fake_systempay_api.fail_with = "PSP_099"
    try:
        result = refund(client, order_id=order["order_id"], reason="supplier_unable").get_json()
    finally:
        fake_systempay_api.fail_with = None
    assert result["status"] == "failed" and "PSP_099" in result["failure"]
    (failed,) = events(runtime, "refund.failed", order["order_id"])
    assert "PSP_099" in failed["reason"]
    retried = client.post(f"/v1/staff/refunds/{result['id']}/retry", headers=SUPPORT)
    assert retried.get_json()["status"] == "completed"
    assert len(events(runtime, "refund.completed", order["order_id"])) == 1
    # one credit note for the refund, however many attempts
    assert len(billing_rows(runtime, "credit_note", order["order_id"])) == 1


def test_a_paypal_refund_refunds_the_capture_once(runtime, client, fake_paypal):
    order, capture_id = paid(runtime, client, "paypal", 5000, fake_paypal=fake_paypal)
    result = refund(client, order_id=order["order_id"], reason="cancelled_after_payment")
    result = result.get_json()
    assert result["status"] == "completed", result
    assert fake_paypal.refunded[capture_id] == 5000
    assert result["provider_refund_id"].startswith("RF")
    # a retry of a completed refund asks PayPal nothing
    calls = len(fake_paypal.calls)
    client.post(f"/v1/staff/refunds/{result['id']}/retry", headers=SUPPORT)
    assert len(fake_paypal.calls) == calls


def test_a_transfer_refund_is_a_pain001_file_parsed_back(runtime, client):
    order, _ = paid(runtime, client, "transfer", 24900)
    missing = refund(client, order_id=order["order_id"], reason="cancelled_after_payment")
    assert missing.status_code == 422 and "iban" in missing.get_json()["error"]["fields"]
    result = refund(
        client,
        order_id=order["order_id"],
        reason="cancelled_after_payment",
        iban=CUSTOMER_IBAN,
        account_holder="Émilie Dupont-Lefèvre",
    ).get_json()
    assert result["status"] == "file_ready" and result["sepa_file"] is True
    raw = client.get(f"/v1/staff/refunds/{result['id']}/sepa.xml", headers=SUPPORT)
    assert raw.status_code == 200
    doc = etree.parse(io.BytesIO(raw.data))
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
    assert doc.getroot().tag == "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.03}Document"

    def one(path):
        (found,) = doc.xpath(path, namespaces=ns)
        return found.text

    assert one("//p:GrpHdr/p:NbOfTxs") == "1"
    assert one("//p:GrpHdr/p:CtrlSum") == "249.00"
    assert one("//p:DbtrAcct/p:Id/p:IBAN") == "FR7630006000011234567890189"
    assert one("//p:CdtTrfTxInf/p:Amt/p:InstdAmt") == "249.00"
    assert one("//p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:IBAN") == CUSTOMER_IBAN
    assert one("//p:CdtTrfTxInf/p:Cdtr/p:Nm") == "Emilie Dupont-Lefevre"
    assert one("//p:CdtTrfTxInf/p:PmtId/p:EndToEndId").startswith("RBT-")
    assert events(runtime, "refund.completed", order["order_id"]) == []
    sent = client.post(
        f"/v1/staff/refunds/{result['id']}/transfer-sent",
        json={"reason": "uploaded to the bank"},
        headers=SUPPORT,
    )
    assert sent.get_json()["status"] == "completed"
    assert len(events(runtime, "refund.completed", order["order_id"])) == 1


def test_a_duplicate_payment_is_refunded_without_a_credit_note(runtime, client, fake_systempay_api):
    order, _ = paid(runtime, client, "card", 24900)
    second = uuid.uuid4().hex
    fields = systempay_ipn(order["order_number"], 24900, trans_uuid=second)
    client.post("/v1/callbacks/systempay", data=form_body(fields), headers=FORM)
    assert "duplicate_payment" in review_reasons(runtime, order["order_id"])
    result = refund(client, order_id=order["order_id"], reason="duplicate_payment").get_json()
    assert result["status"] == "completed" and result["credit_note_number"] is None
    assert fake_systempay_api.calls[-1]["uuid"] == second
    assert billing_rows(runtime, "credit_note", order["order_id"]) == []


def test_a_refund_above_the_declared_amount_needs_an_admin_and_a_reason(runtime, client):
    order, _ = paid(runtime, client, "card", 40000)
    no_reason = refund(client, order_id=order["order_id"], reason="supplier_unable", note="")
    assert no_reason.status_code == 422
    refused = refund(client, order_id=order["order_id"], reason="supplier_unable")
    assert refused.status_code == 403
    assert billing_rows(runtime, "credit_note", order["order_id"]) == []
    approved = refund(client, ADMIN, order_id=order["order_id"], reason="supplier_unable")
    assert approved.get_json()["status"] == "completed"
    assert client.post("/v1/staff/refunds", json={}).status_code == 401


# --------------------------------------------------------------------------- FEC
def test_the_fec_of_a_period_balances_and_matches_the_invoices(runtime, client, tmp_path):
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    orders = [
        paid(runtime, client, "card", 24900)[0],
        paid(runtime, client, "card", 20750, buyer="business_de", vat_regime="reverse_charge")[0],
        paid(runtime, client, "transfer", 24900, buyer="business_fr")[0],
    ]
    result = refund(client, order_id=orders[0]["order_id"], reason="cancelled_after_payment")
    assert result.get_json()["status"] == "completed"
    export = export_fec(runtime, runtime.config, today - timedelta(days=1), today)
    assert export.name == f"732829320FEC{today:%Y%m%d}.txt"
    lines = export.text.split("\r\n")
    assert lines[0].split("|") == list(fec.COLUMNS) and len(fec.COLUMNS) == 18
    rows = [line.split("|") for line in lines[1:] if line]
    assert all(len(r) == 18 for r in rows)

    def cents(value):
        return int(value.replace(",", ""))

    by_entry = {}
    for r in rows:
        by_entry.setdefault(r[2], []).append(r)
    for number, entry in by_entry.items():  # every entry balances
        assert sum(cents(r[11]) for r in entry) == sum(cents(r[12]) for r in entry), number
    invoices = [r for r in billing_rows(runtime, "invoice")]
    credit_notes = [r for r in billing_rows(runtime, "credit_note")]
    accounts = runtime.config.accounts

    def total(journal, account, column):
        return sum(cents(r[column]) for r in rows if r[0] == journal and r[4] == account)

    in_period = [r for r in invoices if _paris(r["issued_at"]) >= today - timedelta(days=1)]
    notes = [r for r in credit_notes if _paris(r["issued_at"]) >= today - timedelta(days=1)]
    assert total("VE", accounts.revenue, 12) == sum(r["net_cents"] for r in in_period)
    assert total("VE", accounts.revenue, 11) == sum(r["net_cents"] for r in notes)
    assert total("VE", accounts.vat, 12) == sum(r["vat_cents"] for r in in_period)
    assert total("VE", accounts.customers, 11) == sum(r["total_cents"] for r in in_period)
    # the bank: this test's card payments into 512100, its refund out of it, the transfer 512000
    numbers = {o["order_number"] for o in orders}
    ours = [r for r in rows if r[0] == "BQ" and r[10].split()[-1] in numbers]
    card_in = sum(cents(r[11]) for r in ours if r[4] == "512100")
    card_out = sum(cents(r[12]) for r in ours if r[4] == "512100")
    assert (card_in, card_out) == (24900 + 20750, 24900)
    assert sum(cents(r[11]) for r in ours if r[4] == "512000") == 24900
    # the customer accounts of these orders: invoiced, paid, credited, refunded: all settled
    for order in orders:
        lines_411 = [
            r for r in rows if r[4] == accounts.customers and r[6] == order["order_number"]
        ]
        assert sum(cents(r[11]) - cents(r[12]) for r in lines_411) == 0, order["order_number"]
    # the staff endpoint and the command give the same file
    answer = client.get(
        f"/v1/staff/accounting/fec?from={today - timedelta(days=1)}&to={today}", headers=SUPPORT
    )
    assert answer.status_code == 200
    assert export.name in answer.headers["Content-Disposition"]
    assert answer.data.decode().split("\r\n")[0] == lines[0]
    assert client.get("/v1/staff/accounting/fec?from=x", headers=SUPPORT).status_code == 400


def _paris(value):
    from coc_shared.values import as_utc

    return as_utc(value).astimezone(ZoneInfo("Europe/Paris")).date()


# --------------------------------------------------------------------------- VIES
@pytest.fixture
def vies():
    sandbox = SandboxVies()
    url = sandbox.start()
    yield sandbox, url
    sandbox.stop()


def test_the_vies_client_against_its_sandbox(vies):
    sandbox, url = vies
    client = ViesClient(url, timeout=5)
    assert client.check("DE 136 695 976").status == VALID
    assert client.check("DE136695977").status == MALFORMED  # stdnum's check digit, VIES not asked
    sandbox.invalid.add("FR82542065479")
    assert client.check("FR82542065479").status == INVALID
    sandbox.unavailable = True
    result = client.check("DE136695976")
    assert result.status == UNAVAILABLE and not result.final
    assert ViesClient("http://127.0.0.1:9", timeout=1).check("DE136695976").status == UNAVAILABLE


def test_an_unavailable_vies_never_blocks_and_is_tried_again(runtime, client, vies):
    sandbox, url = vies
    sandbox.unavailable = True
    order, _ = paid(
        runtime, client, "card", 20750, buyer="business_de", vat_regime="reverse_charge"
    )
    # the order was paid and invoiced while VIES was down
    assert billing_rows(runtime, "invoice", order["order_id"])
    checker = ViesClient(url, timeout=5)
    vat_checks.check_due(runtime, checker, limit=500)
    (check,) = vat_checks.listed(runtime, order_id=order["order_id"])
    assert check["status"] == UNAVAILABLE and check["attempts"] == 1
    sandbox.unavailable = False
    vat_checks.check_due(runtime, checker, limit=500)  # not due yet: waits its delay
    assert vat_checks.listed(runtime, order_id=order["order_id"])[0]["status"] == UNAVAILABLE
    with runtime.engine.begin() as conn:
        conn.execute(
            text("UPDATE payments.vat_checks SET next_attempt_at = now() WHERE order_id = :o"),
            {"o": order["order_id"]},
        )
    vat_checks.check_due(runtime, checker, limit=500)
    staff = client.get(f"/v1/staff/vat-checks?order_id={order['order_id']}", headers=SUPPORT)
    (check,) = staff.get_json()["items"]
    assert (check["status"], check["attempts"], check["vat_number"]) == (
        VALID,
        2,
        "DE136695976",
    )
    assert vat_checks.retry_delay(1) == timedelta(seconds=30)
    assert vat_checks.retry_delay(20) == timedelta(hours=6)


def test_a_private_order_records_no_vat_check(runtime, client):
    order, _ = paid(runtime, client, "card", 24900)
    assert vat_checks.listed(runtime, order_id=order["order_id"]) == []


def test_fec_file_name_and_amount_format():
    assert fec.file_name("732829320", date(2026, 12, 31)) == "732829320FEC20261231.txt"
    assert fec._amount(24900) == "249,00"


def test_a_command_whose_configuration_is_missing_says_what_and_exits_2(runtime, tmp_path):
    """coc-payments export-fec without the seller's details: one line naming them, no trace."""
    import subprocess
    import sys
    from pathlib import Path

    from coc_shared.testing import service_env, staff_token

    env = {k: v for k, v in service_env(runtime.settings).items() if not k.startswith("SELLER_")}
    env["STAFF_TOKEN"] = staff_token("alice", "admin", audience=("payments",))
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "coc-payments"),
            "export-fec",
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
            "--output",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "SELLER_NAME" in done.stderr and "Traceback" not in done.stderr
