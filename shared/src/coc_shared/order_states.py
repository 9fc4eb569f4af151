"""What every service's ``POST /v1/staff/order-states`` takes: the ids of a batch of orders whose
states the support console's reconciliation compares (one call per service and batch, never one
per order)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

MAX_ORDERS = 1000


class OrderIdsSchema(Schema):
    order_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        required=True,
        validate=validate.Length(min=1, max=MAX_ORDERS),
        metadata={"description": f"the orders asked about (at most {MAX_ORDERS})"},
    )
