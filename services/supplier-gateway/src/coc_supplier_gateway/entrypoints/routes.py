"""HTTP API of the supplier gateway besides the common routes (health, readiness, parked
messages): flask-smorest, documented in the OpenAPI document served at ``/openapi.json`` and kept
in the repository (``services/supplier-gateway/openapi.json``).

* Suppliers: ``POST /v1/suppliers/{code}/replies``, a reply signed with the supplier's key
  (HMAC-SHA256 over ``X-COC-Timestamp + "." + body``, in ``X-COC-Signature: sha256=<hex>``; the
  timestamp within 5 minutes), deduplicated on its ``reply_id`` (docs/supplier-integration.md).
  A supplier on the http channel receives requests as the same kind of signed POST.
* Customers: ``GET /v1/orders/{order_id}/certificate``, the certificate PDF the supplier sent, with
  the order's access token (``X-Order-Token``) or the owner's bearer token.
* Support staff: supplier requests by status, supplier or lateness, one with its history, sending
  one again, recording a reply received by other means, the shipments this company posts.
"""

from __future__ import annotations

from flask import Flask

from coc_shared.openapi import install_api, security_scheme_customer

from . import customer_routes, order_states_routes, staff_routes, supplier_routes
from .common import install_error_handlers


def register_api(app: Flask, runtime) -> None:
    """The supplier gateway's routes on ``app`` (their views reach ``runtime`` with
    ``current_runtime()``), the use cases' refusals answered by ``common.ANSWERS``."""
    install_error_handlers(app)
    api = install_api(app, "COC supplier-gateway API", __doc__)
    security_scheme_customer(api)
    api.register_blueprint(supplier_routes.suppliers)
    api.register_blueprint(customer_routes.customers)
    api.register_blueprint(staff_routes.blp)
    api.register_blueprint(order_states_routes.blp)
