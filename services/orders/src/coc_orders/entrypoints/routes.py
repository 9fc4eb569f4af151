"""HTTP API of the orders service (the storefront's), besides the common routes (health, readiness,
parked messages): flask-smorest blueprints, documented in the OpenAPI document served at
``/openapi.json`` and kept in the repository (``services/orders/openapi.json``).

Authentication: a customer's bearer token (``Authorization: Bearer …``, from \
``POST /v1/auth/token``)
or, for an order placed without an account, its access token in the header ``X-Order-Token``
(never in the URL: ``?token=`` is refused). Any order or account that the credentials do not open
answers 404, whether it exists or not.
"""

from __future__ import annotations

from flask import Flask

from coc_shared.limits import trust_proxies
from coc_shared.openapi import install_api, security_scheme_customer

from ..service_layer.orders import MAX_DOCUMENT_BYTES
from . import (
    accounts_routes,
    order_checks_routes,
    orders_routes,
    pages,
    privacy_routes,
    staff_routes,
    supplier_documents_routes,
)
from .common import install_error_handlers
from .context import EXTENSION, OrdersApp
from .limits import install_rate_limits


def register_api(app: Flask, runtime) -> None:
    """The orders routes on ``app``, with their context (``context.OrdersApp``), built once here."""
    context = OrdersApp.build(runtime)
    app.extensions[EXTENSION] = context
    install_error_handlers(app)
    trust_proxies(app, context.config.proxy_count)
    # room for one 10 MB file and the form around it; the file itself is checked exactly
    app.config["MAX_CONTENT_LENGTH"] = MAX_DOCUMENT_BYTES + 512 * 1024
    api = install_api(app, "COC orders API", __doc__)
    security_scheme_customer(api)
    api.register_blueprint(orders_routes.blp)
    api.register_blueprint(accounts_routes.blp)
    api.register_blueprint(privacy_routes.blp)
    api.register_blueprint(supplier_documents_routes.blp)
    api.register_blueprint(staff_routes.blp)
    api.register_blueprint(order_checks_routes.blp)
    app.register_blueprint(pages.bp)  # the e-mail confirmation link's page and its script
    pages.document(app, api)
    install_rate_limits(app, runtime, context.config)
