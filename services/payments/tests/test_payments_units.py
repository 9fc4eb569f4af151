"""Unit tests of the pure parts: references, masking, the decision rules, and the provider
protocols' signatures and parsers (no I/O)."""

import base64
import hashlib
import hmac
import zlib
from dataclasses import FrozenInstanceError, replace

import pytest
from stdnum import iso11649

from coc_payments.adapters.bank import StatementError, parse_camt053, verify_qonto, webhook_credit
from coc_payments.adapters.hosted_page import BadSignature, SystempayPage, systempay_signature
from coc_payments.adapters.paypal import signed_string, to_cents
from coc_payments.adapters.providers import Providers
from coc_payments.config import NotConfigured, PaymentsConfig
from coc_payments.domain.masking import mask_card_numbers, mask_form
from coc_payments.domain.model import PaymentDue
from coc_payments.domain.payments import PaymentReport, decide, on_cancellation, paid_report
from coc_payments.domain.references import creditor_reference, format_reference, references_in
from coc_shared.config import ConfigError


def test_creditor_references_are_valid_iso11649_and_derived_from_the_order_number():
    ref = creditor_reference("COC-2026-000123")
    assert ref == "RF73COC2026000123" and iso11649.is_valid(ref)
    assert format_reference(ref) == "RF73 COC2 0260 0012 3"
    long = creditor_reference("X" * 40)
    assert iso11649.is_valid(long) and len(long) <= 25


def test_references_are_found_with_spaces_and_case_ignored_even_when_text_follows():
    ref = creditor_reference("COC-2026-000123")
    found, mistyped = references_in("virement rf73 coc2 0260 0012 3merci")
    assert ref in found and mistyped  # the run-on candidate fails, its prefix is the reference
    assert references_in("no reference here") == ([], False)
    found, mistyped = references_in("RF74COC2026000123")  # wrong check digits
    assert "RF74COC2026000123" not in found and mistyped


def test_card_numbers_are_masked_as_the_bank_masks_them():
    assert mask_card_numbers('{"pan": "4970 1012 3456 0054"}') == '{"pan": "497010XXXXXX0054"}'
    assert (
        mask_card_numbers("order 20261127101010 amount 24900")
        == "order 20261127101010 amount 24900"
    )
    form = mask_form(
        "vads_card_number=4970101234560055&vads_trans_date=20261127101010&x=4970101234560054"
    )
    assert (
        "4970101234560055" not in form
        and "4970101234560054" not in form
        and "20261127101010" in form
    )


DUE = PaymentDue(
    order_id="o-1", order_number="N-1", method="card", amount_cents=1000, currency="EUR"
)


def report(**kw):
    values = dict(
        provider="systempay",
        method="card",
        kind="succeeded",
        provider_transaction_id="t-1",
        amount_cents=1000,
        currency="EUR",
    )
    values.update(kw)
    return PaymentReport(**values)


@pytest.mark.parametrize(
    "due,rep,action,reason",
    [
        (DUE, report(), "confirm", "paid"),
        (DUE, report(amount_cents=999), "review", "amount_mismatch"),
        (DUE, report(currency="USD"), "review", "currency_mismatch"),
        (
            DUE,
            report(method="transfer", provider="bank-transfer", amount_cents=500),
            "review",
            "partial_transfer",
        ),
        (
            DUE,
            report(method="transfer", provider="bank-transfer", amount_cents=1500),
            "review",
            "overpaid_transfer",
        ),
        (None, report(), "review", "unknown_order"),
        (DUE, report(kind="failed", reason="REFUSED"), "fail", "REFUSED"),
        (DUE, report(kind="pending"), "record", "pending: waiting for the final status"),
        (
            replace(DUE, status="paid", paid_provider="systempay", paid_transaction_id="t-1"),
            report(),
            "already_applied",
            "already_confirmed_by_this_transaction",
        ),
        (
            replace(DUE, status="paid", paid_provider="paypal", paid_transaction_id="c-9"),
            report(),
            "duplicate",
            "duplicate_payment",
        ),
        (
            replace(DUE, status="paid", paid_provider="paypal", paid_transaction_id="c-9"),
            report(kind="failed"),
            "record",
            "failure_after_payment",
        ),
        (replace(DUE, status="failed"), report(), "confirm", "paid"),
        (DUE, report(kind="refunded"), "reversal", "refunded"),
        # the order was cancelled
        (replace(DUE, status="cancelled"), report(), "review", "paid_after_cancellation"),
        (
            replace(DUE, status="cancelled"),
            report(amount_cents=1),
            "review",
            "paid_after_cancellation",
        ),
        (
            replace(DUE, status="cancelled"),
            report(kind="failed"),
            "record",
            "failure_after_cancellation",
        ),
        (
            replace(DUE, status="cancelled"),
            report(kind="pending"),
            "record",
            "pending: waiting for the final status",
        ),
        (replace(DUE, status="cancelled"), report(kind="refunded"), "reversal", "refunded"),
        (
            replace(DUE, status="cancelled", paid_provider="systempay", paid_transaction_id="t-1"),
            report(),
            "already_applied",
            "already_confirmed_by_this_transaction",
        ),
        (
            replace(DUE, status="cancelled", paid_provider="systempay", paid_transaction_id="t-1"),
            report(provider_transaction_id="t-2"),
            "review",
            "paid_after_cancellation",
        ),
    ],
)
def test_decisions(due, rep, action, reason):
    decision = decide(due, rep)
    assert (decision.action, decision.reason) == (action, reason)


