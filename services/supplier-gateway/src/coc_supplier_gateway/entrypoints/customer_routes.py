"""Customers' routes: the certificate PDF the supplier sent, with the order's access token
(``X-Order-Token``) or the owner's bearer token."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from coc_shared.http import current_runtime, order_caller
from coc_shared.openapi import CUSTOMER_SECURITY, errors

from ..service_layer.certificates import customer_certificate
from . import schemas as s

customers = Blueprint(
    "certificates", __name__, url_prefix="/v1/orders", description="Customers' certificates"
)


@customers.route("/<order_id>/certificate", methods=["GET"])
@customers.doc(
    security=CUSTOMER_SECURITY,
    parameters=[s.ORDER_TOKEN_PARAM],
    summary="The order's certificate of conformity (PDF), once the supplier delivered it",
    responses={"200": s.CERTIFICATE_ANSWER},
)
@errors(customers, 401, 404, 503)
def certificate(order_id: str):
    account_id, order_token = order_caller()
    found = customer_certificate(current_runtime(), order_id, account_id, order_token)
    return Response(
        found.pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="COC-{found.order_number}.pdf"'},
    )
