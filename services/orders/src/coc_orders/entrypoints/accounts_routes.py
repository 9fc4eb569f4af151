"""Routes of customer accounts: sign up, log in, my data, change of e-mail, my orders,
deactivation."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from coc_shared.tokens import MIN_SECRET_LENGTH, TokenError, issue_customer_token

from ..service_layer import accounts as accounts_uc
from ..service_layer import orders as orders_uc
from . import schemas as s
from .common import (
    customer_account,
    errors,
    json_response,
    plain_json,
    refuse_nul_characters,
    render_order,
)
from .context import orders_app

blp = Blueprint("accounts", __name__, url_prefix="/v1", description="Customer accounts")
blp.before_request(refuse_nul_characters)


SIGN_UP_ACCEPTED = (
    "if this address can be used, its account is ready: log in with it and this password "
    "(POST /v1/auth/token)"
)


@blp.route("/accounts", methods=["POST"])
@blp.doc(
    security=[{}],
    summary="Create a customer account (the answer is the same whether or not the address "
    "already has one: its owner is told by e-mail)",
)
@blp.arguments(s.AccountCreateSchema)
@blp.response(202, s.SignUpSchema)
@errors(blp, 400, 429)
def create_account(body):
    app = orders_app()
    signed_up = accounts_uc.create_account(
        app.runtime, body["email"], body["password"], body.get("profile") or {}
    )
    return json_response({"email": signed_up.email, "message": SIGN_UP_ACCEPTED}, 202)


@blp.route("/auth/token", methods=["POST"])
@blp.doc(security=[{}], summary="Log in: a bearer token with its lifetime")
@blp.arguments(s.LoginSchema)
@blp.response(200, s.TokenSchema)
@errors(blp, 400, 401, 429, 503)
def login(body):
    app = orders_app()
    secret = app.runtime.settings.customer_token_secret
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        raise TokenError("customer authentication is not configured (CUSTOMER_TOKEN_SECRET)", 503)
    account_id = accounts_uc.authenticate(app.runtime, body["email"], body["password"])
    token, expires_in = issue_customer_token(secret, account_id, app.config.customer_token_ttl)
    return json_response({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})


@blp.route("/accounts/me")
class Me(MethodView):
    @blp.doc(security=[{"bearerAuth": []}], summary="My account's data")
    @blp.response(200, s.AccountSchema)
    @errors(blp, 401, 404, 503)
    def get(self):
        account_id = customer_account(required=True)
        return json_response(plain_json(accounts_uc.account_view(orders_app().runtime, account_id)))

    @blp.doc(
        security=[{"bearerAuth": []}],
        summary="Change my data; a new e-mail address is confirmed by a link sent to it (the "
        "answer is the same whether or not the address has an account)",
    )
    @blp.arguments(s.AccountPatchSchema)
    @blp.response(200, s.AccountSchema)
    @errors(blp, 400, 401, 404, 429, 503)
    def patch(self, body):
        app = orders_app()
        account_id = customer_account(required=True)
        view = accounts_uc.update_account(
            app.runtime, account_id, body, app.config.email_confirmation_url
        )
        return json_response(plain_json(view))


@blp.route("/accounts/email-confirmation", methods=["POST"])
@blp.doc(
    security=[{}],
    summary="Confirm a change of e-mail with the token of the mailed link (the page at the link, "
    "GET on this path, posts it from the link's fragment)",
)
@blp.arguments(s.EmailConfirmationSchema)
@blp.response(200, s.AccountSchema)
@errors(blp, 400, 404, 409, 429)
def confirm_email(body):
    return json_response(
        plain_json(accounts_uc.confirm_email_change(orders_app().runtime, body["token"]))
    )


@blp.route("/accounts/me/orders", methods=["GET"])
@blp.doc(security=[{"bearerAuth": []}], summary="My orders, newest first")
@blp.response(200, s.OrderListSchema)
@errors(blp, 401, 503)
def my_orders():
    account_id = customer_account(required=True)
    orders = orders_uc.account_orders(orders_app().runtime, account_id)
    return json_response({"items": [render_order(order, documents) for order, documents in orders]})


@blp.route("/accounts/me/deactivation", methods=["POST"])
@blp.doc(
    security=[{"bearerAuth": []}],
    summary="Ask for my account to be deactivated (the gdpr service erases it)",
)
@blp.response(202, s.DeactivationSchema)
@errors(blp, 401, 404, 429, 503)
def deactivate():
    account_id = customer_account(required=True)
    return json_response(
        plain_json(accounts_uc.request_deactivation(orders_app().runtime, account_id)), 202
    )
