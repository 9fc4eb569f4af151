"""Marshmallow schemas of the HTTP API: the shape of requests (types, lengths, choices) and the
documentation of answers. The meaning of the values (a real VIN, a VAT number matching the SIREN,
a sold brand...) is checked by the domain (``domain.validation``), which answers per field too."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from coc_shared.catalogue import PAYMENT_METHODS
from coc_shared.openapi import NOT_BLANK

from ..domain.brands import DOCUMENT_KINDS


class Strict(Schema):
    class Meta:
        unknown = EXCLUDE
        ordered = True


def _str(max_len: int, required: bool = False, **kw):
    return fields.String(required=required, validate=validate.Length(max=max_len), **kw)


class AddressSchema(Strict):
    line1 = _str(200, required=True)
    line2 = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    postal_code = _str(12, required=True)
    city = _str(100, required=True)
    country = fields.String(
        required=True,
        validate=validate.Length(equal=2),
        metadata={"description": "ISO 3166-1 alpha-2 code", "example": "FR"},
    )


class CustomerSchema(Strict):
    first_name = _str(100, metadata={"example": "Émilie"})
    last_name = _str(100, metadata={"example": "Dupont-Lefèvre"})
    email = _str(320, metadata={"example": "emilie@example.org"})
    phone = _str(
        40, metadata={"description": "any country; stored in E.164", "example": "+33612345678"}
    )


class CompanySchema(Strict):
    name = _str(200, required=True)
    siren = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=20))
    vat_number = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=20),
        metadata={"description": "intra-EU VAT number, e.g. FR40303265045"},
    )


class VehicleSchema(Strict):
    vin = _str(30, required=True, metadata={"example": "VF3ABCDEF12345678"})
    first_registration_date = fields.Date(required=True)
    brand = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=100),
        metadata={"description": "optional; must agree with the maker the VIN names"},
    )
    extra = fields.Dict(
        keys=fields.String(validate=validate.Length(max=100)),
        values=fields.String(validate=validate.Length(max=200)),
        load_default=dict,
        metadata={"description": "fields the brand's entry in the brand list requires"},
    )


class OrderRequestSchema(Strict):
    customer = fields.Nested(
        CustomerSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "required without a bearer token; else filled from the profile"},
    )
    shipping_address = fields.Nested(AddressSchema, load_default=None, allow_none=True)
    billing_address = fields.Nested(AddressSchema, load_default=None, allow_none=True)
    company = fields.Nested(CompanySchema, load_default=None, allow_none=True)
    vehicle = fields.Nested(VehicleSchema, required=True)
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    marketing_consent = fields.Boolean(
        metadata={"description": "default false (or the profile's choice)"}
    )


class MoneySchema(Schema):
    amount_cents = fields.Integer(required=True)
    currency = fields.String(required=True)


class VatSchema(Schema):
    rate = fields.String(required=True, metadata={"description": "0.0 under the reverse charge"})
    amount_cents = fields.Integer(
        required=True, metadata={"description": "the VAT included in the total"}
    )
    regime = fields.String(
        required=True,
        metadata={
            "description": "standard (French VAT included) | reverse_charge (a business of "
            "another EU member state whose VAT number VIES confirmed: no VAT, the total is net)"
        },
    )
    vat_number_check = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "what VIES answered about the company's VAT number when the order was "
            "placed: valid | unavailable (VIES was down: French VAT, the number is checked again "
            "later) | null (no check needed)"
        },
    )
    mention = fields.String(
        metadata={"description": "under the reverse charge: the mention the invoice carries"}
    )


class VehicleOutSchema(Schema):
    brand = fields.String(required=True)
    vin = fields.String(required=True)
    first_registration_date = fields.Date(required=True)
    extra = fields.Dict(required=True)


class DocumentSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    uploaded_at = fields.DateTime(required=True)
    rejected_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "when the supplier refused it (it then no longer counts; "
            "its kind is required again)"
        },
    )


class LinksSchema(Schema):
    self = fields.String(required=True)
    documents = fields.String(required=True)
    payment = fields.String(required=True)
    invoices = fields.String(
        required=True,
        metadata={
            "description": "the order's invoices and credit notes (number, date, totals, PDF "
            "link) on the payments service, opened with the same credentials as this order; an "
            "empty list until the order is paid"
        },
    )
    certificate = fields.String(
        metadata={
            "description": "once the supplier delivered the certificate: where to download it "
            "(the supplier gateway, with the same credentials as this order)"
        }
    )


class TimelineEntrySchema(Schema):
    event = fields.String(
        required=True, metadata={"description": "event type, e.g. payment.confirmed"}
    )
    at = fields.DateTime(required=True)
    outcome = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "applied (moved the order) | ignored (did not fit its state) | recorded "
            "(a fact that moves nothing, e.g. supplier.request_accepted, invoice.issued, "
            "refund.requested) | amount_mismatch (a payment "
            "confirmation whose amount or currency is not the order's total: the order is not "
            "paid)"
        },
    )
    status = fields.String(
        required=True, allow_none=True, metadata={"description": "status after it, when applied"}
    )


class OrderSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(required=True, metadata={"example": "COC-2026-000123"})
    status = fields.String(
        required=True,
        metadata={
            "description": "placed | payment_failed | paid | sent_to_supplier | supplier_rejected "
            "| certificate_received | shipped | delivered | cancelled | refunded (the sale was "
            "given back: cancelled after payment, or the supplier could not issue)"
        },
    )
    placed_at = fields.DateTime(required=True)
    payment_method = fields.String(required=True)
    total = fields.Nested(MoneySchema, required=True)
    vat = fields.Nested(VatSchema, required=True)
    vehicle = fields.Nested(VehicleOutSchema, required=True)
    documents_required = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "kinds of document still to upload"},
    )
    documents = fields.List(fields.Nested(DocumentSchema), required=True)
    links = fields.Nested(LinksSchema, required=True)
    access_token = fields.String(
        metadata={
            "description": "orders placed without an account: shown once, "
            "opens the order (header X-Order-Token)"
        }
    )
    timeline = fields.List(fields.Nested(TimelineEntrySchema))


class CancellationSchema(Strict):
    reason = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=500), NOT_BLANK],
        metadata={"description": "why the customer cancels", "example": "ordered by mistake"},
    )


class OrderListSchema(Schema):
    items = fields.List(fields.Nested(OrderSchema), required=True)


DOCUMENT_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["kind", "file"],
                "properties": {
                    "kind": {"type": "string", "enum": list(DOCUMENT_KINDS)},
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "PDF, JPEG or PNG, at most 10 MB: a PDF of at most 20 "
                        "pages and 50 MB inflated, without active content; an image of at most 40 "
                        "megapixels, stored re-encoded. An order takes 8 documents, 3 of a kind",
                    },
                },
            }
        }
    },
}


class DocumentUploadedSchema(Schema):
    document = fields.Nested(DocumentSchema, required=True)
    documents_required = fields.List(fields.String(), required=True)
    documents_completed = fields.Boolean(required=True)


class ProfileCustomerSchema(Strict):
    first_name = _str(100)
    last_name = _str(100)
    phone = _str(40)


class ProfileSchema(Strict):
    customer = fields.Nested(ProfileCustomerSchema, load_default=None, allow_none=True)
    shipping_address = fields.Nested(AddressSchema, allow_none=True)
    billing_address = fields.Nested(AddressSchema, allow_none=True)
    company = fields.Nested(CompanySchema, allow_none=True)
    marketing_consent = fields.Boolean()


class AccountCreateSchema(Strict):
    email = _str(320, required=True)
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=10, max=200)
    )
    profile = fields.Nested(ProfileSchema, load_default=dict)


class SignUpSchema(Schema):
    email = fields.String(required=True, metadata={"description": "the address, normalised"})
    message = fields.String(required=True)


class AccountPatchSchema(ProfileSchema):
    email = _str(320, metadata={"description": "a new address is confirmed by a link sent to it"})


class AccountSchema(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    pending_email = fields.String(required=True, allow_none=True)
    customer = fields.Dict(required=True)
    shipping_address = fields.Dict(required=True, allow_none=True)
    billing_address = fields.Dict(required=True, allow_none=True)
    company = fields.Dict(required=True, allow_none=True)
    marketing_consent = fields.Boolean(required=True)
    deactivation_requested_at = fields.DateTime(required=True, allow_none=True)


class LoginSchema(Strict):
    email = _str(320, required=True)
    password = fields.String(required=True, validate=validate.Length(max=200))


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class EmailConfirmationSchema(Strict):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class DeactivationSchema(Schema):
    account_id = fields.String(required=True)
    requested_at = fields.DateTime(required=True)
