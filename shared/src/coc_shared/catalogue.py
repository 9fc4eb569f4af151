"""The event catalogue: every event type, its producer, its consumers and its versioned schemas.

This module is the source of truth; ``python -m coc_shared.catalogue_doc > docs/events.md``
renders it with an example per type, and ``shared/tests/test_catalogue_doc.py`` checks the
committed document against it.
``data`` holds what any consumer may read; ``personal`` holds personal data only, kept minimal,
and sealed on the wire with the data key of the event's subject (``keystore``: crypto-shredding);
its schemas here are of the opened part. Schemas tolerate unknown fields (``INCLUDE`` keeps
them on load) so a producer may add optional fields without breaking older consumers; a
change that breaks a consumer is a new version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from .envelope import Event


class TolerantSchema(Schema):
    class Meta:
        unknown = INCLUDE


class Money(TolerantSchema):
    amount_cents = fields.Integer(required=True, validate=validate.Range(min=0))
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))


PAYMENT_METHODS = ("card", "paypal", "transfer")


class OrderPlacedV1(TolerantSchema):
    order_id = fields.String(required=True)
    order_number = fields.String(required=True)
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    total = fields.Nested(Money, required=True)
    vat_rate = fields.String(load_default=None)
    # The VAT regime orders decided before payment, which the invoice states: standard (French
    # VAT included in the total) or reverse_charge (a business of another EU member state whose
    # VAT number VIES confirmed: no VAT, the total is net); and the VAT included in the total.
    vat_regime = fields.String(
        load_default="standard", validate=validate.OneOf(("standard", "reverse_charge"))
    )
    vat = fields.Nested(Money, load_default=None, allow_none=True)
    brand = fields.String(required=True)
    vin = fields.String(required=True)
    first_registration_date = fields.Date(required=True)
    documents_required = fields.List(fields.String(), load_default=list)
    marketing_consent = fields.Boolean(load_default=False)
    # the version of the consent text the storefront showed (null: the gdpr ledger's current one)
    marketing_consent_text_version = fields.String(load_default=None, allow_none=True)
    account_id = fields.String(load_default=None, allow_none=True)
    # SHA-256 of the order's access token (orders placed without an account), so that other
    # services can open the order for its holder without ever seeing the token itself.
    access_token_sha256 = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^[0-9a-f]{64}$")
    )
    # The brand's extra vehicle fields the customer filled in (e.g. BMW's type approval number),
    # which a maker's COC supplier may need; nothing personal.
    vehicle_extra = fields.Dict(
        keys=fields.String(), values=fields.String(), load_default=dict, allow_none=True
    )


class OrderPlacedPersonalV1(TolerantSchema):
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    email = fields.String(required=True)
    phone = fields.String(load_default=None, allow_none=True)
    shipping_address = fields.Dict(required=True)
    billing_address = fields.Dict(load_default=None, allow_none=True)
    company = fields.Dict(load_default=None, allow_none=True)


class CompletedDocument(TolerantSchema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    content_type = fields.String(load_default=None, allow_none=True)


class OrderDocumentsCompletedV1(TolerantSchema):
    order_id = fields.String(required=True)
    document_ids = fields.List(fields.String(), required=True)
    # the same documents with their kinds (a supplier is sent only the kinds it needs)
    documents = fields.List(fields.Nested(CompletedDocument), load_default=list)


class PaymentConfirmedV1(TolerantSchema):
    order_id = fields.String(required=True)
    order_number = fields.String(load_default=None)
    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    provider = fields.String(required=True)
    provider_transaction_id = fields.String(required=True)
    amount = fields.Nested(Money, required=True)


class PaymentFailedV1(TolerantSchema):
    order_id = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    provider = fields.String(required=True)
    reason = fields.String(required=True)
    provider_transaction_id = fields.String(load_default=None, allow_none=True)


class PaymentDuplicateDetectedV1(TolerantSchema):
    order_id = fields.String(required=True)
    method = fields.String(load_default=None, validate=validate.OneOf(PAYMENT_METHODS))
    provider = fields.String(required=True)
    provider_transaction_id = fields.String(required=True)
    amount = fields.Nested(Money, required=True)


class PaymentRefundedV1(TolerantSchema):
    order_id = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    provider = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("refunded", "reversed")))
    provider_transaction_id = fields.String(required=True)
    amount = fields.Nested(Money, required=True)


class DocumentsSentToSupplierV1(TolerantSchema):
    order_id = fields.String(required=True)
    supplier = fields.String(required=True)
    supplier_request_id = fields.String(required=True)
    document_ids = fields.List(fields.String(), load_default=list)


class CertificateReceivedV1(TolerantSchema):
    order_id = fields.String(required=True)
    supplier = fields.String(required=True)
    certificate_document_id = fields.String(required=True)
    # true: the supplier issued the certificate on paper only (posted), there is no PDF to download
    original_posted = fields.Boolean(load_default=False)


class CertificateShippedV1(TolerantSchema):
    order_id = fields.String(required=True)
    carrier = fields.String(required=True)
    tracking_number = fields.String(required=True)
    tracking_url = fields.String(load_default=None, allow_none=True)
    # who handed it to the carrier: the supplier itself, or this company
    shipped_by = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(("supplier", "company"))
    )


class CertificateDeliveredV1(TolerantSchema):
    order_id = fields.String(required=True)
    carrier = fields.String(required=True)
    tracking_number = fields.String(required=True)
    delivered_at = fields.AwareDateTime(required=True)


class SupplierRequestAcceptedV1(TolerantSchema):
    order_id = fields.String(required=True)
    supplier = fields.String(required=True)
    supplier_request_id = fields.String(required=True)
    accepted_at = fields.AwareDateTime(required=True)


class SupplierRequestOverdueV1(TolerantSchema):
    order_id = fields.String(required=True)
    supplier = fields.String(required=True)
    supplier_request_id = fields.String(required=True)
    due_at = fields.AwareDateTime(required=True)
    status = fields.String(required=True)  # what the request was waiting for when it fell due


STUCK_STATES = (
    "unpaid",
    "payment_failed",
    "awaiting_documents",
    "not_sent_to_supplier",
    "supplier_rejected",
    "supplier_late",
    "not_shipped",
    "not_delivered",
)


class OrderStuckV1(TolerantSchema):
    # an order past its state's deadline (coc_orders.domain.stuck); nothing personal
    order_id = fields.String(required=True)
    order_number = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(STUCK_STATES))
    status = fields.String(required=True)  # the order's status (a state is a status and a check)
    since = fields.AwareDateTime(required=True)  # when the order entered the state
    deadline = fields.AwareDateTime(required=True)  # when it should have left it


class AccountSignUpAttemptedV1(TolerantSchema):
    account_id = fields.String(required=True)  # the account that already has the address
    attempted_at = fields.AwareDateTime(required=True)


class AccountSignUpAttemptedPersonalV1(TolerantSchema):
    email = fields.String(required=True)


class OrderCancelledV1(TolerantSchema):
    order_id = fields.String(required=True)
    reason = fields.String(required=True)
    cancelled_by = fields.String(required=True, validate=validate.OneOf(("customer", "staff")))


class DocumentsRejectedBySupplierV1(TolerantSchema):
    order_id = fields.String(required=True)
    supplier = fields.String(required=True)
    reason = fields.String(required=True)
    documents_requested = fields.List(fields.String(), required=True)


class AccountEmailChangeRequestedV1(TolerantSchema):
    account_id = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)


class AccountEmailChangeRequestedPersonalV1(TolerantSchema):
    # The new address, to which the confirmation link is sent; the link holds a one-time token.
    email = fields.String(required=True)
    confirmation_url = fields.String(required=True)


DEACTIVATION_REASONS = ("customer_request", "inactivity")


class AccountInactivityWarningV1(TolerantSchema):
    account_id = fields.String(required=True)
    last_activity_at = fields.AwareDateTime(required=True)
    # the account is deleted on this day unless its owner logs in before
    deletion_date = fields.Date(required=True)
    warned_at = fields.AwareDateTime(required=True)


class AccountInactivityWarningPersonalV1(TolerantSchema):
    email = fields.String(required=True)
    first_name = fields.String(load_default=None, allow_none=True)


class AccountDeactivationRequestedV1(TolerantSchema):
    account_id = fields.String(required=True)  # a guest's request: the order's id (its subject)
    requested_at = fields.AwareDateTime(required=True)
    # a guest's request (the order's access token): the order whose data is erased
    guest_order_id = fields.String(load_default=None, allow_none=True)
    # why: the customer's own request (absent) or two years without activity (``inactivity``)
    reason = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(DEACTIVATION_REASONS)
    )


class AccountDeactivationRequestedPersonalV1(TolerantSchema):
    # Where the gdpr service sends the summary of the erasure once every service has reported:
    # it keeps them only until then.
    email = fields.String(required=True)
    first_name = fields.String(load_default=None, allow_none=True)


class RetainedV1(Schema):
    category = fields.String(required=True)
    legal_basis = fields.String(required=True)
    until = fields.Date(required=True)


class ErasedV1(Schema):
    category = fields.String(required=True)
    count = fields.Integer(required=True, validate=validate.Range(min=0))


class AccountErasureRequestedV1(TolerantSchema):
    request_id = fields.String(required=True)  # the id of the account.deactivation_requested
    account_id = fields.String(required=True)
    requested_at = fields.AwareDateTime(required=True)
    # a guest's order (no account): each service erases it as the account ``account_id``
    order_ids = fields.List(fields.String(), load_default=list)


class AccountErasureReportedV1(TolerantSchema):
    request_id = fields.String(required=True)
    account_id = fields.String(required=True)
    service = fields.String(required=True)
    erased = fields.List(fields.Nested(ErasedV1), load_default=list)
    retained = fields.List(fields.Nested(RetainedV1), load_default=list)


class AccountDeactivatedV1(TolerantSchema):
    account_id = fields.String(required=True)
    erased_at = fields.AwareDateTime(required=True)
    retained = fields.List(
        fields.Dict(), load_default=list
    )  # [{"category", "legal_basis", "until"}]
    erased = fields.List(fields.Dict(), load_default=list)  # [{"service", "category", "count"}]
    reason = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(DEACTIVATION_REASONS)
    )


class AccountDeactivatedPersonalV1(TolerantSchema):
    # Where the confirmation of the erasure goes (optional: without it, the account's last known
    # address); nothing else.
    email = fields.String(required=True)
    first_name = fields.String(load_default=None, allow_none=True)


class AccountDataExportReadyV1(TolerantSchema):
    # the account exported, or null for a guest's export of an order (then ``order_id``)
    account_id = fields.String(load_default=None, allow_none=True)
    order_id = fields.String(load_default=None, allow_none=True)
    expires_at = fields.AwareDateTime(required=True)


class AccountDataExportRequestedV1(TolerantSchema):
    # whose data: an account (with its orders), or a guest's order (account_id null)
    account_id = fields.String(load_default=None, allow_none=True)
    order_id = fields.String(load_default=None, allow_none=True)
    order_ids = fields.List(fields.String(), load_default=list)
    requested_at = fields.AwareDateTime(required=True)


class AccountDataExportRequestedPersonalV1(TolerantSchema):
    # where the download link goes once the export is ready (kept by gdpr until then)
    email = fields.String(required=True)
    first_name = fields.String(load_default=None, allow_none=True)


class AccountExportRequestedV1(TolerantSchema):
    request_id = fields.String(required=True)  # the id of the account.data_export_requested
    account_id = fields.String(load_default=None, allow_none=True)
    order_ids = fields.List(fields.String(), load_default=list)
    requested_at = fields.AwareDateTime(required=True)


class AccountExportContributedV1(TolerantSchema):
    request_id = fields.String(required=True)
    service = fields.String(required=True)
    categories = fields.List(fields.String(), load_default=list)  # those it holds data of


class AccountExportContributedPersonalV1(TolerantSchema):
    # the service's data of the subject: {category of the retention schedule: [records]}
    data = fields.Dict(keys=fields.String(), required=True)


class AccountDataExportReadyPersonalV1(TolerantSchema):
    email = fields.String(required=True)
    download_url = fields.String(required=True)  # holds a one-time token


CONSENT_PURPOSES = ("marketing_email",)
CONSENT_CHANNELS = ("order_form", "account_sign_up", "account_settings", "one_click")


class AccountMarketingChoiceMadeV1(TolerantSchema):
    account_id = fields.String(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf(CONSENT_PURPOSES))
    given = fields.Boolean(required=True)  # true: consent given; false: withdrawn
    channel = fields.String(required=True, validate=validate.OneOf(CONSENT_CHANNELS))
    text_version = fields.String(load_default=None, allow_none=True)
    at = fields.AwareDateTime(required=True)


class ConsentEmailPersonalV1(TolerantSchema):
    email = fields.String(required=True)  # the address the consent is about


class ConsentGivenV1(TolerantSchema):
    consent_id = fields.String(required=True)  # the ledger's record
    account_id = fields.String(load_default=None, allow_none=True)
    order_id = fields.String(load_default=None, allow_none=True)
    purpose = fields.String(required=True, validate=validate.OneOf(CONSENT_PURPOSES))
    channel = fields.String(required=True, validate=validate.OneOf(CONSENT_CHANNELS))
    text_version = fields.String(required=True)
    given_at = fields.AwareDateTime(required=True)


class ConsentWithdrawnV1(TolerantSchema):
    consent_id = fields.String(required=True)  # the ledger's record of the withdrawal
    account_id = fields.String(load_default=None, allow_none=True)
    purpose = fields.String(required=True, validate=validate.OneOf(CONSENT_PURPOSES))
    channel = fields.String(required=True, validate=validate.OneOf(CONSENT_CHANNELS))
    withdrawn_at = fields.AwareDateTime(required=True)


class MarketingUnsubscribedV1(TolerantSchema):
    contact_id = fields.String(required=True)
    account_id = fields.String(load_default=None, allow_none=True)
    purpose = fields.String(required=True, validate=validate.OneOf(("marketing_email",)))
    withdrawn_at = fields.AwareDateTime(required=True)
    source = fields.String(required=True, validate=validate.OneOf(("one_click",)))


class MarketingUnsubscribedPersonalV1(TolerantSchema):
    email = fields.String(required=True)  # the address whose consent is withdrawn


class InvoiceIssuedV1(TolerantSchema):
    order_id = fields.String(required=True)
    order_number = fields.String(load_default=None)
    kind = fields.String(required=True, validate=validate.OneOf(("invoice", "credit_note")))
    number = fields.String(required=True)
    issued_at = fields.AwareDateTime(required=True)
    total = fields.Nested(Money, required=True)
    vat = fields.Nested(Money, required=True)
    vat_regime = fields.String(
        required=True, validate=validate.OneOf(("standard", "reverse_charge"))
    )
    business = fields.Boolean(load_default=False)
    pdf_url = fields.String(required=True)  # opened with the order's token or the owner's token
    list_url = fields.String(required=True)
    resent = fields.Boolean(load_default=False)  # a staff member sent it again


REFUND_REASONS = ("cancelled_after_payment", "duplicate_payment", "supplier_unable")


class RefundRequestedV1(TolerantSchema):
    order_id = fields.String(required=True)
    refund_id = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(REFUND_REASONS))
    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    provider = fields.String(required=True)
    provider_transaction_id = fields.String(required=True)
    amount = fields.Nested(Money, required=True)
    credit_note_number = fields.String(load_default=None, allow_none=True)


class RefundCompletedV1(TolerantSchema):
    order_id = fields.String(required=True)
    refund_id = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    provider = fields.String(required=True)
    provider_refund_id = fields.String(load_default=None, allow_none=True)
    amount = fields.Nested(Money, required=True)


class RefundFailedV1(TolerantSchema):
    order_id = fields.String(required=True)
    refund_id = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    provider = fields.String(required=True)
    reason = fields.String(required=True)
    amount = fields.Nested(Money, required=True)


@dataclass(frozen=True)
class EventType:
    type: str
    version: int
    producer: str
    consumers: tuple[str, ...]
    data_schema: type[Schema]
    personal_schema: type[Schema] | None
    description: str
    example_data: dict = field(default_factory=dict)
    example_personal: dict | None = None


_CATALOGUE: dict[tuple[str, int], EventType] = {}


def register(event_type: EventType) -> EventType:
    _CATALOGUE[(event_type.type, event_type.version)] = event_type
    return event_type


def lookup(type_: str, version: int) -> EventType:
    try:
        return _CATALOGUE[(type_, version)]
    except KeyError:
        raise UnknownEventType(f"no schema for event type {type_!r} version {version}") from None


def all_event_types() -> list[EventType]:
    return sorted(_CATALOGUE.values(), key=lambda e: (e.type, e.version))


class UnknownEventType(Exception):
    """No schema is registered for this (type, version): the message cannot be handled."""


class SchemaViolation(Exception):
    """An event's data or personal part does not match its schema: retrying cannot help."""


