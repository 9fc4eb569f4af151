"""Staff and customer bearer tokens, and the staff-only HTTP endpoints of every service."""

import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from flask import jsonify

from coc_shared.http import staff_required
from coc_shared.service import Runtime
from coc_shared.tokens import (
    MAX_STAFF_TOKEN_HOURS,
    Actor,
    TokenError,
    access_token_matches,
    bearer_token,
    hash_access_token,
    issue_customer_token,
    issue_staff_token,
    new_order_access_token,
    new_staff_keys,
    staff_private_key,
    staff_public_key,
    verify_customer_token,
    verify_staff_token,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "probe"))
import probe_service
from sharedkit import migrate_ops, unique_suffix

SECRET = "a-customer-secret-of-forty-characters-l!"
PRIVATE, PUBLIC = new_staff_keys()
OTHER_PRIVATE, OTHER_PUBLIC = new_staff_keys()


def _raise_status(fn, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(TokenError) as info:
        fn(*args, **kwargs)
    return info.value.status, str(info.value)


def _issue(name="alice", role="support", key=PRIVATE, **kwargs) -> str:
    return issue_staff_token(key, name, role, **kwargs).token


def _verify(token, audience="orders", key=PUBLIC, **kwargs) -> Actor:
    return verify_staff_token(key, token, audience, **kwargs)


# staff tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["support", "admin"])
def test_issue_and_verify(role):
    issued = issue_staff_token(PRIVATE, "  alice  ", role)
    actor = _verify(issued.token)
    assert (actor.name, actor.role, actor.token_id) == ("alice", role, issued.jti)


def test_the_token_is_signed_with_ed25519_and_carries_issuer_audience_id_expiry_and_role():
    issued = issue_staff_token(
        PRIVATE, "alice", "support", ttl=timedelta(hours=2), audience=("orders", "payments")
    )
    header = json.loads(base64.urlsafe_b64decode(issued.token.split(".")[0] + "=="))
    assert header["alg"] == "EdDSA"
    claims = jwt.decode(
        issued.token,
        staff_public_key(PUBLIC),
        algorithms=["EdDSA"],
        issuer="coc-staff",
        audience="orders",
    )
    assert claims["sub"] == "alice" and claims["role"] == "support" and claims["jti"] == issued.jti
    assert claims["aud"] == ["orders", "payments"]
    assert 7190 <= claims["exp"] - claims["iat"] <= 7200


def test_a_service_holds_only_the_public_key_which_cannot_sign():
    """The key every service holds verifies but cannot mint: signing with it is impossible, and a
    token signed with the HS256 "secret" of the public key's text is refused."""
    with pytest.raises(TokenError):
        issue_staff_token(PUBLIC + "x", "mallory", "admin")
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "mallory",
        "role": "admin",
        "aud": ["orders"],
        "jti": "j",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    hs256 = jwt.encode(claims, PUBLIC, algorithm="HS256")
    assert _raise_status(_verify, hs256)[0] == 401


def test_a_token_for_other_services_is_refused():
    token = _issue(audience=("payments",))
    assert _raise_status(_verify, token, audience="orders") == (
        401,
        "the staff token is not for orders",
    )
    assert _verify(token, audience="payments").name == "alice"


def test_the_lifetime_is_capped():
    with pytest.raises(ValueError, match=f"at most {MAX_STAFF_TOKEN_HOURS} hours"):
        issue_staff_token(PRIVATE, "alice", "admin", ttl=timedelta(hours=MAX_STAFF_TOKEN_HOURS + 1))
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "alice",
        "role": "admin",
        "aud": ["orders"],
        "jti": "j",
        "iat": now,
        "exp": now + timedelta(hours=MAX_STAFF_TOKEN_HOURS, minutes=5),
    }
    too_long = jwt.encode(claims, staff_private_key(PRIVATE), algorithm="EdDSA")
    assert _raise_status(_verify, too_long) == (401, "the staff token lives longer than allowed")


def test_a_revoked_token_is_refused():
    issued = issue_staff_token(PRIVATE, "alice", "admin")
    revoked = {issued.jti}
    assert _raise_status(_verify, issued.token, revoked=revoked.__contains__) == (
        401,
        "the staff token was revoked",
    )
    assert _verify(_issue(), revoked=revoked.__contains__).name == "alice"


def test_expired_token():
    with pytest.raises(ValueError):  # a lifetime must be positive when issued
        _issue(ttl=timedelta(seconds=-1))
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "alice",
        "role": "admin",
        "aud": ["orders"],
        "jti": "j",
        "iat": now - timedelta(hours=2),
        "exp": now - timedelta(seconds=1),
    }
    expired = jwt.encode(claims, staff_private_key(PRIVATE), algorithm="EdDSA")
    assert _raise_status(_verify, expired) == (401, "the staff token has expired")


def test_a_token_signed_with_another_key_is_refused():
    assert _raise_status(_verify, _issue(key=OTHER_PRIVATE)) == (401, "the staff token is invalid")


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def test_tampered_token():
    token = _issue()
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = ".".join([header, _b64(claims), signature])
    assert _raise_status(_verify, forged)[0] == 401
    assert _raise_status(_verify, token[:-4] + "AAAA")[0] == 401


