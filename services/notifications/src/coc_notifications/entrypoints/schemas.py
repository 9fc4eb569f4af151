"""The request and answer bodies of the notifications API (its OpenAPI document's schemas)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from coc_shared.openapi import NOT_BLANK

from ..domain.model import STATUSES


class NotificationSchema(Schema):
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    template = fields.String(required=True)
    status = fields.String(required=True)
    has_recipient = fields.Boolean(required=True)


class OrderNotificationsSchema(Schema):
    order_id = fields.String(required=True)
    items = fields.List(fields.Nested(NotificationSchema), required=True)


class MailQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    template = fields.String(validate=validate.Length(min=1, max=100))
    order_id = fields.String(validate=validate.Length(min=1, max=200))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class MailSchema(Schema):
    id = fields.Integer(required=True)
    source_id = fields.String(required=True, metadata={"description": "event or campaign id"})
    event_type = fields.String(required=True)
    template = fields.String(required=True)
    kind = fields.String(required=True)
    order_id = fields.String(allow_none=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    last_answer = fields.String(allow_none=True, metadata={"description": "the SMTP answer"})
    message_id = fields.String(allow_none=True)
    address_masked = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    sent_at = fields.DateTime(allow_none=True)


class MailsSchema(Schema):
    items = fields.List(fields.Nested(MailSchema), required=True)


class ResendSchema(Schema):
    reason = fields.String(required=True, validate=[validate.Length(min=1, max=1000), NOT_BLANK])


class ResentSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    template = fields.String(required=True)


class UnsubscribedSchema(Schema):
    unsubscribed = fields.Boolean(required=True)
    message = fields.String(required=True)