_INSTANCES: dict[tuple[str, int], tuple[Schema, Schema | None]] = {}


def _schema_instances(spec: EventType) -> tuple[Schema, Schema | None]:
    """One schema instance per type (building one costs more than loading with it)."""
    key = (spec.type, spec.version)
    cached = _INSTANCES.get(key)
    if cached is None or cached[0].__class__ is not spec.data_schema:
        cached = (spec.data_schema(), spec.personal_schema() if spec.personal_schema else None)
        _INSTANCES[key] = cached
    return cached


def validate_event(event: Event) -> Event:
    """Check data/personal against the registered schema; returns the event with loaded values."""
    spec = lookup(event.type, event.version)
    data_schema, personal_schema = _schema_instances(spec)
    try:
        data_schema.load(event.data)
        if personal_schema is not None and event.personal is not None:
            personal_schema.load(event.personal)
        elif spec.personal_schema is None and event.personal:
            raise ValidationError({"personal": ["this event type carries no personal data"]})
    except ValidationError as exc:
        raise SchemaViolation(f"{event.type} v{event.version}: {exc.messages}") from exc
    return event


_ORDER = "0b9f4c1e-4a8e-4c5e-9a57-2f3d8c1e7a10"
_ACCOUNT = "5d1c3a20-7f0b-4b9e-8a3d-1c2e3f4a5b6c"