@pytest.mark.parametrize(
    "status,action,reason",
    [
        ("due", "cancel", "order_cancelled"),
        ("failed", "cancel", "order_cancelled"),
        ("paid", "cancel_and_refund", "cancelled_after_payment"),
        ("cancelled", "unchanged", "already_cancelled"),
    ],
)
def test_what_a_cancellation_does_to_the_payment(status, action, reason):
    decision = on_cancellation(replace(DUE, status=status))
    assert (decision.action, decision.reason) == (action, reason)
    assert not decision.applies  # nothing is confirmed or failed by a cancellation


def test_the_payment_to_refund_is_the_one_that_paid():
    paid = replace(DUE, status="paid", paid_provider="bank-transfer", paid_transaction_id="tx-9")
    assert paid_report(paid) == PaymentReport(
        provider="bank-transfer",
        method="transfer",
        kind="succeeded",
        provider_transaction_id="tx-9",
        amount_cents=1000,
        currency="EUR",
    )
    assert (
        not replace(DUE, status="cancelled").payable and replace(DUE, status="cancelled").cancelled
    )


def test_systempay_signature_follows_the_platform_rule():
    fields = {
        "vads_b": "2",
        "vads_a": "1",
        "vads_c": "",
        "signature": "ignored",
        "other": "ignored",
    }
    expected = base64.b64encode(hmac.new(b"KEY", b"1+2++KEY", hashlib.sha256).digest()).decode()
    assert systempay_signature(fields, "KEY") == expected


def test_systempay_notifications_refuse_a_field_given_twice():
    page = SystempayPage("https://bank", "1", "TEST", {"TEST": "k"})
    with pytest.raises(BadSignature):
        page.verify_notification([("vads_amount", "1"), ("vads_amount", "2"), ("signature", "x")])


def test_qonto_signature_window():
    body, secret = b'{"a":1}', "s"
    sig = hmac.new(b"s", b"1000." + body, hashlib.sha256).hexdigest()
    verify_qonto(f"t=1000,v1={sig}", body, secret, now=1299, tolerance=300)
    for now in (1301, 699):
        with pytest.raises(BadSignature):
            verify_qonto(f"t=1000,v1={sig}", body, secret, now=now, tolerance=300)
    with pytest.raises(BadSignature):
        verify_qonto(f"t=1000,v1={sig}", body, None, now=1000, tolerance=300)


def test_webhook_credit_reads_a_transaction():
    credit, key = webhook_credit(
        b'{"data": {"transaction_id": "t1", "amount": "12.30", "currency": "EUR", '
        b'"side": "credit", "label": "RF..", "status": "completed"}}'
    )
    assert (credit.amount_cents, credit.currency, credit.credit, credit.booked, key) == (
        1230,
        "EUR",
        True,
        True,
        "t1:completed",
    )


def test_camt053_batch_entries_give_one_credit_per_transaction():
    xml = b"""<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
    <BkToCstmrStmt><Stmt><Id>S1</Id>
    <Ntry><Amt Ccy="EUR">30.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
     <AcctSvcrRef>E1</AcctSvcrRef>
     <NtryDtls>
      <TxDtls><Refs><AcctSvcrRef>T1</AcctSvcrRef></Refs>
        <AmtDtls><TxAmt><Amt Ccy="EUR">10.00</Amt></TxAmt></AmtDtls>
        <RmtInf><Ustrd>RF18 A</Ustrd></RmtInf></TxDtls>
      <TxDtls><Refs><AcctSvcrRef>T2</AcctSvcrRef></Refs><Amt Ccy="EUR">20.00</Amt>
        <RmtInf><Ustrd>B</Ustrd></RmtInf></TxDtls>
     </NtryDtls></Ntry></Stmt></BkToCstmrStmt></Document>"""
    credits = parse_camt053(xml)
    assert [(c.transaction_id, c.amount_cents, c.label, c.booked) for c in credits] == [
        ("T1", 1000, "RF18 A", True),
        ("T2", 2000, "B", True),
    ]
    with pytest.raises(StatementError):
        parse_camt053(b"<Document/>")


