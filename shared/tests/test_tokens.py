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
    MIN_SECRET_LENGTH,
    Actor,
    TokenError,
    access_token_matches,
    bearer_token,
    hash_access_token,
    issue_customer_token,
    issue_staff_token,
    new_order_access_token,
    verify_customer_token,
    verify_staff_token,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "probe"))
import probe_service
from sharedkit import migrate_ops, unique_suffix

SECRET = "a-staff-secret-of-forty-characters-long!"
OTHER_SECRET = "another-secret-of-forty-characters-long!"


def _raise_status(fn, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(TokenError) as info:
        fn(*args, **kwargs)
    return info.value.status, str(info.value)


# tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["support", "admin"])
def test_issue_and_verify(role):
    token = issue_staff_token(SECRET, "  alice  ", role)
    assert verify_staff_token(SECRET, token) == Actor(name="alice", role=role)


def test_the_token_carries_issuer_expiry_and_role():
    token = issue_staff_token(SECRET, "alice", "support", ttl=timedelta(hours=2))
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="coc-staff")
    assert claims["sub"] == "alice" and claims["role"] == "support"
    assert 7190 <= claims["exp"] - claims["iat"] <= 7200


def test_expired_token():
    token = issue_staff_token(SECRET, "alice", "support", ttl=timedelta(seconds=-1))
    assert _raise_status(verify_staff_token, SECRET, token) == (401, "the staff token has expired")


def test_wrong_secret():
    token = issue_staff_token(OTHER_SECRET, "alice", "admin")
    assert _raise_status(verify_staff_token, SECRET, token) == (401, "the staff token is invalid")


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def test_tampered_token():
    token = issue_staff_token(SECRET, "alice", "support")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = ".".join([header, _b64(claims), signature])
    assert _raise_status(verify_staff_token, SECRET, forged)[0] == 401
    assert _raise_status(verify_staff_token, SECRET, token[:-4] + "AAAA")[0] == 401


def test_unsigned_token_is_refused():
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "mallory",
        "role": "admin",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    assert _raise_status(verify_staff_token, SECRET, unsigned)[0] == 401


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss"])
def test_a_token_without_a_required_claim_is_refused(missing):
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "alice",
        "role": "admin",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    del claims[missing]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert _raise_status(verify_staff_token, SECRET, token)[0] == 401


def test_wrong_role_is_forbidden():
    token = issue_staff_token(SECRET, "bob", "support")
    status, message = _raise_status(verify_staff_token, SECRET, token, roles=("admin",))
    assert status == 403 and "admin" in message
    assert (
        verify_staff_token(
            SECRET, issue_staff_token(SECRET, "carol", "admin"), roles=("admin",)
        ).role
        == "admin"
    )


def test_missing_token():
    assert _raise_status(verify_staff_token, SECRET, None)[0] == 401
    assert _raise_status(verify_staff_token, SECRET, "")[0] == 401


@pytest.mark.parametrize("secret", [None, ""])
def test_missing_secret_is_503(secret):
    token = issue_staff_token(SECRET, "alice", "support")
    assert _raise_status(verify_staff_token, secret, token)[0] == 503
    assert _raise_status(issue_staff_token, secret, "alice", "support")[0] == 503


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_short_secret_is_refused():
    short = "s" * (MIN_SECRET_LENGTH - 1)
    status, message = _raise_status(issue_staff_token, short, "alice", "support")
    assert status == 503 and str(MIN_SECRET_LENGTH) in message
    forged = jwt.encode(
        {
            "iss": "coc-staff",
            "sub": "a",
            "role": "admin",
            "iat": datetime.now(UTC),
            "exp": datetime.now(UTC) + timedelta(hours=1),
        },
        short,
        algorithm="HS256",
    )
    assert _raise_status(verify_staff_token, short, forged)[0] == 503
    assert issue_staff_token("s" * MIN_SECRET_LENGTH, "alice", "support")


def test_issue_refuses_an_unknown_role_or_an_empty_name():
    with pytest.raises(ValueError, match="role"):
        issue_staff_token(SECRET, "alice", "root")
    with pytest.raises(ValueError, match="name"):
        issue_staff_token(SECRET, "   ", "support")


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
    assert _raise_status(verify_staff_token, SECRET, customer)[0] == 401
    assert (
        _raise_status(verify_customer_token, SECRET, issue_staff_token(SECRET, "alice", "admin"))[0]
        == 401
    )
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
        settings = settings_factory(f"t-{unique_suffix()}", staff_token_secret=SECRET)
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


def test_staff_endpoint_without_a_configured_secret_is_503(make_app):
    app, _ = make_app(staff_token_secret=None)
    response = app.test_client().get(
        "/v1/staff/parked", headers=_auth(issue_staff_token(SECRET, "a", "admin"))
    )
    assert response.status_code == 503
    assert (
        response.json["error"]["status"] == 503
        and "STAFF_TOKEN_SECRET" in response.json["error"]["message"]
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
    expired = issue_staff_token(SECRET, "alice", "support", ttl=timedelta(seconds=-5))
    assert client.get("/v1/staff/parked", headers=_auth(expired)).status_code == 401
    foreign = issue_staff_token(OTHER_SECRET, "alice", "admin")
    assert client.get("/v1/staff/parked", headers=_auth(foreign)).status_code == 401


def test_staff_endpoint_with_the_wrong_role_is_403(make_app):
    app, _ = make_app()
    client = app.test_client()
    support = issue_staff_token(SECRET, "bob", "support")
    response = client.get("/v1/staff/admin-only", headers=_auth(support))
    assert response.status_code == 403 and "WWW-Authenticate" not in response.headers
    assert response.json["error"]["code"] == "forbidden"
    ok = client.get(
        "/v1/staff/admin-only", headers=_auth(issue_staff_token(SECRET, "carol", "admin"))
    )
    assert ok.status_code == 200 and ok.json == {"actor": "carol", "role": "admin"}
    now = datetime.now(UTC)
    guest = jwt.encode(
        {
            "iss": "coc-staff",
            "sub": "eve",
            "role": "guest",
            "iat": now,
            "exp": now + timedelta(hours=1),
        },
        SECRET,
        algorithm="HS256",
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
    headers = _auth(issue_staff_token(SECRET, "alice", "support"))
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


def test_a_bad_limit_is_a_client_error(make_app):
    app, runtime = make_app()
    migrate_ops(runtime.parking_engine)
    headers = _auth(issue_staff_token(SECRET, "alice", "support"))
    response = app.test_client().get("/v1/staff/parked?limit=ten", headers=headers)
    assert response.status_code == 400