register(
    EventType(
        "order.placed",
        1,
        "orders",
        ("payments", "notifications", "supplier-gateway", "gdpr"),
        OrderPlacedV1,
        OrderPlacedPersonalV1,
        "A customer placed an order; payment is due.",
        {
            "order_id": _ORDER,
            "order_number": "COC-2026-000123",
            "payment_method": "card",
            "total": {"amount_cents": 24900, "currency": "EUR"},
            "vat_rate": "20.0",
            "vat_regime": "standard",
            "vat": {"amount_cents": 4150, "currency": "EUR"},
            "brand": "Peugeot",
            "vin": "VF3ABCDEF12345678",
            "first_registration_date": "2019-05-14",
            "documents_required": ["id_card", "registration_certificate"],
            "marketing_consent": False,
            "account_id": None,
            "access_token_sha256": (
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b4b0b822cd15d6c15b0f00a08"
            ),
            "vehicle_extra": {},
        },
        {
            "first_name": "Émilie",
            "last_name": "Dupont-Lefèvre",
            "email": "emilie@example.org",
            "phone": "+33612345678",
            "shipping_address": {
                "line1": "1 rue de la Paix",
                "postal_code": "75002",
                "city": "Paris",
                "country": "FR",
            },
        },
    )
)
register(
    EventType(
        "order.stuck",
        1,
        "orders",
        ("orders",),
        OrderStuckV1,
        None,
        "The order stayed in a state past its deadline (the orders service's deadlines file); "
        "reported once per order and state. Orders records it in the order's timeline.",
        {
            "order_id": _ORDER,
            "order_number": "COC-2026-000123",
            "state": "awaiting_documents",
            "status": "paid",
            "since": "2026-03-01T10:00:00+00:00",
            "deadline": "2026-03-03T10:00:00+00:00",
        },
    )
)
register(
    EventType(
        "order.documents_completed",
        1,
        "orders",
        ("supplier-gateway",),
        OrderDocumentsCompletedV1,
        None,
        "Every document the order requires has been uploaded.",
        {
            "order_id": _ORDER,
            "document_ids": ["d1f0...-id-card", "a7c2...-registration"],
            "documents": [
                {"id": "d1f0...-id-card", "kind": "id_card", "content_type": "application/pdf"},
                {
                    "id": "a7c2...-registration",
                    "kind": "registration_certificate",
                    "content_type": "image/jpeg",
                },
            ],
        },
    )
)
register(
    EventType(
        "payment.confirmed",
        1,
        "payments",
        ("orders", "supplier-gateway", "notifications", "payments"),
        PaymentConfirmedV1,
        None,
        "A payment was confirmed by the provider's server-to-server callback (at most once per "
        "order). Payments itself issues the order's invoice on it.",
        {
            "order_id": _ORDER,
            "order_number": "COC-2026-000123",
            "method": "card",
            "provider": "systempay",
            "provider_transaction_id": "8a1f2c...",
            "amount": {"amount_cents": 24900, "currency": "EUR"},
        },
    )
)
register(
    EventType(
        "payment.failed",
        1,
        "payments",
        ("orders", "notifications"),
        PaymentFailedV1,
        None,
        "A payment attempt failed; the customer may pay again.",
        {"order_id": _ORDER, "method": "card", "provider": "systempay", "reason": "REFUSED"},
    )
)
register(
    EventType(
        "payment.duplicate_detected",
        1,
        "payments",
        ("notifications",),
        PaymentDuplicateDetectedV1,
        None,
        "A second successful payment arrived for an order already paid; it is to be refunded.",
        {
            "order_id": _ORDER,
            "provider": "paypal",
            "provider_transaction_id": "5TY05013RG002845M",
            "amount": {"amount_cents": 24900, "currency": "EUR"},
        },
    )
)
register(
    EventType(
        "payment.refunded",
        1,
        "payments",
        ("orders", "notifications"),
        PaymentRefundedV1,
        None,
        "The provider refunded or reversed (charge-back) a captured payment.",
        {
            "order_id": _ORDER,
            "method": "paypal",
            "provider": "paypal",
            "kind": "refunded",
            "provider_transaction_id": "5TY05013RG002845M",
            "amount": {"amount_cents": 24900, "currency": "EUR"},
        },
    )
)
register(
    EventType(
        "documents.sent_to_supplier",
        1,
        "supplier-gateway",
        ("orders", "notifications"),
        DocumentsSentToSupplierV1,
        None,
        "The request and its documents were handed to the maker's COC supplier.",
        {
            "order_id": _ORDER,
            "supplier": "psa-coc",
            "supplier_request_id": "REQ-778812",
            "document_ids": ["d1f0...-id-card", "a7c2...-registration"],
        },
    )
)
register(
    EventType(
        "certificate.received",
        1,
        "supplier-gateway",
        ("orders", "notifications"),
        CertificateReceivedV1,
        None,
        "The supplier delivered the certificate.",
        {
            "order_id": _ORDER,
            "supplier": "psa-coc",
            "certificate_document_id": "c3e9...-certificate",
            "original_posted": False,
        },
    )
)
register(
    EventType(
        "certificate.shipped",
        1,
        "supplier-gateway",
        ("orders", "notifications"),
        CertificateShippedV1,
        None,
        "The certificate was handed to the carrier.",
        {
            "order_id": _ORDER,
            "carrier": "colissimo",
            "tracking_number": "6A12345678901",
            "tracking_url": "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901",
            "shipped_by": "company",
        },
    )
)
register(
    EventType(
        "certificate.delivered",
        1,
        "supplier-gateway",
        ("orders", "notifications"),
        CertificateDeliveredV1,
        None,
        "The carrier delivered the certificate to the customer (from its tracking).",
        {
            "order_id": _ORDER,
            "carrier": "colissimo",
            "tracking_number": "6A12345678901",
            "delivered_at": "2026-12-04T11:20:00+00:00",
        },
    )
)
register(
    EventType(
        "supplier.request_accepted",
        1,
        "supplier-gateway",
        ("orders",),
        SupplierRequestAcceptedV1,
        None,
        "The supplier accepted the request: it works on the certificate (its `accepted` reply).",
        {
            "order_id": _ORDER,
            "supplier": "psa-coc",
            "supplier_request_id": "REQ-778812",
            "accepted_at": "2026-11-28T09:15:00+00:00",
        },
    )
)
register(
    EventType(
        "supplier.request_overdue",
        1,
        "supplier-gateway",
        ("orders",),
        SupplierRequestOverdueV1,
        None,
        "A supplier request passed the due time its supplier promises, without an answer that ends "
        "it (announced once per request).",
        {
            "order_id": _ORDER,
            "supplier": "psa-coc",
            "supplier_request_id": "REQ-778812",
            "due_at": "2026-12-02T10:00:00+00:00",
            "status": "sent",
        },
    )
)
register(
    EventType(
        "account.sign_up_attempted",
        1,
        "orders",
        ("notifications",),
        AccountSignUpAttemptedV1,
        AccountSignUpAttemptedPersonalV1,
        "Someone tried to create an account with an address that already has one: its owner is "
        "told (the sign-up itself answers as any other, so it reveals nothing).",
        {"account_id": _ACCOUNT, "attempted_at": "2026-11-27T10:00:00+00:00"},
        {"email": "emilie@example.org"},
    )
)
register(
    EventType(
        "order.cancelled",
        1,
        "orders",
        ("payments", "notifications", "supplier-gateway"),
        OrderCancelledV1,
        None,
        "The order was cancelled (only possible before it was sent to the supplier).",
        {"order_id": _ORDER, "reason": "customer changed their mind", "cancelled_by": "customer"},
    )
)
register(
    EventType(
        "documents.rejected_by_supplier",
        1,
        "supplier-gateway",
        ("orders", "notifications"),
        DocumentsRejectedBySupplierV1,
        None,
        "The supplier refused the request and asks for more or better documents.",
        {
            "order_id": _ORDER,
            "supplier": "psa-coc",
            "reason": "registration certificate unreadable",
            "documents_requested": ["registration_certificate"],
        },
    )
)
register(
    EventType(
        "account.email_change_requested",
        1,
        "orders",
        ("notifications",),
        AccountEmailChangeRequestedV1,
        AccountEmailChangeRequestedPersonalV1,
        "A customer asked to change their e-mail address; the new address must confirm it through "
        "the link.",
        {"account_id": _ACCOUNT, "expires_at": "2026-11-28T10:00:00+00:00"},
        {
            "email": "new.address@example.org",
            "confirmation_url": "https://coc.example/v1/accounts/email-confirmation?token=...",
        },
    )
)
register(
    EventType(
        "account.deactivation_requested",
        1,
        "orders",
        ("gdpr",),
        AccountDeactivationRequestedV1,
        AccountDeactivationRequestedPersonalV1,
        "A customer asked for their account to be deactivated, or it stayed two years without "
        "activity after its owner was warned (``reason``: inactivity): log-in is refused from now "
        "on, and the gdpr service has every service erase it.",
        {"account_id": _ACCOUNT, "requested_at": "2026-11-27T10:00:00+00:00"},
        {"email": "emilie@example.org", "first_name": "Émilie"},
    )
)
register(
    EventType(
        "account.inactivity_warning",
        1,
        "orders",
        ("notifications",),
        AccountInactivityWarningV1,
        AccountInactivityWarningPersonalV1,
        "An account nearly two years without activity (a purge run of the schedule found it): its "
        "owner is mailed once that it is deleted on the date given unless they log in before.",
        {
            "account_id": _ACCOUNT,
            "last_activity_at": "2025-01-02T10:00:00+00:00",
            "deletion_date": "2027-01-04",
            "warned_at": "2026-12-05T03:00:00+00:00",
        },
        {"email": "emilie@example.org", "first_name": "Émilie"},
    )
)
# The services that hold data of an account: each erases its own on account.erasure_requested
# and reports what it erased and what a legal obligation makes it keep (one event type each, so
# that the broker lets each service report for itself only).
ERASING_SERVICES = ("orders", "payments", "supplier-gateway", "notifications")