def test_paypal_signed_string_and_amounts():
    body = b'{"id":"WH-1"}'
    assert (
        signed_string("tid", "2026-01-01T00:00:00Z", "WH", body)
        == f"tid|2026-01-01T00:00:00Z|WH|{zlib.crc32(body) & 0xFFFFFFFF}"
    )
    assert (to_cents("249.00"), to_cents("0.1"), to_cents("1.005"), to_cents(None)) == (
        24900,
        10,
        None,
        None,
    )


def test_certificate_urls_are_allowed_only_under_paypal_hosts():
    config = PaymentsConfig.from_env(
        {"PAYPAL_CERT_URL_PREFIXES": "https://api.paypal.com/,https://api.sandbox.paypal.com/"}
    )
    assert config.cert_url_allowed("https://api.paypal.com/v1/notifications/certs/CERT-1")
    for url in (
        "http://api.paypal.com/v1/certs/1",
        "https://api.paypal.com.evil.com/c",
        "https://evil.com/?https://api.paypal.com/",
        "https://user@api.paypal.com/c",
        "https://api.paypal.com:8443/c",
        "https://api.paypal.com/../../x",
        "not a url",
        "",
    ):
        assert not config.cert_url_allowed(url), url


@pytest.mark.parametrize(
    "name,value",
    [
        ("SYSTEMPAY_MODE", "DEMO"),
        ("TRANSFER_IBAN", "FR7630006000011234567890188"),
        ("TRANSFER_BIC", "AGRI"),
        ("QONTO_WEBHOOK_TOLERANCE_SECONDS", "five minutes"),
        ("PROVIDER_HTTP_TIMEOUT", "0"),
        ("PAYMENTS_PUBLIC_URL", "payments.example.org"),
        ("PAYPAL_CERT_URL_PREFIXES", "https://api.paypal.com/,ftp://x/"),
    ],
)
def test_a_malformed_value_is_a_start_error_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name) as refused:
        PaymentsConfig.from_env({name: value})
    assert "expected" in str(refused.value)


def test_the_configuration_is_typed_and_frozen():
    config = PaymentsConfig.from_env(
        {
            "TRANSFER_IBAN": "fr76 3000 6000 0112 3456 7890 189",
            "TRANSFER_BIC": "agrifrpp",
            "QONTO_WEBHOOK_TOLERANCE_SECONDS": "120",
            "PAYMENTS_PUBLIC_URL": "https://p.test/",
        }
    )
    assert config.transfer_account() == ("FR7630006000011234567890189", "AGRIFRPP", "COC")
    assert config.qonto_webhook_tolerance_seconds == 120.0 and config.public_url == "https://p.test"
    assert config.notification_url == "https://p.test/v1/callbacks/systempay"
    with pytest.raises(FrozenInstanceError):
        config.transfer_iban = None


UNSET = {
    name: ""
    for name in (
        "SYSTEMPAY_SITE_ID",
        "SYSTEMPAY_TEST_KEY",
        "SYSTEMPAY_PRODUCTION_KEY",
        "PAYPAL_CLIENT_ID",
        "PAYPAL_CLIENT_SECRET",
        "TRANSFER_IBAN",
        "TRANSFER_BIC",
    )
}


@pytest.mark.parametrize(
    "settings,method",
    [
        ({}, "card"),
        (
            {"SYSTEMPAY_SITE_ID": "1", "SYSTEMPAY_PRODUCTION_KEY": "k"},
            "card",
        ),  # no key of the TEST mode
        ({"PAYPAL_CLIENT_ID": "id"}, "paypal"),
        ({"TRANSFER_IBAN": "FR7630006000011234567890189"}, "transfer"),
    ],
)
def test_a_provider_left_unset_is_not_configured_for_its_method(settings, method):
    providers = Providers(PaymentsConfig.from_env({**UNSET, **settings}))
    ask = {
        "card": providers.card_page,
        "paypal": providers.paypal,
        "transfer": providers.config.transfer_account,
    }[method]
    with pytest.raises(NotConfigured) as refused:
        ask()
    assert refused.value.method == method
