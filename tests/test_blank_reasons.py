"""A reason made of spaces only is a 422 naming the field on every route that asks for one (it
used to pass the schema and be refused later by the use case, as a 500)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import make_stack

ROUTES = [
    ("notifications", "/v1/staff/mails/1/resend", {}),
    ("supplier-gateway", "/v1/staff/supplier-requests/{id}/resend", {}),
    (
        "supplier-gateway",
        "/v1/staff/supplier-requests/{id}/shipment",
        {"carrier": "colissimo", "tracking_number": "6A12345678"},
    ),
    (
        "supplier-gateway",
        "/v1/staff/supplier-requests/{id}/replies",
        {"reply": {"kind": "accepted"}},
    ),
]


@pytest.fixture(scope="module")
def stack(settings_factory, tmp_path_factory):
    stack = make_stack(settings_factory, tmp_path_factory.mktemp("reasons"))
    yield stack
    stack.dispose()


@pytest.mark.parametrize(("service", "path", "body"), ROUTES)
@pytest.mark.parametrize("blank", [" ", "   \t\n  "])
def test_a_blank_reason_on_a_staff_route_is_a_422_naming_the_field(
    stack, service, path, body, blank
):
    answer = stack.client(service).post(
        path.format(id=uuid.uuid4()), json={**body, "reason": blank}, headers=stack.staff
    )
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert "reason" in answer.get_json()["error"]["fields"]


def test_a_blank_cancellation_reason_is_a_422_naming_the_field(stack):
    answer = stack.client("orders").post(
        f"/v1/orders/{stack.order_id}/cancellation", json={"reason": "  "}, headers=stack.customer
    )
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert "reason" in answer.get_json()["error"]["fields"]