def erasure_report_type(service: str) -> str:
    return f"account.erasure_reported.{service.replace('-', '_')}"  # event types have no hyphen


class InactivityCutoffsV1(TolerantSchema):
    category = fields.String(required=True)  # the schedule's category (account)
    warn_before = fields.Date(required=True)  # last activity before: warned (not yet warned)
    deactivate_before = fields.Date(required=True)  # last activity before: deactivated ...
    warned_before = fields.Date(required=True)  # ... when warned before this day
    deletion_date = fields.Date(required=True)  # what the warning of this run announces


class PurgeRequestedV1(TolerantSchema):
    run_id = fields.String(required=True)
    requested_at = fields.AwareDateTime(required=True)
    # category of the retention schedule -> the day before which its data has reached its end
    cutoffs = fields.Dict(keys=fields.String(), values=fields.Date(), required=True)
    # accounts without activity (the schedule's account category and its warning period)
    inactivity = fields.Nested(InactivityCutoffsV1, load_default=None, allow_none=True)


class PurgedV1(TolerantSchema):
    run_id = fields.String(required=True)
    service = fields.String(required=True)
    purged = fields.List(fields.Nested(ErasedV1), load_default=list)


def purge_report_type(service: str) -> str:
    return f"retention.purged.{service.replace('-', '_')}"


