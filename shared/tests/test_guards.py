"""Bounded inputs (coc_shared.guards through coc_shared.http.install_common), on a bare Flask app:
size per route (Content-Length and chunked), JSON depth and number size, NUL and lone surrogates
in every kind of body, in paths and in query strings; the headers of every answer and 405's
Allow. Each refusal is a 4xx in the shared error shape with a field message, never a 5xx."""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask, jsonify, request
from flask.views import MethodView

from coc_shared.guards import (
    CALLBACK_BODY_LIMIT,
    DEFAULT_BODY_LIMIT,
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    JSONLimitError,
    body_limit,
    loads,
)
from coc_shared.http import install_common

UPLOAD_LIMIT = 10 * 1024 * 1024 + 512 * 1024


@pytest.fixture
def app():
    app = Flask("guards")
    app.json.sort_keys = False
    install_common(app)
    app.config["MAX_CONTENT_LENGTH"] = UPLOAD_LIMIT  # as orders sets it, for its uploads
    seen = app.extensions.setdefault("seen", [])

    @app.route("/v1/things/<thing_id>", methods=["GET", "POST", "PATCH"])
    def thing(thing_id):
        seen.append(thing_id)
        body = request.get_json(silent=True)
        return jsonify({"id": thing_id, "body": body, "form": dict(request.form)})

    @app.post("/v1/callbacks/provider")
    @body_limit(CALLBACK_BODY_LIMIT)
    def callback():
        data = request.get_data()
        seen.append(data)
        return jsonify({"length": len(data)})

    @app.post("/v1/upload")
    def upload():
        upload = request.files["file"]
        return jsonify({"size": len(upload.read()), "kind": request.form.get("kind")})

    class Limited(MethodView):
        @body_limit(10)
        def post(self):
            return jsonify({"length": len(request.get_data())})

    app.add_url_rule("/v1/limited", view_func=Limited.as_view("limited"))
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def refused(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["status"] == status and error["correlation_id"]
    if field is not None:
        assert field in error.get("fields", {}), error
    assert "Traceback" not in response.get_data(as_text=True)
    return error


def chunked(client, path: str, data: bytes, **kw):
    return client.post(
        path,
        input_stream=io.BytesIO(data),
        headers={"Transfer-Encoding": "chunked", **kw.pop("headers", {})},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
        **kw,
    )


# --------------------------------------------------------------------------- size per route
def test_a_callback_route_refuses_a_body_over_its_limit_before_reading_it(app, client):
    response = client.post("/v1/callbacks/provider", data=b"x" * (16 * 1024 * 1024))
    refused(response, 413)
    assert app.extensions["seen"] == []  # the view never ran


def test_a_chunked_body_over_the_route_s_limit_is_refused(app, client):
    refused(chunked(client, "/v1/callbacks/provider", b"x" * (CALLBACK_BODY_LIMIT + 1)), 413)
    assert app.extensions["seen"] == []
    fits = chunked(client, "/v1/callbacks/provider", b"x" * CALLBACK_BODY_LIMIT)
    assert fits.status_code == 200 and fits.get_json() == {"length": CALLBACK_BODY_LIMIT}


def test_json_apis_take_at_most_the_default_limit(client):
    big = json.dumps({"text": "x" * DEFAULT_BODY_LIMIT})
    refused(client.post("/v1/things/a", data=big, content_type="application/json"), 413)
    refused(chunked(client, "/v1/things/a", big.encode(), content_type="application/json"), 413)
    fits = json.dumps({"text": "x" * (DEFAULT_BODY_LIMIT - 100)})
    assert (
        client.post("/v1/things/a", data=fits, content_type="application/json").status_code == 200
    )


def test_a_multipart_upload_keeps_the_app_s_own_limit(client):
    document = b"%PDF-" + b"\x00\x01" * (4 * 1024 * 1024)  # 8 MB, NUL bytes in a file are fine
    response = client.post(
        "/v1/upload",
        data={"kind": "id", "file": (io.BytesIO(document), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200 and response.get_json()["size"] == len(document)
    too_big = b"x" * (UPLOAD_LIMIT + 1)
    refused(
        client.post(
            "/v1/upload",
            data={"kind": "id", "file": (io.BytesIO(too_big), "a.pdf")},
            content_type="multipart/form-data",
        ),
        413,
    )


def test_a_limit_on_a_method_view(client):
    assert client.post("/v1/limited", data=b"x" * 10).status_code == 200
    refused(client.post("/v1/limited", data=b"x" * 11), 413)


def test_an_app_may_list_endpoint_limits_in_its_configuration(app, client):
    app.config["COC_BODY_LIMITS"] = {"thing": 100}
    refused(client.post("/v1/things/a", json={"t": "x" * 200}), 413)


# --------------------------------------------------------------------------- JSON
@pytest.mark.parametrize(
    "mimetype", ["application/json", "application/merge-patch+json", "application/problem+json"]
)
def test_json_nested_100000_deep_is_a_400_not_a_recursion_error(client, mimetype):
    body = "[" * 100_000 + "]" * 100_000
    refused(client.post("/v1/things/a", data=body, content_type=mimetype), 400, "body")


def test_json_nested_just_past_the_limit_is_refused_and_at_the_limit_accepted(client):
    over = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    refused(client.post("/v1/things/a", data=over, content_type="application/json"), 400, "body")
    at = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert client.post("/v1/things/a", data=at, content_type="application/json").status_code == 200


@pytest.mark.parametrize(
    "number",
    ["9" * 5001, "-" + "9" * (MAX_NUMBER_DIGITS + 1), "1" * 100 + ".5", "1e999", "NaN", "Infinity"],
)
def test_numbers_too_long_or_not_finite_are_a_400(client, number):
    response = client.post(
        "/v1/things/a", data=f'{{"n": {number}}}', content_type="application/json"
    )
    refused(response, 400, "body")


def test_numbers_within_the_limit_are_read(client):
    n = int("9" * MAX_NUMBER_DIGITS)
    response = client.post("/v1/things/a", json={"n": n, "f": 12.5})
    assert response.status_code == 200 and response.get_json()["body"] == {"n": n, "f": 12.5}


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\udfff", "a\\udc00b"])
@pytest.mark.parametrize("mimetype", ["application/json", "application/merge-patch+json"])
def test_nul_and_lone_surrogates_in_json_strings_are_refused_naming_the_field(
    client, escape, mimetype
):
    body = '{"shipping_address": {"line1": "' + escape + '"}, "lines": ["ok"]}'
    error = refused(
        client.post("/v1/things/a", data=body, content_type=mimetype),
        400,
        "shipping_address.line1",
    )
    assert error["fields"]["shipping_address.line1"][0]
    in_list = '{"lines": ["ok", "' + escape + '"]}'
    refused(client.post("/v1/things/a", data=in_list, content_type=mimetype), 400, "lines.1")
    in_key = '{"a": {"' + escape + '": 1}}'
    refused(client.post("/v1/things/a", data=in_key, content_type=mimetype), 400, "a")


def test_a_surrogate_pair_is_one_character_and_accepted(client):
    response = client.post(
        "/v1/things/a", data='{"t": "\\ud83d\\ude00"}', content_type="application/json"
    )
    assert response.status_code == 200 and response.get_json()["body"] == {"t": "\U0001f600"}


def test_json_that_is_not_utf8_is_refused(client):
    body = '{"t": "é"}'.encode("latin-1")
    refused(client.post("/v1/things/a", data=body, content_type="application/json"), 400, "body")


def test_malformed_json_is_left_to_the_view(client):
    response = client.post("/v1/things/a", data="{", content_type="application/json")
    assert response.status_code == 200 and response.get_json()["body"] is None


def test_the_loader_is_the_app_s_json_provider(app):
    with app.test_request_context():
        with pytest.raises(JSONLimitError):
            app.json.loads("[" * 100 + "]" * 100)
    with pytest.raises(JSONLimitError):
        loads(b'{"a": "\\u0000"}')
    assert loads('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}


# --------------------------------------------------------------------------- other bodies
@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", b"vads_order_id=%00"),
        ("application/x-www-form-urlencoded", b"vads_order_id=a\x00b"),
        ("application/x-www-form-urlencoded", b"a=%ED%A0%80"),  # a surrogate, UTF-8 encoded
        ("application/x-www-form-urlencoded", b"a=%FF"),
        ("text/plain", b"hello \x00"),
        ("text/plain", b"\xed\xa0\x80"),
        ("text/plain; charset=utf-8", b"\xff"),
        ("application/xml", b"<a>\x00</a>"),
        ("application/json", b'{"a": "\x00"}'),  # a raw NUL byte
        ("application/octet-stream", b"\x00"),
        ("", b"\x00"),
    ],
)
def test_nul_and_invalid_text_in_any_body_are_refused(app, client, content_type, body):
    response = client.post("/v1/things/a", data=body, content_type=content_type)
    refused(response, 400)
    assert app.extensions["seen"] == []


def test_nul_in_a_multipart_field_is_refused_but_not_in_a_file(client):
    refused(
        client.post(
            "/v1/upload",
            data={"kind": "a\x00", "file": (io.BytesIO(b"x"), "a.pdf")},
            content_type="multipart/form-data",
        ),
        400,
        "kind",
    )
    ok = client.post(
        "/v1/upload",
        data={"kind": "id", "file": (io.BytesIO(b"\x00\x00"), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 200


def test_a_nul_in_a_callback_body_is_refused_before_the_view(app, client):
    response = client.post(
        "/v1/callbacks/provider", data=b'{"id": "a\\u0000b"}', content_type="application/json"
    )
    refused(response, 400, "id")
    assert app.extensions["seen"] == []


# --------------------------------------------------------------------------- paths and queries
@pytest.mark.parametrize("path", ["/v1/things/a%00b", "/v1/things/%00", "/v1/staff/parked/%00"])
def test_a_nul_in_the_path_is_a_404_before_any_view(app, client, path):
    refused(client.get(path), 404, "path")
    refused(client.post(path, json={}), 404, "path")
    assert app.extensions["seen"] == []


@pytest.mark.parametrize("query", ["status=%00", "a%00=1", "x=1&order_id=ab%00"])
def test_a_nul_in_the_query_string_is_a_400(app, client, query):
    refused(client.get(f"/v1/things/a?{query}"), 400)
    assert app.extensions["seen"] == []


# --------------------------------------------------------------------------- answers' headers
def test_every_answer_is_not_stored_and_not_sniffed(client):
    for response in (
        client.get("/v1/things/a"),
        client.get("/nowhere"),
        client.post("/v1/things/a%00"),
        client.delete("/v1/things/a"),
    ):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_405_carries_allow_through_the_json_error_handler(client):
    response = client.delete("/v1/things/a")
    refused(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST", "PATCH"}
    assert response.mimetype == "application/json"


def test_an_unexpected_error_is_a_500_without_a_traceback(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = client.get("/boom")
    assert response.status_code == 500
    assert "secret detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_multipart_part_without_a_name_is_not_a_500(client):
    body = b'--b\r\nContent-Disposition: form-data; filename="a.pdf"\r\n\r\n%PDF-\r\n--b--\r\n'
    response = client.post(
        "/v1/things/a", data=body, content_type="multipart/form-data; boundary=b"
    )
    assert response.status_code < 500


def test_an_int_in_a_path_beyond_a_bigint_is_a_404_not_a_database_error(app, client):
    @app.get("/v1/items/<int:item_id>")
    def item(item_id):
        return jsonify({"id": item_id})

    assert client.get(f"/v1/items/{2**63 - 1}").get_json() == {"id": 2**63 - 1}
    refused(client.get(f"/v1/items/{2**63}"), 404)
    refused(client.get("/v1/items/" + "9" * 5001), 404)