def test_unsigned_token_is_refused():
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "mallory",
        "role": "admin",
        "aud": ["orders"],
        "jti": "j",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    assert _raise_status(_verify, unsigned)[0] == 401


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud", "jti"])
def test_a_token_without_a_required_claim_is_refused(missing):
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "alice",
        "role": "admin",
        "aud": ["orders"],
        "jti": "j",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    del claims[missing]
    token = jwt.encode(claims, staff_private_key(PRIVATE), algorithm="EdDSA")
    assert _raise_status(_verify, token)[0] == 401


def test_wrong_role_is_forbidden():
    status, message = _raise_status(_verify, _issue("bob", "support"), roles=("admin",))
    assert status == 403 and "admin" in message
    assert _verify(_issue("carol", "admin"), roles=("admin",)).role == "admin"


def test_missing_token():
    assert _raise_status(_verify, None)[0] == 401
    assert _raise_status(_verify, "")[0] == 401


@pytest.mark.parametrize("key", [None, "", "not base64!", base64.b64encode(b"short").decode()])
def test_a_missing_or_malformed_key_is_503(key):
    assert _raise_status(_verify, _issue(), key=key)[0] == 503
    assert _raise_status(issue_staff_token, key, "alice", "support")[0] == 503


def test_issue_refuses_an_unknown_role_an_empty_name_or_a_bad_audience():
    with pytest.raises(ValueError, match="role"):
        issue_staff_token(PRIVATE, "alice", "root")
    with pytest.raises(ValueError, match="name"):
        issue_staff_token(PRIVATE, "   ", "support")
    with pytest.raises(ValueError, match="audience"):
        issue_staff_token(PRIVATE, "alice", "support", audience=())
    with pytest.raises(ValueError, match="audience"):
        issue_staff_token(PRIVATE, "alice", "support", audience=("Orders; DROP",))


