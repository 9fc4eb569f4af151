"""JSON log lines: context keys, and no personal data in any line."""

import io
import json
import logging

import pytest
import structlog

import coc_shared.logging as coc_logging
from coc_shared.logging import bound_log_fields, configure_logging, get_logger

EMAIL = "emilie.dupont+coc@example.org"
PHONES = [
    "+33612345678",
    "+33 6 12 34 56 78",
    "06 12 34 56 78",
    "06.12.34.56.78",
    "+44 20-7946-0958",
]
FIRST, LAST = "Émilie", "Dupont-Lefèvre"
PERSONAL_VALUES = [EMAIL, FIRST, LAST, "1 rue de la Paix", "75002", *PHONES]




def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def assert_no_personal_data(stream):
    text = stream.getvalue()
    decoded = json.dumps(lines(stream), ensure_ascii=False)  # \u-escaped names too
    for value in PERSONAL_VALUES:
        assert value not in text and value not in decoded, f"{value!r} reached a log line: {text}"


def test_a_line_is_one_json_object_with_level_timestamp_and_service(log_stream):
    get_logger("t").info("order.accepted", items=3)
    [line] = lines(log_stream)
    assert line["event"] == "order.accepted" and line["items"] == 3
    assert line["level"] == "info" and line["service"] == "test-svc"
    assert line["timestamp"].endswith("Z")


def test_context_keys_appear_on_every_line_of_the_block(log_stream):
    log = get_logger("t")
    with bound_log_fields(
        correlation_id="corr-1",
        event_id="0b9f4c1e-4a8e-4c5e-9a57-2f3d8c1e7a10",
        order_id="12345678-1234-1234-1234-123456789012",
    ):
        log.info("first")
        log.warning("second")
    log.info("after")
    first, second, after = lines(log_stream)
    for line in (first, second):
        assert line["service"] == "test-svc"
        assert line["correlation_id"] == "corr-1"
        assert line["event_id"] == "0b9f4c1e-4a8e-4c5e-9a57-2f3d8c1e7a10"
        assert (
            line["order_id"] == "12345678-1234-1234-1234-123456789012"
        )  # digits, yet not masked as a phone
    assert (
        "correlation_id" not in after and "event_id" not in after and after["service"] == "test-svc"
    )


def test_none_values_are_not_bound(log_stream):
    with bound_log_fields(correlation_id="c", order_id=None):
        get_logger().info("x")
    [line] = lines(log_stream)
    assert "order_id" not in line


def test_personal_keys_are_redacted(log_stream):
    get_logger().info(
        "customer.registered",
        email=EMAIL,
        phone=PHONES[0],
        first_name=FIRST,
        last_name=LAST,
        name=f"{FIRST} {LAST}",
        address="1 rue de la Paix, 75002 Paris",
        postal_code="75002",
        Email=EMAIL,
    )
    assert_no_personal_data(log_stream)
    [line] = lines(log_stream)
    assert line["email"] == line["first_name"] == line["Email"] == "[redacted]"


@pytest.mark.parametrize("phone", PHONES)
def test_emails_and_phones_inside_text_are_masked(log_stream, phone):
    get_logger().warning(
        f"mail to {EMAIL} bounced",
        detail=f"customer called from {phone} about {EMAIL}",
        error=f"SMTP 550 <{EMAIL}>",
    )
    assert_no_personal_data(log_stream)
    [line] = lines(log_stream)
    assert "[email]" in line["event"] and "[phone]" in line["detail"] and "[email]" in line["error"]


def test_nested_personal_dicts_and_lists_are_scrubbed(log_stream):
    personal = {
        "first_name": FIRST,
        "last_name": LAST,
        "email": EMAIL,
        "phone": PHONES[1],
        "shipping_address": {"line1": "1 rue de la Paix", "postal_code": "75002", "city": "Paris"},
    }
    get_logger().info(
        "event.received",
        personal=personal,
        payload={
            "order_id": "o-1",
            "customer": personal,
            "notes": [f"call {PHONES[2]}", EMAIL],
            "contacts": [{"email": EMAIL, "name": FIRST}],
        },
    )
    assert_no_personal_data(log_stream)
    [line] = lines(log_stream)
    assert line["personal"] == "[redacted]"
    assert line["payload"]["order_id"] == "o-1"
    assert line["payload"]["customer"]["email"] == "[redacted]"
    assert line["payload"]["contacts"] == [{"email": "[redacted]", "name": "[redacted]"}]


