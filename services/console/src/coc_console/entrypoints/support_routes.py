"""The console's customer support pages: a support record added to an order, a GDPR request
opened on behalf of the customer (both from the order's story), and, for admins, the search of
orders by the customer's e-mail address (recorded in the audit log)."""

from __future__ import annotations

from flask import Blueprint, g, redirect, request, url_for

from ..adapters.services_client import ServiceError
from ..domain.model import InputError
from ..service_layer import story, support
from .routes import client, page, runtime, signed_in

bp = Blueprint("support", __name__)


def _order_or_404(order_id: str):
    order = story.find(client(), g.staff, order_id)
    if order is None:
        return None, page("error.html", 404, message=f"No order {order_id}.")
    return order, None


def _story_with_errors(order: dict, errors: dict, form_name: str):
    told = story.story(runtime(), client(), g.staff, order)
    context = {f"{form_name}_errors": errors}
    return page("story.html", 422, story=told, q=order["number"], **context)


@bp.post("/orders/<order_id>/support-records")
@signed_in
def add_support_record(order_id: str):
    order, missing = _order_or_404(order_id)
    if missing:
        return missing
    try:
        support.add_support_record(runtime(), client(), g.staff, order, request.form)
    except InputError as exc:
        return _story_with_errors(order, exc.fields, "record")
    return redirect(url_for("console.order_page", q=order["number"], done="support record added"))


@bp.post("/orders/<order_id>/gdpr-requests")
@signed_in
def open_gdpr_request(order_id: str):
    order, missing = _order_or_404(order_id)
    if missing:
        return missing
    try:
        opened = support.open_gdpr_request(runtime(), client(), g.staff, order, request.form)
    except InputError as exc:
        return _story_with_errors(order, exc.fields, "gdpr")
    except ServiceError as exc:  # gdpr refused it (e.g. another address from the support role)
        if exc.status not in (403, 422):
            raise
        return _story_with_errors(order, {"request": str(exc)}, "gdpr")
    done = f"{opened['kind']} request {opened['request_id']}" + (
        " (joined the pending one)" if opened.get("joined") else " opened"
    )
    return redirect(url_for("console.order_page", q=order["number"], done=done))


@bp.get("/orders/by-email")
@signed_in
def orders_by_email_form():
    return page("orders_by_email.html", email="", orders=None)


@bp.post("/orders/by-email")
@signed_in
def orders_by_email():
    """A POST (CSRF-checked): the address stays out of the URL, so out of browser history,
    proxies and access logs."""
    email = request.form.get("email", "").strip()
    try:
        found = support.orders_by_email(runtime(), client(), g.staff, email)
    except ServiceError as exc:
        if exc.status != 422:
            raise
        errors = {"email": "an e-mail address"}
        return page("orders_by_email.html", 422, email=email, orders=None, errors=errors)
    return page("orders_by_email.html", email=email, orders=found)
