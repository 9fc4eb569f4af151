"""gunicorn's logs through the same scrubbing as the services' JSON logs (``coc_shared.logging``).

gunicorn writes its access log itself, outside structlog: by default each line holds the request
line with its query string (``?token=…`` order and e-mail-confirmation tokens), the referrer and
the user agent. ``AccessLogger`` writes each access line as one JSON object instead: method, path,
query string with its secrets redacted, status, size, duration and correlation id, passed through
``logging.scrub_personal_data`` (no referrer, user agent or client address: personal data). Its
error log (``Error handling request /path?token=…``) is redacted the same way.

Every service's gunicorn uses it (the Dockerfiles' commands, payments' ``gunicorn_conf``)::

    gunicorn --logger-class coc_shared.gunicorn.AccessLogger --access-logfile - …

or, in a configuration file, ``logger_class`` and ``accesslog`` from this module.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from gunicorn import glogging

from .logging import scrub_personal_data

# gunicorn configuration-file settings (``from coc_shared.gunicorn import accesslog, logger_class``)
logger_class = "coc_shared.gunicorn.AccessLogger"
accesslog = "-"

REDACTED = "[redacted]"
# Names of query parameters whose values are secrets (order and confirmation tokens, keys...).
_SECRET_NAME = re.compile(
    r"token|secret|passw|key|sig|code|auth|session|credential|jwt", re.IGNORECASE
)
# A secret-named parameter inside any text (a request line, a URL in an error message).
_SECRET_PARAM = re.compile(
    r"(?P<name>[\w.\-]*(?:token|secret|passw|key|sig|code|auth|session|credential|jwt)[\w.\-]*)"
    r"=(?P<value>[^&\s\"'#;]*)",
    re.IGNORECASE,
)
# JSON Web Tokens wherever they are (a bearer token pasted in a URL).
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_SERVICE = re.compile(r"coc_([a-z_]+)\.")


def redact_secrets(text: str) -> str:
    """``text`` with the values of secret-named parameters and any JWT replaced."""
    text = _SECRET_PARAM.sub(lambda m: f"{m.group('name')}={REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def scrub_query(query: str) -> str:
    """A query string, decoded (so that the log scrubber sees the e-mail addresses in it), with
    the values of its secret-named parameters redacted."""
    if not query:
        return ""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return redact_secrets(query)
    return redact_secrets(
        "&".join(f"{k}={REDACTED if _SECRET_NAME.search(k) else v}" for k, v in pairs)
    )


def service_of(cfg) -> str | None:
    """The service a gunicorn serves, from its application (``coc_orders.entrypoints.api:…``)."""
    for value in (getattr(cfg, "proc_name", None), getattr(cfg, "default_proc_name", None)):
        found = _SERVICE.search(value or "")
        if found:
            return found.group(1).replace("_", "-")
    return None


def access_event(resp, environ, request_time, service: str | None = None) -> dict:
    """The access line's fields, scrubbed."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    try:
        status = int(status)
    except (TypeError, ValueError):
        pass
    headers = dict(resp.headers or [])
    correlation_id = next((v for k, v in headers.items() if k.lower() == "x-correlation-id"), None)
    event = {
        "event": "http.access",
        "level": "info",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "logger": "gunicorn.access",
        "service": service,
        "method": environ.get("REQUEST_METHOD"),
        "path": redact_secrets(environ.get("PATH_INFO") or ""),
        "query": scrub_query(environ.get("QUERY_STRING") or ""),
        "status": status,
        "bytes": getattr(resp, "sent", None),
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "correlation_id": correlation_id,
    }
    return scrub_personal_data(None, "info", {k: v for k, v in event.items() if v is not None})


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


class AccessLogger(glogging.Logger):
    """gunicorn's logger: JSON access lines scrubbed as the JSON logs, error lines redacted."""

    def setup(self, cfg):
        super().setup(cfg)
        self.service = service_of(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(_RedactingFormatter(self.error_fmt, self.datefmt))
        for handler in self.access_log.handlers:
            handler.setFormatter(logging.Formatter("%(message)s"))

    def access(self, resp, req, environ, request_time):
        if not getattr(self, "access_log_enabled", self.cfg.accesslog is not None):
            return
        try:
            event = access_event(resp, environ, request_time, getattr(self, "service", None))
            self.access_log.info(json.dumps(event, ensure_ascii=False, default=str))
        except Exception as exc:  # a log line never breaks a request
            self.error(f"access log line failed: {type(exc).__name__}")
