"""Text that cannot be stored (an unpaired surrogate, a NUL or another control character) is
refused by field wherever it comes from, and never reaches the database: before, ``PATCH
/v1/accounts/me`` stored ``"\\ud800"`` in the profile, after which every order filled from it
answered 500. The shared guard refuses such bodies at the door; these checks hold behind it (use
cases called directly, a profile saved before the checks)."""

from __future__ import annotations

import uuid

import pytest
from orders_helpers import order_body
from sqlalchemy import select, update
from test_accounts import PROFILE, sign_up

from coc_orders.adapters import tables
from coc_orders.domain import checks
from coc_orders.domain.errors import InvalidCredentials, NotFound, ValidationFailed
from coc_orders.service_layer import accounts as accounts_uc

LINK = "http://127.0.0.1:8001/v1/accounts/email-confirmation#token={token}"
BAD_TEXTS = ["\ud800", "rue\udfff", "1 rue\x00 de la Paix", "bell\x07", "\x9b31m"]


@pytest.mark.parametrize("text", BAD_TEXTS)
def test_unstorable_text_is_refused(text):
    with pytest.raises(ValueError, match="unpaired surrogate or a control character"):
        checks.storable_text(text)


@pytest.mark.parametrize("text", ["Émilie", "Ἀλέξανδρος", "line\nbreak\tand tab", "😀 (a pair)"])
def test_any_real_text_is_storable(text):
    assert checks.storable_text(text) == text


def profile_of(runtime, account_id):
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(tables.accounts.c.profile).where(tables.accounts.c.id == account_id)
        ).scalar_one()


@pytest.mark.parametrize("text", BAD_TEXTS)
def test_a_profile_change_with_unstorable_text_is_refused_and_nothing_is_stored(
    runtime, client, text
):
    account, _ = sign_up(client)
    before = profile_of(runtime, account["id"])
    changes = {
        "shipping_address": {**PROFILE["shipping_address"], "line1": text},
        "company": {"name": f"Garage {text}"},
        "customer": {"last_name": text},
    }
    with pytest.raises(ValidationFailed) as refused:
        accounts_uc.update_account(runtime, account["id"], changes, LINK)
    fields = refused.value.fields
    assert fields["shipping_address"]["line1"] == [checks.UNSTORABLE_TEXT]
    assert checks.UNSTORABLE_TEXT in fields["company"]["name"]
    assert checks.UNSTORABLE_TEXT in fields["customer"]["last_name"]
    assert profile_of(runtime, account["id"]) == before


def test_an_order_filled_from_a_profile_holding_unstorable_text_is_refused_not_a_500(
    runtime, client
):
    """A profile saved before the checks (written here directly) holding a lone surrogate."""
    account, auth = sign_up(client)
    bad = {**PROFILE, "shipping_address": {**PROFILE["shipping_address"], "line1": "\ud800 rue"}}
    with runtime.engine.begin() as conn:
        conn.execute(
            update(tables.accounts).where(tables.accounts.c.id == account["id"]).values(profile=bad)
        )
    body = {"vehicle": order_body()["vehicle"], "payment_method": "card"}
    answer = client.post("/v1/orders", headers=auth, json=body)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["fields"]["shipping_address"]["line1"] == [
        checks.UNSTORABLE_TEXT
    ]
    assert client.get("/v1/accounts/me", headers=auth).status_code == 200
    assert client.get("/v1/accounts/me/orders", headers=auth).status_code == 200
    # the customer repairs the profile, and orders are taken again
    repaired = client.patch(
        "/v1/accounts/me", headers=auth, json={"shipping_address": PROFILE["shipping_address"]}
    )
    assert repaired.status_code == 200
    assert client.post("/v1/orders", headers=auth, json=body).status_code == 201


def test_sign_up_log_in_and_confirmation_with_unstorable_text_are_refused(runtime):
    email = f"u.{uuid.uuid4().hex[:8]}@example.org"
    with pytest.raises(ValidationFailed) as refused:
        accounts_uc.create_account(runtime, email, "password \ud800 long", {})
    assert refused.value.fields["password"] == [checks.UNSTORABLE_TEXT]
    with pytest.raises(ValidationFailed) as refused:
        accounts_uc.create_account(
            runtime, email, "long enough password", {"customer": {"first_name": "L\x00a"}}
        )
    assert refused.value.fields["profile"]["customer"]["first_name"]
    with pytest.raises(InvalidCredentials):
        accounts_uc.authenticate(runtime, "\ud800@example.org", "long enough password")
    with pytest.raises(InvalidCredentials):
        accounts_uc.authenticate(runtime, email, "pass\x00word")
    with pytest.raises(NotFound):
        accounts_uc.confirm_email_change(runtime, "tok\ud800en")
