"""Every template, rendered from realistic events, sent through a real SMTP session (aiosmtpd) by
the sender and parsed back with the ``email`` package: headers, both parts of the
multipart/alternative, the French text, amounts (``249,00 €``), Paris times and links."""

from __future__ import annotations

import re
import uuid

import pytest
from mail_helpers import BIC, PUBLIC, STOREFRONT, CheckedRenderer, parts

from coc_notifications.adapters.rendering import Renderer
from coc_notifications.domain.model import MARKETING_TEMPLATES, TRANSACTIONAL_TEMPLATES
from coc_notifications.service_layer.sender import Sender
from coc_shared.catalogue import lookup
from coc_shared.envelope import Event
from coc_shared.testing import handle

NBSP = "\u00a0"
ADDRESS = "emilie.dupont@example.org"


def event(type_: str, data: dict | None = None, personal: dict | None = None) -> Event:
    spec = lookup(type_, 1)
    return Event(
        type=type_,
        version=1,
        producer=spec.producer,
        correlation_id=str(uuid.uuid4()),
        data={**spec.example_data, **(data or {})},
        personal=personal,
    )


def placed(order_id: str, method: str = "card", **data) -> Event:
    return event(
        "order.placed",
        {
            "order_id": order_id,
            "order_number": "COC-2026-000123",
            "payment_method": method,
            "total": {"amount_cents": 24900, "currency": "EUR"},
            "brand": "Peugeot",
            "documents_required": ["id_card", "registration_certificate"],
            **data,
        },
        {
            "first_name": "Émilie",
            "last_name": "Dupont-Lefèvre",
            "email": ADDRESS,
            "phone": "+33612345678",
            "shipping_address": {"line1": "1 rue de la Paix", "postal_code": "75002"},
        },
    )


def send_one(rt, smtp_server, *events):
    before = len(smtp_server.stored)
    for e in events:
        handle(rt, e)
    renderer = CheckedRenderer()  # the HTML as if the CSS were inlined into this very mail
    result = Sender(rt, renderer=renderer).send_due()
    assert result.failed == 0 and result.deferred == 0, result
    assert len(renderer.checked) == result.sent
    new = smtp_server.stored[before:]
    assert len(new) == result.sent
    return new[-1].message