def test_exceptions_are_logged_without_personal_data(log_stream):
    try:
        raise ValueError(f"no account for {EMAIL} / {PHONES[0]}")
    except ValueError:
        get_logger().exception("lookup.failed")
    assert_no_personal_data(log_stream)
    [line] = lines(log_stream)
    assert "ValueError" in line["exception"] and "Traceback" in line["exception"]


def test_standard_library_logs_are_json_and_scrubbed(log_stream):
    with bound_log_fields(correlation_id="corr-9"):
        logging.getLogger("werkzeug").warning("request from %s with phone %s", EMAIL, PHONES[0])
    assert_no_personal_data(log_stream)
    [line] = lines(log_stream)
    assert (
        line["service"] == "test-svc"
        and line["correlation_id"] == "corr-9"
        and line["level"] == "warning"
    )


def test_debug_lines_follow_the_level():
    stream = io.StringIO()
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level, configured = root.handlers[:], root.level, coc_logging._configured
    try:
        configure_logging("test-svc", level="WARNING", stream=stream)
        get_logger().info("hidden")
        get_logger().warning("shown")
        assert [line["event"] for line in lines(stream)] == ["shown"]
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
        coc_logging._configured = configured


# bugs ----------------------------------------------------------------------------------------


def test_standard_library_exceptions_are_scrubbed(log_stream):
    try:
        raise ValueError(f"no account for {EMAIL} / {PHONES[0]}")
    except ValueError:
        logging.getLogger("kombu").error("callback failed", exc_info=True)
    assert_no_personal_data(log_stream)


def test_a_dict_with_non_string_keys_can_be_logged(log_stream):
    get_logger().info("batch.sizes", sizes={1: 10, 2: 20})
    [line] = lines(log_stream)
    assert line["sizes"] == {"1": 10, "2": 20}


def test_dates_and_names_with_digits_are_not_masked(log_stream):
    get_logger().info(
        "account.erased",
        until="2036-12-31",
        first_failed_at="2026-11-27T10:00:00+00:00",
        queue="t20261127123.coc.orders",
    )
    [line] = lines(log_stream)
    assert line["until"] == "2036-12-31"
    assert line["first_failed_at"] == "2026-11-27T10:00:00+00:00"
    assert line["queue"] == "t20261127123.coc.orders"


def test_a_line_written_in_a_worker_thread_names_its_service(log_stream):
    """Threads start without the context variables bound where logging was configured."""
    import threading

    thread = threading.Thread(target=lambda: get_logger("t").info("relay.line"))
    thread.start()
    thread.join()
    [line] = lines(log_stream)
    assert line["service"] == "test-svc"


def test_a_request_about_an_order_logs_in_the_order_s_story(log_stream):
    from flask import Flask

    from coc_shared.http import bind_order_story, install_common

    app = Flask("t")
    install_common(app)

    @app.get("/v1/orders/<order_id>")
    def one(order_id):
        get_logger("t").info("order.read")
        return {"ok": True}

    @app.post("/v1/orders")
    def place():
        get_logger("t").info("order.checked")
        bind_order_story("order-77")
        get_logger("t").info("order.placed")
        return {"ok": True}

    client = app.test_client()
    client.get("/v1/orders/order-42", headers={"X-Correlation-ID": "req-1"})
    client.post("/v1/orders", headers={"X-Correlation-ID": "req-2"})
    client.get("/healthz-nothing", headers={"X-Correlation-ID": "req-3"})
    read, checked, placed = (
        line for line in lines(log_stream) if line["event"].startswith("order.")
    )
    assert (read["correlation_id"], read["order_id"], read["request_id"]) == (
        "order-42",
        "order-42",
        "req-1",
    )
    assert (checked["correlation_id"], checked["request_id"]) == ("req-2", "req-2")
    assert (placed["correlation_id"], placed["order_id"], placed["request_id"]) == (
        "order-77",
        "order-77",
        "req-2",
    )
    assert structlog.contextvars.get_contextvars().get("order_id") is None  # nothing left behind
