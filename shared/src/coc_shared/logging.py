"""JSON-lines logging with structlog.

Every line carries ``service`` and, where known, ``correlation_id``, ``event_id`` and ``order_id``
(bound with ``bind_context``). Personal data never reaches a log line: keys that name personal
data are dropped and e-mail addresses or phone numbers inside strings are masked.
"""

from __future__ import annotations

import logging
import re
import sys
from contextlib import contextmanager

import structlog

PERSONAL_KEYS = frozenset(
    {
        "personal",
        "email",
        "e_mail",
        "phone",
        "telephone",
        "first_name",
        "last_name",
        "name",
        "full_name",
        "address",
        "shipping_address",
        "billing_address",
        "street",
        "postal_code",
        "city",
        "password",
        "iban",
        "card_number",
        "pan",
        "ip",
        "user_agent",
    }
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
# International numbers (E.164 as stored, or spaced) and French national ones; not dates or ids.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}(?:[ .-]?\d){6,12}|0[1-9](?:[ .-]?\d{2}){4})(?![\w-])")


_PERSONAL_SUFFIXES = ("_email", "_phone", "_address", "_iban", "customer_name", "holder_name")


def _is_personal_key(key) -> bool:
    key = str(key).lower()
    return key in PERSONAL_KEYS or key.endswith(_PERSONAL_SUFFIXES)


def _scrub_value(value):
    if isinstance(value, str):
        return _PHONE.sub("[phone]", _EMAIL.sub("[email]", value))
    if isinstance(value, dict):
        return {
            k: ("[redacted]" if _is_personal_key(k) else _scrub_value(v)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v) for v in value]
    return value


# Event ids, order ids and timestamps look like phone numbers to _PHONE; they are left as they are.
_SAFE_KEYS = frozenset(
    {
        "event_id",
        "order_id",
        "correlation_id",
        "causation_id",
        "timestamp",
        "message_id",
        "subject",
        "delivery_tag",
        "attempt",
        "count",
        "seconds",
        "parked_id",
        "host",
        "pid",
    }
)


def scrub_text(text: str) -> str:
    """``text`` (an error message shown to staff) with e-mail addresses and phone numbers masked,
    as the log lines have them."""
    return _scrub_value(text)


def scrub_personal_data(_logger, _method, event_dict):
    for key in list(event_dict):
        if _is_personal_key(key):
            event_dict[key] = "[redacted]"
        elif key not in _SAFE_KEYS:
            event_dict[key] = _scrub_value(event_dict[key])
    return event_dict


_configured: str | None = None


def add_service(_logger, _method, event_dict):
    """Every line names its service, in whatever thread it is written (threads do not inherit
    the context variables bound where logging was configured)."""
    if _configured is not None:
        event_dict.setdefault("service", _configured)
    return event_dict


def configure_logging(service: str, level: str = "INFO", stream=None) -> None:
    """Configure structlog (and the stdlib root logger) to write JSON lines to stderr."""
    global _configured
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    already = _configured is not None
    _configured = service
    if already and stream is None:
        return
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_service,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub_personal_data,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Library logs (kombu, werkzeug, alembic) go through the same JSON renderer.
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                add_service,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,  # render the traceback before scrubbing it
                scrub_personal_data,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    logging.getLogger("amqp").setLevel(logging.WARNING)
    logging.getLogger("kombu").setLevel(logging.WARNING)


def get_logger(name: str | None = None):
    return structlog.get_logger(name)


def bind_story(order_id: str) -> None:
    """From here on, the current request's or handler's lines belong to ``order_id``'s story (its
    correlation id), e.g. once a request has placed the order."""
    structlog.contextvars.bind_contextvars(correlation_id=order_id, order_id=order_id)


def in_service(service: str, target):
    """``target`` for a thread of ``service``: its lines name that service even where one process
    runs several (the embedded mode; a new thread starts with no context variables)."""

    def run(*args, **kwargs):
        structlog.contextvars.bind_contextvars(service=service)
        return target(*args, **kwargs)

    return run


@contextmanager
def bound_log_fields(**values):
    """Bind context keys (correlation_id, event_id, order_id) for the duration of a block."""
    values = {k: v for k, v in values.items() if v is not None}
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