register(
    EventType(
        "retention.purge_requested",
        1,
        "gdpr",
        ERASING_SERVICES,
        PurgeRequestedV1,
        None,
        "A purge run of the retention schedule: each service deletes, anonymises or pseudonymises "
        "its own data of each category older than the category's cutoff, and reports how much; "
        "orders warns the owners of accounts nearly without activity for the account's duration "
        "and deactivates those warned long enough before (``inactivity``).",
        {
            "run_id": "5f0e8a52-7d1c-4c1b-9e55-2f7b9d0c6a01",
            "requested_at": "2026-12-05T03:00:00+00:00",
            "cutoffs": {"provider_callbacks": "2025-11-05", "order_client_traces": "2026-09-06"},
            "inactivity": {
                "category": "account",
                "warn_before": "2025-01-04",
                "deactivate_before": "2024-12-05",
                "warned_before": "2026-11-05",
                "deletion_date": "2027-01-04",
            },
        },
    )
)
for _service in ERASING_SERVICES:
    register(
        EventType(
            purge_report_type(_service),
            1,
            _service,
            ("gdpr",),
            PurgedV1,
            None,
            f"What a purge run removed from the {_service} service (rows per category).",
            {
                "run_id": "5f0e8a52-7d1c-4c1b-9e55-2f7b9d0c6a01",
                "service": _service,
                "purged": [{"category": "provider_callbacks", "count": 12}],
            },
        )
    )