@pytest.mark.parametrize(
    "header,token",
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer   abc", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_customer_tokens_and_staff_tokens_are_not_interchangeable():
    customer, expires_in = issue_customer_token(SECRET, "account-1")
    assert expires_in == 7200
    assert verify_customer_token(SECRET, customer) == "account-1"
    assert _raise_status(_verify, customer)[0] == 401
    assert _raise_status(verify_customer_token, SECRET, _issue("alice", "admin"))[0] == 401
    expired, _ = issue_customer_token(SECRET, "account-1", ttl=timedelta(seconds=-1))
    assert _raise_status(verify_customer_token, SECRET, expired) == (401, "the token has expired")
    assert _raise_status(verify_customer_token, None, customer)[0] == 503


def test_order_access_tokens():
    token, digest = new_order_access_token()
    assert len(digest) == 64 and digest == hash_access_token(token) and token not in digest
    assert access_token_matches(token, digest)
    assert not access_token_matches(token + "x", digest)
    assert not access_token_matches(None, digest) and not access_token_matches(token, None)


# the decorator, through a service app ---------------------------------------------------------


@pytest.fixture
def make_app(settings_factory):
    runtimes = []

    def make(**overrides):
        settings = settings_factory(f"t-{unique_suffix()}", staff_token_public_key=PUBLIC)
        if overrides:
            settings = settings_factory(settings.service, **overrides)
        runtime = Runtime(probe_service.definition, settings)
        runtimes.append(runtime)
        app = create_app(runtime)
        return app, runtime

    yield make
    for runtime in runtimes:
        runtime.engine.dispose()


def create_app(runtime):
    from coc_shared.http import create_base_app

    app = create_base_app(runtime)

    @app.get("/v1/staff/admin-only")
    @staff_required(roles=("admin",))
    def admin_only():
        from flask import g

        return jsonify({"actor": g.staff.name, "role": g.staff.role})

    return app


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _for(app) -> str:
    return app.config["COC_SETTINGS"].service


def test_staff_endpoint_without_a_configured_key_is_503(make_app):
    app, _ = make_app(staff_token_public_key=None)
    response = app.test_client().get(
        "/v1/staff/parked", headers=_auth(_issue("a", "admin", audience=(_for(app),)))
    )
    assert response.status_code == 503
    assert (
        response.json["error"]["status"] == 503
        and "STAFF_TOKEN_PUBLIC_KEY" in response.json["error"]["message"]
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearer x.y.z"}],
    ids=["none", "basic", "garbage"],
)
def test_staff_endpoint_without_a_valid_token_is_401(make_app, headers):
    app, _ = make_app()
    response = app.test_client().get(
        "/v1/staff/parked", headers={**headers, "X-Correlation-ID": "req-1"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="coc-staff"'
    error = response.json["error"]
    assert error["code"] == "unauthorized" and error["correlation_id"] == "req-1"


def test_staff_endpoint_with_an_expired_or_foreign_token_is_401(make_app):
    app, _ = make_app()
    client = app.test_client()
    migrate_ops(app.config["COC_RUNTIME"].parking_engine)
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "alice",
        "role": "admin",
        "aud": [_for(app)],
        "jti": "j",
        "iat": now - timedelta(hours=1),
        "exp": now - timedelta(seconds=5),
    }
    expired = jwt.encode(claims, staff_private_key(PRIVATE), algorithm="EdDSA")
    assert client.get("/v1/staff/parked", headers=_auth(expired)).status_code == 401
    foreign = _issue("alice", "admin", key=OTHER_PRIVATE, audience=(_for(app),))
    assert client.get("/v1/staff/parked", headers=_auth(foreign)).status_code == 401
    elsewhere = _issue("alice", "admin", audience=("payments",))
    response = client.get("/v1/staff/parked", headers=_auth(elsewhere))
    assert response.status_code == 401 and "not for" in response.json["error"]["message"]


def test_a_revoked_token_is_refused_by_the_service(make_app):
    app, runtime = make_app()
    migrate_ops(runtime.parking_engine)
    issued = issue_staff_token(PRIVATE, "alice", "admin", audience=(_for(app),))
    client = app.test_client()
    assert client.get("/v1/staff/parked", headers=_auth(issued.token)).status_code == 200
    assert runtime.parking.revoke_token(issued.jti, Actor("root", "admin"), "laptop stolen")
    response = client.get("/v1/staff/parked", headers=_auth(issued.token))
    assert response.status_code == 401 and "revoked" in response.json["error"]["message"]
    assert not runtime.parking.revoke_token(issued.jti, Actor("root", "admin"), "again")


def test_staff_endpoint_with_the_wrong_role_is_403(make_app):
    app, _ = make_app()
    client = app.test_client()
    migrate_ops(app.config["COC_RUNTIME"].parking_engine)
    support = _issue("bob", "support", audience=(_for(app),))
    response = client.get("/v1/staff/admin-only", headers=_auth(support))
    assert response.status_code == 403 and "WWW-Authenticate" not in response.headers
    assert response.json["error"]["code"] == "forbidden"
    ok = client.get(
        "/v1/staff/admin-only", headers=_auth(_issue("carol", "admin", audience=(_for(app),)))
    )
    assert ok.status_code == 200 and ok.json == {"actor": "carol", "role": "admin"}
    now = datetime.now(UTC)
    guest = jwt.encode(
        {
            "iss": "coc-staff",
            "sub": "eve",
            "role": "guest",
            "aud": [_for(app)],
            "jti": "g",
            "iat": now,
            "exp": now + timedelta(hours=1),
        },
        staff_private_key(PRIVATE),
        algorithm="EdDSA",
    )
    assert client.get("/v1/staff/parked", headers=_auth(guest)).status_code == 403


def _park_one(runtime, service: str, order_id: str = "o-1") -> int:
    now = datetime.now(UTC)
    return runtime.parking.park(
        service=service,
        queue=f"coc.{service}",
        routing_key="order.placed",
        body=b'{"x": 1}',
        headers={"h": 1},
        properties={"message_id": "m-1"},
        error_type="SchemaViolation",
        error_message="bad",
        stack_trace="Traceback",
        attempts=1,
        first_failed_at=now,
        last_failed_at=now,
        event_id="e-1",
        event_type="order.placed",
        order_id=order_id,
        correlation_id="c-1",
    )


def test_staff_endpoint_with_a_valid_token_lists_and_shows_this_services_parked_messages(make_app):
    app, runtime = make_app()
    migrate_ops(runtime.parking_engine)
    mine = _park_one(runtime, runtime.settings.service)
    other = _park_one(runtime, f"t-{unique_suffix()}")
    client = app.test_client()
    headers = _auth(_issue("alice", "support", audience=(_for(app),)))
    response = client.get("/v1/staff/parked", headers=headers)
    assert response.status_code == 200
    assert [item["id"] for item in response.json["items"]] == [mine]
    assert "body" not in response.json["items"][0]
    shown = client.get(f"/v1/staff/parked/{mine}", headers=headers)
    assert (
        shown.status_code == 200
        and shown.json["body"] == {"x": 1}
        and shown.json["stack_trace"] == "Traceback"
    )
    assert client.get(f"/v1/staff/parked/{other}", headers=headers).status_code == 404
    assert client.get(f"/v1/staff/parked/{mine}").status_code == 401
    # the body holds personal data: the staff read is in the support actions log
    reads = _support_actions(runtime, "read_parked", str(mine))
    assert [(r.actor, r.role) for r in reads] == [("alice", "support")]


def _support_actions(runtime, action, target):
    from sqlalchemy import select

    from coc_shared.tables import support_actions as t

    with runtime.parking_engine.connect() as conn:
        return conn.execute(select(t).where(t.c.action == action, t.c.target == target)).all()


def test_a_bad_limit_is_a_client_error(make_app):
    app, runtime = make_app()
    migrate_ops(runtime.parking_engine)
    headers = _auth(_issue("alice", "support", audience=(_for(app),)))
    response = app.test_client().get("/v1/staff/parked?limit=ten", headers=headers)
    assert response.status_code == 400
