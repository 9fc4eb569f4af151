"""Helpers of the notifications tests: a real SMTP server (aiosmtpd, in a thread) that records
what it receives and answers as a test tells it (refuse a recipient, answer 4xx first, hold an
answer, de-duplicate by Message-ID, STARTTLS or implicit TLS, AUTH), a certificate for it, the
parsing of what it received with the ``email`` package, and a renderer checking each mail's HTML
against the CSS inlined into it after rendering."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import css_inline
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from jinja2 import FileSystemLoader

from coc_notifications.adapters.rendering import Renderer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def message_id(self) -> str:
        return self.message["Message-ID"]


@dataclass
class Behaviour:
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> "550 ..."
    data_answers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    hold_seconds: dict[str, float] = field(default_factory=dict)  # stored, then answered late
    dedupe: bool = False


class _Handler:
    def __init__(self, server: SmtpTestServer):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refused = self.server.behaviour.refuse_rcpt.get(address)
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0]
        answers = self.server.behaviour.data_answers.get(rcpt)
        if answers:
            return answers.pop(0)
        raw = envelope.original_content or envelope.content
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(raw))
        with self.server.lock:
            self.server.deliveries.append(received)
            mid = received.message_id
            duplicate = self.server.behaviour.dedupe and mid in self.server.by_id
            if not duplicate:
                self.server.by_id[mid] = received
                self.server.stored.append(received)
        hold = self.server.behaviour.hold_seconds.get(rcpt)
        if hold:
            self.server.holding.set()
            await asyncio.sleep(hold)
        if duplicate:
            return "250 2.0.0 duplicate of a message already received, ignored"
        return f"250 2.0.0 Ok: queued as Q{len(self.server.stored)}"


class SmtpTestServer:
    """``stored``: the messages kept (one per Message-ID when de-duplicating); ``deliveries``:
    every DATA received, duplicates included."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
    ):
        self.behaviour = behaviour or Behaviour()
        self.port = free_port()
        self.lock = threading.Lock()
        self.deliveries: list[Received] = []
        self.stored: list[Received] = []
        self.by_id: dict[str, Received] = {}
        self.holding = threading.Event()
        self.logins: list[str] = []
        kwargs = {}
        if tls_context is not None and implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if credentials is not None:

            def authenticate(server, session, envelope, mechanism, auth_data):
                ok = (auth_data.login.decode(), auth_data.password.decode()) == credentials
                if ok:
                    self.logins.append(auth_data.login.decode())
                return AuthResult(success=ok)

            kwargs.update(authenticator=authenticate, auth_require_tls=True)
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True, **kwargs
        )

    def start(self) -> SmtpTestServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Received]:
        return [r for r in self.stored if address in r.rcpt_tos]


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (its own CA) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coc test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def parts(message) -> tuple[str, str]:
    """(plain text, HTML) of a multipart/alternative message."""
    assert message.get_content_type() == "multipart/alternative", message.get_content_type()
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return plain, html


# The notifications settings of the tests (imported by conftest.py and the tests: test modules
# never import conftest, whose name every test folder shares).
UNSUBSCRIBE_SECRET = "unsubscribe-secret-" + "u" * 32
IBAN, BIC = "FR7630006000011234567890189", "AGRIFRPP"
STOREFRONT = "https://shop.coc.example"
PUBLIC = "https://api.coc.example/notifications"


def mail_settings(smtp_port: int, **more) -> dict:
    """The notifications variables of a test (raw texts, as ``Settings.extra``)."""
    values = {
        "NOTIFICATIONS_SMTP_SERVER": f"127.0.0.1:{smtp_port}",
        "NOTIFICATIONS_SMTP_SECURITY": "none",
        "NOTIFICATIONS_SMTP_TIMEOUT": "5",
        "NOTIFICATIONS_SMTP_RETRY_DELAYS": "0.2,0.4,0.8",
        "NOTIFICATIONS_SEND_POLL_SECONDS": "0.1",
        "NOTIFICATIONS_MAIL_FROM": "COC <commandes@coc.example>",
        "NOTIFICATIONS_STOREFRONT_URL": STOREFRONT,
        "NOTIFICATIONS_PUBLIC_URL": PUBLIC,
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET,
        "NOTIFICATIONS_TRANSFER_IBAN": IBAN,
        "NOTIFICATIONS_TRANSFER_BIC": BIC,
        "NOTIFICATIONS_TRANSFER_BENEFICIARY": "COC SAS",
    }
    values.update(more)
    return values


class CheckedRenderer(Renderer):
    """The service's renderer (CSS inlined once into each template), checking every mail it renders
    against the same template rendered from its plain source and inlined afterwards, as one HTML
    document: the same elements, text and styles (both serialized by css-inline's parser)."""

    def __init__(self):
        super().__init__()
        self.reference = _PlainRenderer()
        self.checked: list[str] = []

    def render(self, template: str, locale: str, context: dict):
        rendered = super().render(template, locale, context)
        plain = self.reference.render(template, locale, context)
        assert "<style" in plain.html  # the reference's CSS is inlined below, as a whole document
        reparse = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
        assert _tree(reparse.inline(rendered.html)) == _tree(reparse.inline(plain.html)), template
        assert (rendered.subject, rendered.text) == (plain.subject, plain.text)
        self.checked.append(template)
        return rendered


def _tree(html: str) -> list[tuple]:
    """The parsed document: tags with their attributes in name order, text with references
    resolved."""
    items: list[tuple] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            items.append(("start", tag, sorted(attrs)))

        def handle_endtag(self, tag):
            items.append(("end", tag))

        def handle_data(self, data):
            items.append(("text", data))

        def handle_comment(self, data):
            items.append(("comment", data))

    parser = Parser(convert_charrefs=True)
    parser.feed(html)
    parser.close()
    return items


class _PlainRenderer(Renderer):
    def loader(self, folders):
        return FileSystemLoader([str(f) for f in folders])