register(
    EventType(
        "account.erasure_requested",
        1,
        "gdpr",
        ERASING_SERVICES,
        AccountErasureRequestedV1,
        None,
        "The gdpr service asks every service to erase what it holds of an account (a deactivation "
        "request), keeping only what its retention schedule says a legal obligation keeps.",
        {
            "request_id": "0b7a4f7e-3c55-4f0e-9a53-0d4f0c4f2a11",
            "account_id": _ACCOUNT,
            "requested_at": "2026-11-27T10:00:00+00:00",
        },
    )
)
for _service in ERASING_SERVICES:
    register(
        EventType(
            erasure_report_type(_service),
            1,
            _service,
            ("gdpr",),
            AccountErasureReportedV1,
            None,
            f"What the {_service} service erased of an account (rows per category) and what it "
            "keeps, with the legal basis and until when.",
            {
                "request_id": "0b7a4f7e-3c55-4f0e-9a53-0d4f0c4f2a11",
                "account_id": _ACCOUNT,
                "service": _service,
                "erased": [{"category": "account", "count": 1}],
                "retained": [
                    {
                        "category": "invoices",
                        "legal_basis": "Code de commerce L123-22",
                        "until": "2036-12-31",
                    }
                ],
            },
        )
    )
register(
    EventType(
        "account.deactivated",
        1,
        "gdpr",
        ("notifications",),
        AccountDeactivatedV1,
        AccountDeactivatedPersonalV1,
        "Every service reported the erasure of the account: its personal data is erased, except "
        "what a legal obligation keeps (listed with its end date); its owner is mailed this "
        "summary.",
        {
            "account_id": _ACCOUNT,
            "erased_at": "2026-12-01T10:00:00+00:00",
            "erased": [{"service": "orders", "category": "account", "count": 1}],
            "retained": [
                {
                    "category": "invoices",
                    "legal_basis": "Code de commerce L123-22",
                    "until": "2036-12-31",
                }
            ],
        },
        {"email": "emilie@example.org", "first_name": "Émilie"},
    )
)

