"""A test-wide fuzz of the five services' HTTP APIs on this run's PostgreSQL: schemathesis over each
service's OpenAPI document (valid and invalid requests, a bounded number per operation, with valid
staff and customer tokens and, half the time, an order that exists), then the hand-made hostile
corpus sent to every documented operation of every service. No request may get a 5xx or a
traceback; schemathesis's answers must be as documented (status, content type, schema, headers).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trust_kit import assert_answered_safely, make_stack

from coc_shared.config import SERVICE_NAMES

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Operations whose success would spoil the customer used by the others.
WITHOUT_CREDENTIALS = {("POST", "/v1/accounts/me/deactivation")}
MIB = 1024 * 1024
DEEP = "[" * 100_000 + "]" * 100_000
# (content type, body) of the hand-made corpus: what issue 8's probes sent, in every shape.
CORPUS = [
    ("application/json", DEEP),
    ("application/json", '{"n": ' + "9" * 5001 + "}"),
    ("application/json", '{"line1": "\\ud800", "city": "\\udfff"}'),
    ("application/json", '{"id": "a\\u0000b", "event_type": "x"}'),
    ("application/json", '{"id": "a\x00b"}'),
    ("application/json", '{"n": 1e999, "m": NaN}'),
    ("application/json", '{"a": "' + "x" * (2 * MIB) + '"}'),
    ("application/json", "{"),
    ("application/json", b'{"t": "\xff\xfe"}'),
    ("application/merge-patch+json", '{"customer": {"first_name": "\\u0000"}}'),
    ("application/merge-patch+json", '{"shipping_address": {"line1": "\\ud800"}}'),
    ("application/x-www-form-urlencoded", "vads_order_id=%00&signature=x"),
    ("application/x-www-form-urlencoded", "a=%ED%A0%80"),
    ("text/plain", "a\x00b"),
    ("text/plain", b"\xed\xa0\x80"),
    ("application/xml", "<Document>\x00</Document>"),
    ("application/octet-stream", b"\x00\x01"),
    ("", "\x00"),
]


@pytest.fixture(scope="module")
def stack(settings_factory, tmp_path_factory):
    stack = make_stack(settings_factory, tmp_path_factory.mktemp("fuzz"))
    yield stack
    stack.dispose()


def operations(stack, service: str) -> list:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", stack.apps[service])
    return [result.ok() for result in schema.get_all_operations()]


def credentials(stack, operation) -> dict:
    if (operation.method.upper(), operation.path) in WITHOUT_CREDENTIALS:
        return {}
    security = operation.definition.raw.get("security") or []
    if any("staffAuth" in requirement for requirement in security):
        return dict(stack.staff)
    return dict(stack.customer)


def existing_ids(stack, service: str) -> dict:
    if service == "orders":
        return {"order_id": stack.order_id, "account_id": stack.account_id}
    return {"order_id": stack.due_order_id, "account_id": stack.account_id}


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_schemathesis_finds_no_5xx_and_every_answer_as_documented(stack, service):
    ops = operations(stack, service)
    assert len(ops) >= 5, [op.path for op in ops]  # the common routes and the service's own
    known = existing_ids(stack, service)
    for operation in ops:
        headers = credentials(stack, operation)
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
                derandomize=True,
            )
            def check(case):
                for name, value in list((case.path_parameters or {}).items()):
                    if name in known and len(str(value)) % 2:  # a resource that exists, at times
                        case.path_parameters[name] = known[name]
                case.call_and_validate(headers=headers, checks=CHECKS)  # noqa: B023

            try:
                check()
            except Unsatisfiable:
                # nothing to make invalid (no parameter, no body): the positive cases ran
                assert mode is GenerationMode.NEGATIVE, operation.path


def filled(path: str, value: str) -> str:
    """A documented path with each of its parameters set to ``value``."""
    parts = []
    for part in path.split("/"):
        parts.append(value if part.startswith("{") and part.endswith("}") else part)
    return "/".join(parts)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_hostile_corpus_gets_no_5xx_from_any_operation(stack, service):
    client = stack.client(service)
    known = existing_ids(stack, service)
    for operation in operations(stack, service):
        method = operation.method.upper()
        headers = credentials(stack, operation)
        for value in (known["order_id"], "a%00b", "%ED%A0%80"):
            path = filled(operation.path, value)
            what = f"{service} {method} {path}"
            assert_answered_safely(client.open(path, method=method, headers=headers), what)
            query = path + "?limit=%00&status=%00&token=%00"
            assert_answered_safely(client.open(query, method=method, headers=headers), what)
        path = filled(operation.path, known["order_id"])
        for content_type, body in CORPUS:
            data = body.encode() if isinstance(body, str) else body
            answer = client.open(
                path,
                method=method,
                data=data,
                headers={**headers, "Content-Type": content_type},
            )
            assert_answered_safely(answer, f"{service} {method} {path} {content_type} {data[:40]}")
            if content_type == "application/json" and body is DEEP:
                chunked = client.open(
                    path,
                    method=method,
                    input_stream=io.BytesIO(data * 10),
                    headers={
                        **headers,
                        "Content-Type": content_type,
                        "Transfer-Encoding": "chunked",
                    },
                    environ_overrides={"wsgi.input_terminated": True},
                )
                assert_answered_safely(chunked, f"{service} {method} {path} chunked")
        multipart = client.open(
            path,
            method=method,
            data={"kind": "x\x00", "file": (io.BytesIO(b"\x00" * 100), "a\x00.pdf")},
            headers=headers,
            content_type="multipart/form-data",
        )
        assert_answered_safely(multipart, f"{service} {method} {path} multipart")


def test_the_corpus_is_what_issue_8_reported():
    """The corpus keeps the probes of the issue (a guard against trimming it)."""
    bodies = [b if isinstance(b, str) else b.decode("latin-1") for _, b in CORPUS]
    assert DEEP in bodies and any("9" * 5001 in b for b in bodies)
    assert any("\\ud800" in b for b in bodies) and any("\x00" in b for b in bodies)
    assert {"application/merge-patch+json", "application/x-www-form-urlencoded", "text/plain"} <= {
        t for t, _ in CORPUS
    }
    assert json.loads(CORPUS[4][1].replace("\x00", "")) == {"id": "ab"}