def check_common(message, subject: str, to: str = ADDRESS):
    assert message["From"] == "COC <commandes@coc.example>"
    assert to in message["To"]
    assert message["Subject"] == subject
    assert re.fullmatch(
        r"<[0-9a-f-]{36}\.[a-z_]+\.[0-9a-f]{12}@coc\.example>", message["Message-ID"]
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None  # transactional: nothing of marketing
    plain, html = parts(message)
    assert "<style" not in html and 'style="' in html  # CSS inlined
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "désabonner" not in plain.lower() and "désabonner" not in html.lower()
    return plain, html


def order_mail(mailer, smtp_server, type_, data, method="card"):
    order_id = str(uuid.uuid4())
    handle(mailer, placed(order_id, method))
    message = send_one(mailer, smtp_server, event(type_, {"order_id": order_id, **data}))
    return order_id, message


def test_order_confirmation_by_card_lists_the_missing_documents_and_the_payment_link(
    mailer, smtp_server
):
    order_id = str(uuid.uuid4())
    message = send_one(mailer, smtp_server, placed(order_id, "card"))
    plain, html = check_common(message, "Votre commande COC-2026-000123 est enregistrée")
    assert plain.startswith("Bonjour Émilie,")
    assert f"Montant : 249,00{NBSP}€" in plain
    assert "pièce d'identité" in plain and "certificat d'immatriculation (carte grise)" in plain
    assert f"{STOREFRONT}/orders/{order_id}/documents" in plain
    assert f"{STOREFRONT}/orders/{order_id}/payment" in plain
    assert "IBAN" not in plain
    assert f'href="{STOREFRONT}/orders/{order_id}/documents"' in html
    assert "Dupont" not in plain + html and "+3361" not in plain + html  # only what it needs


def test_order_confirmation_by_transfer_gives_iban_bic_beneficiary_amount_and_rf_reference(
    mailer, smtp_server
):
    from coc_shared.transfer import creditor_reference, format_reference

    message = send_one(mailer, smtp_server, placed(str(uuid.uuid4()), "transfer"))
    plain, html = check_common(message, "Votre commande COC-2026-000123 est enregistrée")
    reference = format_reference(creditor_reference("COC-2026-000123"))
    assert reference == "RF73 COC2 0260 0012 3"
    for line in (
        "Bénéficiaire : COC SAS",
        "IBAN : FR76 3000 6000 0112 3456 7890 189",
        f"BIC : {BIC}",
        f"Montant : 249,00{NBSP}€",
        f"Référence : {reference}",
    ):
        assert line in plain, line
    assert "FR76 3000 6000 0112 3456 7890 189" in html and reference in html


PAYMENT = {
    "method": "card",
    "provider": "systempay",
    "provider_transaction_id": "8a1f2c",
    "amount": {"amount_cents": 124900, "currency": "EUR"},
}


@pytest.mark.parametrize(
    "type_,data,subject,phrases,link",
    [
        (
            "payment.confirmed",
            PAYMENT,
            "Paiement reçu pour votre commande COC-2026-000123",
            [f"paiement de 1\u202f249,00{NBSP}€ par carte bancaire"],
            "/orders/{id}",
        ),
        (
            "payment.failed",
            {"method": "paypal", "provider": "paypal", "reason": "DECLINED"},
            "Votre paiement n'a pas abouti (commande COC-2026-000123)",
            ["par PayPal", "aucun montant n'a été débité"],
            "/orders/{id}/payment",
        ),
        (
            "payment.duplicate_detected",
            {"provider": "paypal", "provider_transaction_id": "5TY", "amount": PAYMENT["amount"]},
            "Paiement en double pour votre commande COC-2026-000123 : nous le remboursons",
            [f"second paiement de 1\u202f249,00{NBSP}€"],
            None,
        ),
        (
            "documents.rejected_by_supplier",
            {
                "supplier": "psa-coc",
                "reason": "carte grise illisible",
                "documents_requested": ["registration_certificate", "purchase_invoice"],
            },
            "Documents à fournir pour votre commande COC-2026-000123",
            ["la facture d'achat du véhicule", "« carte grise illisible »"],
            "/orders/{id}/documents",
        ),
        (
            "documents.sent_to_supplier",
            {"supplier": "psa-coc", "supplier_request_id": "REQ-1"},
            "Votre demande de certificat est transmise au constructeur (commande COC-2026-000123)",
            ["transmis votre demande"],
            "/orders/{id}",
        ),
        (
            "certificate.received",
            {"supplier": "psa-coc", "certificate_document_id": "c3e9"},
            "Votre certificat de conformité est arrivé (commande COC-2026-000123)",
            ["le constructeur nous a remis votre certificat"],
            "/orders/{id}",
        ),
        (
            "certificate.shipped",
            {"carrier": "colissimo", "tracking_number": "6A12345678901"},
            "Votre certificat est en route (commande COC-2026-000123)",
            ["remis à Colissimo", "Numéro de suivi : 6A12345678901"],
            "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901",
        ),
        (
            "certificate.delivered",
            {
                "carrier": "colissimo",
                "tracking_number": "6A12345678901",
                "delivered_at": "2026-12-04T11:20:00+00:00",
            },
            "Votre certificat a été livré (commande COC-2026-000123)",
            [f"le 4{NBSP}décembre 2026 à 12{NBSP}h{NBSP}20"],  # Europe/Paris, UTC+1 in December
            "/orders/{id}",
        ),
        (
            "order.cancelled",
            {"reason": "changed my mind", "cancelled_by": "customer"},
            "Votre commande COC-2026-000123 est annulée",
            ["Comme vous l'avez demandé"],
            None,
        ),
        (
            "payment.refunded",
            {**PAYMENT, "kind": "refunded", "method": "card"},
            "Remboursement effectué (commande COC-2026-000123)",
            [f"Nous vous avons remboursé 1\u202f249,00{NBSP}€", "(carte bancaire)"],
            None,
        ),
        (
            "payment.refunded",
            {**PAYMENT, "kind": "reversed", "method": "card"},
            "Paiement annulé par votre banque (commande COC-2026-000123)",
            ["annulation (contestation) de votre paiement"],
            "/orders/{id}",
        ),
        (
            "invoice.issued",
            {
                "order_number": "COC-2026-000123",
                "number": "FA-00000042",
                "pdf_url": "https://pay.coc.example/i/FA-00000042.pdf",
            },
            "Votre facture FA-00000042 (commande COC-2026-000123)",
            [f"249,00{NBSP}€ TTC, dont TVA 41,50{NBSP}€"],
            "https://pay.coc.example/i/FA-00000042.pdf",
        ),
        (
            "refund.requested",
            {"method": "card", "amount": {"amount_cents": 24900, "currency": "EUR"}},
            f"Nous vous remboursons 249,00{NBSP}€ (commande COC-2026-000123)",
            ["lancé le remboursement", "(carte bancaire)"],
            None,
        ),
        (
            "refund.completed",
            {"method": "paypal", "amount": {"amount_cents": 24900, "currency": "EUR"}},
            f"Remboursement de 249,00{NBSP}€ effectué (commande COC-2026-000123)",
            ["est effectué (PayPal)"],
            None,
        ),
        (
            "refund.failed",
            {"amount": {"amount_cents": 24900, "currency": "EUR"}},
            "Votre remboursement prend du retard (commande COC-2026-000123)",
            ["Notre équipe s'en occupe"],
            None,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v and " " not in v else None,
)
def test_order_lifecycle_mails(mailer, smtp_server, type_, data, subject, phrases, link):
    order_id, message = order_mail(mailer, smtp_server, type_, data)
    plain, html = check_common(message, subject)
    assert plain.startswith("Bonjour Émilie,")
    for phrase in phrases:
        assert phrase in plain, (phrase, plain)
    if link:
        url = link.replace("{id}", order_id)
        url = url if url.startswith("http") else STOREFRONT + url
        assert url in plain and f'href="{url.replace("&", "&amp;")}"' in html


def test_email_change_confirmation_carries_the_link_with_its_token_in_the_fragment(
    mailer, smtp_server
):
    link = "https://shop.coc.example/v1/accounts/email-confirmation#token=tok-123"
    message = send_one(
        mailer,
        smtp_server,
        event(
            "account.email_change_requested",
            {"account_id": str(uuid.uuid4()), "expires_at": "2026-07-01T08:00:00+00:00"},
            {"email": "nouvelle@example.org", "confirmation_url": link},
        ),
    )
    plain, html = check_common(message, "Confirmez votre nouvelle adresse e-mail", "nouvelle@")
    assert link in plain and f'href="{link}"' in html
    assert f"valable jusqu'au 1er{NBSP}juillet 2026 à 10{NBSP}h{NBSP}00" in plain  # UTC+2


def test_email_change_to_an_address_in_use_warns_its_owner_and_asks_no_confirmation(
    mailer, smtp_server
):
    message = send_one(
        mailer,
        smtp_server,
        event(
            "account.email_change_requested",
            {"account_id": str(uuid.uuid4()), "address_in_use": True},
            {"email": "owner@example.org", "confirmation_url": "https://x.example/#token=t"},
        ),
    )
    plain, html = check_common(
        message, "Quelqu'un a demandé à utiliser votre adresse e-mail", "owner@"
    )
    assert "déjà celle d'un compte" in plain and "ignorez ce message" in plain
    assert "#token=" not in plain + html and "Confirmer" not in html
    assert f"{STOREFRONT}/login" in plain


def test_sign_up_attempt_tells_the_owner_to_log_in(mailer, smtp_server):
    message = send_one(
        mailer,
        smtp_server,
        event("account.sign_up_attempted", {"account_id": str(uuid.uuid4())}, {"email": ADDRESS}),
    )
    plain, html = check_common(message, "Vous avez déjà un compte COC")
    assert "Si c'était vous, connectez-vous" in plain and f'href="{STOREFRONT}/login"' in html


def test_account_deactivated_says_what_is_erased_and_what_is_retained_until_when(
    mailer, smtp_server
):
    message = send_one(
        mailer,
        smtp_server,
        event(
            "account.deactivated",
            {
                "account_id": str(uuid.uuid4()),
                "erased_at": "2026-12-01T10:00:00+00:00",
                "retained": [
                    {
                        "category": "invoices",
                        "legal_basis": "Code de commerce, art. L123-22",
                        "until": "2036-12-31",
                    }
                ],
            },
            {"email": ADDRESS, "first_name": "Émilie"},
        ),
    )
    plain, html = check_common(message, "Votre compte COC est supprimé")
    assert f"le 1er{NBSP}décembre 2026 à 11{NBSP}h{NBSP}00" in plain
    assert "nous avons effacé vos données personnelles" in plain
    assert f"Vos factures : Code de commerce, art. L123-22, jusqu'au 31{NBSP}décembre 2036" in plain


def test_account_deactivated_for_inactivity_says_so(mailer, smtp_server):
    message = send_one(
        mailer,
        smtp_server,
        event(
            "account.deactivated",
            {
                "account_id": str(uuid.uuid4()),
                "erased_at": "2026-12-01T10:00:00+00:00",
                "retained": [],
                "reason": "inactivity",
            },
            {"email": ADDRESS, "first_name": "Émilie"},
        ),
    )
    plain, html = check_common(message, "Votre compte COC est supprimé")
    assert "Comme annoncé, faute d'activité depuis deux ans, votre compte COC est supprimé" in plain
    assert "Comme vous l'avez demandé" not in plain
    assert "Nous ne conservons aucune donnée vous concernant." in plain


def test_inactivity_warning_says_when_the_account_goes_and_that_logging_in_keeps_it(
    mailer, smtp_server
):
    message = send_one(
        mailer,
        smtp_server,
        event(
            "account.inactivity_warning",
            {
                "account_id": str(uuid.uuid4()),
                "last_activity_at": "2025-01-02T10:00:00+00:00",
                "deletion_date": "2027-01-04",
                "warned_at": "2026-12-05T03:00:00+00:00",
            },
            {"email": ADDRESS, "first_name": "Émilie"},
        ),
    )
    plain, html = check_common(message, f"Votre compte COC sera supprimé le 4{NBSP}janvier 2027")
    assert "Bonjour Émilie" in plain
    assert f"Vous ne vous êtes pas servi de votre compte COC depuis le 2{NBSP}janvier 2025" in plain
    assert f"Votre compte sera supprimé le 4{NBSP}janvier 2027." in plain
    assert f"il suffit de vous connecter avant cette date :\r\n{STOREFRONT}/login" in plain
    assert f'href="{STOREFRONT}/login"' in html and "Me connecter" in html


def test_data_export_ready_gives_the_download_link(mailer, smtp_server):
    link = "https://shop.coc.example/account/export#token=exp-1"
    message = send_one(
        mailer,
        smtp_server,
        event(
            "account.data_export_ready",
            {"account_id": str(uuid.uuid4()), "expires_at": "2026-12-08T10:00:00+00:00"},
            {"email": ADDRESS, "download_url": link},
        ),
    )
    plain, html = check_common(message, "Vos données COC sont prêtes à être téléchargées")
    assert link in plain and f'href="{link}"' in html
    assert f"8{NBSP}décembre 2026 à 11{NBSP}h{NBSP}00" in plain


def test_every_template_is_covered_and_escapes_what_it_is_given():
    tested = {
        "order_confirmation",
        "payment_received",
        "payment_failed",
        "duplicate_payment_refund",
        "documents_requested",
        "documents_sent_to_supplier",
        "certificate_received",
        "certificate_shipped",
        "certificate_delivered",
        "order_cancelled",
        "payment_refunded",
        "email_change_confirmation",
        "email_address_in_use",
        "sign_up_attempted",
        "account_deactivated",
        "data_export_ready",
        "inactivity_warning",
        "invoice_issued",
        "refund_requested",
        "refund_completed",
        "refund_delayed",
    }
    assert tested == set(TRANSACTIONAL_TEMPLATES)
    assert MARKETING_TEMPLATES == ("newsletter",)  # test_marketing.py sends it
    rendered = Renderer().render(
        "documents_requested",
        "fr",
        {
            "data": {"documents_requested": ["other"], "reason": "<script>x</script> & co"},
            "links": {"storefront": STOREFRONT, "documents": f"{STOREFRONT}/d"},
            "order": {"order_number": "COC-1"},
            "first_name": "<b>Émilie</b>",
            "transfer": None,
        },
    )
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "&lt;b&gt;Émilie&lt;/b&gt;" in rendered.html
    assert "« <script>x</script> & co »" in rendered.text  # plain text is not HTML
    assert PUBLIC not in rendered.text


def test_a_message_reads_back_as_written_whatever_its_lines_and_header_words():
    import email
    import email.policy
    from email.headerregistry import Address

    from coc_notifications.adapters.rendering import Rendered, build_message

    subject = "Remboursement de 1\u202f249,00\u00a0€ effectué — commande COC-2026-000123 𝄞 " * 3
    text = "\n".join(
        [
            "plain line",
            "a = sign",
            ".",
            "..",
            "trailing space ",
            "tab\tinside",
            "x" * 75,
            "y" * 76,
            "é" * 40,
            "",
            "end",
        ]
    )
    raw = build_message(
        Rendered(subject=subject, text=text + "\n", html=f"<p>{text}</p>\n"),
        sender=Address("COC", "commandes", "coc.example"),
        to_address=ADDRESS,
        to_name="Émilie Dupont-Lefèvre de la Montagne-Sainte-Geneviève",
        message_id="<x@coc.example>",
    )
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))  # quoted-printable lines
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == subject.strip()
    assert message["To"].addresses[0].display_name.startswith("Émilie Dupont-Lefèvre")
    plain, html = (part.replace("\r\n", "\n") for part in parts(message))
    assert plain == text + "\n" and html == f"<p>{text}</p>\n"