register(
    EventType(
        "account.data_export_ready",
        1,
        "gdpr",
        ("notifications",),
        AccountDataExportReadyV1,
        AccountDataExportReadyPersonalV1,
        "The export of an account's personal data is ready: its owner is mailed the download "
        "link, which works until it expires.",
        {"account_id": _ACCOUNT, "expires_at": "2026-12-08T10:00:00+00:00"},
        {
            "email": "emilie@example.org",
            "download_url": "https://coc.example/account/export#token=...",
        },
    )
)
register(
    EventType(
        "account.data_export_requested",
        1,
        "orders",
        ("gdpr",),
        AccountDataExportRequestedV1,
        AccountDataExportRequestedPersonalV1,
        "A customer (or a guest, with the order's access token) asked for a copy of their personal "
        "data (GDPR 15 and 20): the gdpr service has every service contribute and mails the link.",
        {
            "account_id": _ACCOUNT,
            "order_id": None,
            "order_ids": [_ORDER],
            "requested_at": "2026-12-05T10:00:00+00:00",
        },
        {"email": "emilie@example.org", "first_name": "Émilie"},
    )
)


def export_contribution_type(service: str) -> str:
    return f"account.export_contributed.{service.replace('-', '_')}"


register(
    EventType(
        "account.export_requested",
        1,
        "gdpr",
        ERASING_SERVICES,
        AccountExportRequestedV1,
        None,
        "The gdpr service asks every service for its data of an account (or of a guest's order) "
        "for the export the customer asked for.",
        {
            "request_id": "6d1e0c1a-0b8f-4a57-8f0e-3f9b1a2c4d5e",
            "account_id": _ACCOUNT,
            "order_ids": [_ORDER],
            "requested_at": "2026-12-05T10:00:00+00:00",
        },
    )
)
for _service in ERASING_SERVICES:
    register(
        EventType(
            export_contribution_type(_service),
            1,
            _service,
            ("gdpr",),
            AccountExportContributedV1,
            AccountExportContributedPersonalV1,
            f"The {_service} service's data of the subject of an export, per category of the "
            "retention schedule (personal: it travels in the personal part only).",
            {
                "request_id": "6d1e0c1a-0b8f-4a57-8f0e-3f9b1a2c4d5e",
                "service": _service,
                "categories": ["order_customer"],
            },
            {"data": {"order_customer": [{"order_id": _ORDER, "last_name": "Martin"}]}},
        )
    )
register(
    EventType(
        "marketing.unsubscribed",
        1,
        "notifications",
        ("gdpr",),
        MarketingUnsubscribedV1,
        MarketingUnsubscribedPersonalV1,
        "A contact withdrew their consent to marketing mails (the one-click unsubscribe of a "
        "marketing mail): at once and for good.",
        {
            "contact_id": "8e0c2f7a-1b3d-4e5f-9a6b-7c8d9e0f1a2b",
            "account_id": _ACCOUNT,
            "purpose": "marketing_email",
            "withdrawn_at": "2026-12-10T09:30:00+00:00",
            "source": "one_click",
        },
        {"email": "emilie@example.org"},
    )
)

