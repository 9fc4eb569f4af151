"""Sending through a real SMTP server with ``smtplib``: STARTTLS or implicit TLS (the server's
certificate and host name checked), optional AUTH (only over TLS), timeouts, and one connection
reused for every mail of a batch (and the next batches while there is work).

Each mail is one SMTP transaction (MAIL FROM, RCPT TO, DATA) whose answer is classified:

* ``sent`` — 250 to DATA; the answer is kept (it often names the server's queue id);
* ``temporary`` — a 4xx answer: try again later (421 also closes the connection);
* ``permanent`` — a 5xx answer: the mail fails and is listed for staff;
* ``unreachable`` — no connection, or the connection broke: nothing is known of this mail; it
  is sent again later with the same Message-ID.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass

from coc_shared.logging import get_logger

log = get_logger(__name__)

SENT, TEMPORARY, PERMANENT, UNREACHABLE = "sent", "temporary", "permanent", "unreachable"
_LEADING_DOT = re.compile(rb"(?m)^\.")  # dot-stuffing (RFC 5321 4.5.2), as smtplib.data does


@dataclass(frozen=True)
class SendResult:
    outcome: str
    answer: str
    code: int | None = None


def _answer(code: int | None, text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip() if code is not None else str(text)


def _classify(code: int, text) -> SendResult:
    outcome = TEMPORARY if 400 <= code < 500 else PERMANENT
    return SendResult(outcome, _answer(code, text), code)


class SmtpTransport:
    def __init__(
        self,
        host: str,
        port: int,
        security: str = "starttls",
        timeout: float = 10.0,
        username: str = "",
        password: str = "",
        ca_file: str = "",
    ):
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.security = host, port, security
        self.timeout = timeout
        self.username, self.password = username, password
        self.ca_file = ca_file
        self._smtp: smtplib.SMTP | None = None
        self.connections = 0  # connections opened since the start (the benchmark reads it)

    @classmethod
    def from_config(cls, config) -> SmtpTransport:
        return cls(
            config.smtp_host,
            config.smtp_port,
            config.smtp_security,
            config.smtp_timeout,
            config.smtp_username,
            config.smtp_password,
            config.smtp_ca_file,
        )

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._tls_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if self.username:
                if self.security == "none":
                    raise smtplib.SMTPNotSupportedError("AUTH is only sent over TLS")
                smtp.login(self.username, self.password)
        except BaseException:
            smtp.close()
            raise
        self.connections += 1
        log.info("smtp.connected", smtp_host=self.host, smtp_port=self.port, security=self.security)
        return smtp

    def connect(self) -> SendResult | None:
        """Open the connection unless it is open; a ``SendResult`` when that failed."""
        if self._smtp is not None:
            return None
        try:
            self._smtp = self._connect()
        except smtplib.SMTPResponseException as exc:
            return _classify(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult(UNREACHABLE, f"{type(exc).__name__}: {exc}"[:500])
        return None

    def send(self, message: bytes, sender: str, recipient: str, meanwhile=None) -> SendResult:
        """One SMTP transaction. ``meanwhile`` (no arguments) is called once the message's data is
        written, while the server takes it in, before its answer is read (the sender prepares its
        next mail there); it is not called when the message was not sent that far."""
        failed = self.connect()
        if failed is not None:
            if failed.outcome != UNREACHABLE:
                # refused at the greeting or the authentication: it concerns every mail
                return SendResult(
                    TEMPORARY if failed.outcome == TEMPORARY else UNREACHABLE,
                    failed.answer,
                    failed.code,
                )
            return failed
        smtp = self._smtp
        options = ["SMTPUTF8"] if not (sender + recipient).isascii() else []
        try:
            code, text = smtp.mail(sender, options)
            if code != 250:
                return self._refused(code, text)
            code, text = smtp.rcpt(recipient)
            if code not in (250, 251):
                return self._refused(code, text)
            code, text = self._data(smtp, message, meanwhile)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (not 354)
            return self._refused(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return SendResult(UNREACHABLE, f"{type(exc).__name__}: {exc}"[:500])
        if code == 250:
            return SendResult(SENT, _answer(code, text), code)
        return self._refused(code, text)

    @staticmethod
    def _data(smtp: smtplib.SMTP, message: bytes, meanwhile) -> tuple[int, bytes]:
        """``smtp.data(message)`` (DATA, 354, the dot-stuffed message and its end), calling
        ``meanwhile`` between writing the message and reading the server's answer."""
        smtp.putcmd("data")
        code, text = smtp.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, text)
        data = _LEADING_DOT.sub(b"..", message)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        smtp.send(data + b".\r\n")
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            code, text = smtp.getreply()
        return code, text

    def _refused(self, code: int, text) -> SendResult:
        result = _classify(code, text)
        if code == 421 or code < 0:
            self.close()  # the server is closing the connection
        else:
            try:
                self._smtp.rset()
            except (OSError, smtplib.SMTPException):
                self.close()
        return result

    def close(self) -> None:
        if self._smtp is None:
            return
        smtp, self._smtp = self._smtp, None
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