register(
    EventType(
        "account.marketing_choice_made",
        1,
        "orders",
        ("gdpr",),
        AccountMarketingChoiceMadeV1,
        ConsentEmailPersonalV1,
        "A customer chose to receive marketing mails (or no longer to) when creating their account "
        "or in its settings: the gdpr service's consent ledger records it.",
        {
            "account_id": _ACCOUNT,
            "purpose": "marketing_email",
            "given": True,
            "channel": "account_sign_up",
            "text_version": "2026-12-05",
            "at": "2026-11-27T10:00:00+00:00",
        },
        {"email": "emilie@example.org"},
    )
)
register(
    EventType(
        "consent.given",
        1,
        "gdpr",
        ("notifications",),
        ConsentGivenV1,
        ConsentEmailPersonalV1,
        "The consent ledger recorded a consent to marketing mails (when, through which channel, "
        "to which version of the text): the address may receive them until it is withdrawn.",
        {
            "consent_id": "1c9a5e2b-7d4f-4a8e-b3c6-0f2e1d4c5b6a",
            "account_id": _ACCOUNT,
            "order_id": None,
            "purpose": "marketing_email",
            "channel": "order_form",
            "text_version": "2026-12-05",
            "given_at": "2026-11-27T10:00:00+00:00",
        },
        {"email": "emilie@example.org"},
    )
)
register(
    EventType(
        "consent.withdrawn",
        1,
        "gdpr",
        ("notifications",),
        ConsentWithdrawnV1,
        ConsentEmailPersonalV1,
        "The consent ledger recorded a withdrawal of consent to marketing mails: none is sent to "
        "the address from now on.",
        {
            "consent_id": "4e8b2a6c-1d3f-4b5a-9c7e-2f0d1a3b5c7e",
            "account_id": _ACCOUNT,
            "purpose": "marketing_email",
            "channel": "one_click",
            "withdrawn_at": "2026-12-10T09:30:00+00:00",
        },
        {"email": "emilie@example.org"},
    )
)
register(
    EventType(
        "invoice.issued",
        1,
        "payments",
        ("notifications", "orders"),
        InvoiceIssuedV1,
        None,
        "An invoice (on payment) or a credit note (on a refund) was issued, or sent again by "
        "staff (`resent`): the customer is told where to download it.",
        {
            "order_id": _ORDER,
            "order_number": "COC-2026-000123",
            "kind": "invoice",
            "number": "FA-00000042",
            "issued_at": "2026-11-27T10:05:00+00:00",
            "total": {"amount_cents": 24900, "currency": "EUR"},
            "vat": {"amount_cents": 4150, "currency": "EUR"},
            "vat_regime": "standard",
            "business": False,
            "pdf_url": f"https://payments.example/v1/orders/{_ORDER}/invoices/FA-00000042.pdf",
            "list_url": f"https://payments.example/v1/orders/{_ORDER}/invoices",
            "resent": False,
        },
    )
)
register(
    EventType(
        "refund.requested",
        1,
        "payments",
        ("notifications", "orders"),
        RefundRequestedV1,
        None,
        "A staff member approved a refund (cancellation after payment, duplicate payment, supplier "
        "unable to issue); it goes back through the provider that took the money (a credit note "
        "is issued unless the sale stands, as for a duplicate payment).",
        {
            "order_id": _ORDER,
            "refund_id": "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
            "reason": "cancelled_after_payment",
            "method": "card",
            "provider": "systempay",
            "provider_transaction_id": "8a1f2c...",
            "amount": {"amount_cents": 24900, "currency": "EUR"},
            "credit_note_number": "AV-00000007",
        },
    )
)
register(
    EventType(
        "refund.completed",
        1,
        "payments",
        ("notifications", "orders"),
        RefundCompletedV1,
        None,
        "The provider refunded the money (for a transfer: staff sent the SEPA file to the bank).",
        {
            "order_id": _ORDER,
            "refund_id": "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
            "method": "card",
            "provider": "systempay",
            "provider_refund_id": "b6e1...",
            "amount": {"amount_cents": 24900, "currency": "EUR"},
        },
    )
)
register(
    EventType(
        "refund.failed",
        1,
        "payments",
        ("notifications", "orders"),
        RefundFailedV1,
        None,
        "The provider refused or could not be reached for a refund; staff retry it.",
        {
            "order_id": _ORDER,
            "refund_id": "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
            "method": "paypal",
            "provider": "paypal",
            "reason": "PayPal: CAPTURE_FULLY_REFUNDED",
            "amount": {"amount_cents": 24900, "currency": "EUR"},
        },
    )
)


def example_event(event_type: EventType) -> Event:
    return Event(
        type=event_type.type,
        version=event_type.version,
        producer=event_type.producer,
        correlation_id=_ORDER,
        subject=event_type.example_data.get("order_id")
        or event_type.example_data.get("account_id"),
        data=event_type.example_data,
        personal=event_type.example_personal,
    )
