"""Mails rendered from Jinja2 templates into ``multipart/alternative`` messages.

Templates live in ``templates/<locale>/`` (French, ``fr``, is the only locale so far, and the
fallback of any other): for each template ``<name>.txt`` (its ``subject`` block and the plain-text
body) and ``<name>.html`` (the HTML body, autoescaped, its CSS inlined into ``style`` attributes by
css-inline). Transactional mails extend ``base.txt``/``base.html``, marketing mails
``marketing.txt``/``marketing.html``, which add the unsubscribe footer: nothing marketing can reach
a transactional mail.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import format_datetime as rfc2822_date
from email.utils import formataddr
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from coc_shared.envelope import utcnow

from ..domain import formatting

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    """One Jinja2 environment per locale (templates compiled once, then cached)."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR):
        self.templates_dir = templates_dir
        self._environments: dict[str, Environment] = {}
        self._inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)

    def environment(self, locale: str) -> Environment:
        env = self._environments.get(locale)
        if env is None:
            folders = [self.templates_dir / locale]
            if locale != "fr":
                folders.append(self.templates_dir / "fr")
            env = Environment(
                loader=FileSystemLoader([str(f) for f in folders if f.is_dir()]),
                autoescape=select_autoescape(["html"], default_for_string=True),
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
            )
            env.filters.update(
                amount=lambda cents, currency="EUR": formatting.format_amount(
                    cents, currency, locale
                ),
                datetime=lambda value: formatting.format_datetime(value, locale),
                date=lambda value: formatting.format_date(value, locale),
                document=lambda kind: formatting.document_label(kind, locale),
                payment_method=lambda method: formatting.payment_method_label(method, locale),
                carrier=formatting.carrier_name,
                retained=lambda category: formatting.retained_label(category, locale),
            )
            self._environments[locale] = env
        return env

    def render(self, template: str, locale: str, context: dict) -> Rendered:
        env = self.environment(locale)
        text_template = env.get_template(f"{template}.txt")
        ctx = text_template.new_context(context)
        subject = "".join(text_template.blocks["subject"](ctx))
        text = text_template.render(context)
        html = env.get_template(f"{template}.html").render(context)
        return Rendered(
            subject=_LINE_BREAKS.sub(" ", subject).strip(),
            text=_BLANK_LINES.sub("\n\n", text).strip() + "\n",
            html=self._inliner.inline(html),
        )


def _clean(value: str | None) -> str:
    return _LINE_BREAKS.sub(" ", value or "").strip()


def _encoded_words(text: str) -> str:
    """``text`` as a header value: itself when ASCII, else RFC 2047 encoded words (base64, at most
    75 characters each, never cutting a character), folded."""
    if text.isascii():
        return text
    words, chunk = [], b""
    for char in text:
        raw = char.encode("utf-8")
        if len(chunk) + len(raw) > 45:
            words.append(chunk)
            chunk = b""
        chunk += raw
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)


def _mailbox(name: str | None, address: str) -> str:
    name = _clean(name)
    if not name:
        return address.strip()
    shown = _encoded_words(name) if not name.isascii() else formataddr((name, "x@x"))[:-6]
    return f"{shown} <{address.strip()}>"


def _quoted_printable(text: str) -> bytes:
    """``text`` in UTF-8, quoted-printable (lines of at most 76 characters), CRLF line ends."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    encoded = b"\n".join(binascii.b2a_qp(line.encode("utf-8"), istext=False) for line in lines)
    return encoded.replace(b"\n", b"\r\n")


def build_message(
    rendered: Rendered,
    *,
    sender: Address,
    to_address: str,
    to_name: str | None,
    message_id: str,
    headers: dict[str, str] | None = None,
) -> bytes:
    """The ``multipart/alternative`` message (plain text first, HTML second), as the bytes sent:
    CRLF line ends, quoted-printable UTF-8 bodies (7-bit clean, for servers without 8BITMIME),
    RFC 2047 encoded words for non-ASCII header values. Written directly (a fixed structure): the
    email package's generators cost more than rendering the templates; the tests read every
    template's message back with the email package."""
    boundary = f"=_coc_{uuid.uuid4().hex}"
    lines = [
        f"From: {_mailbox(sender.display_name, sender.addr_spec)}",
        f"To: {_mailbox(to_name, to_address)}",
        f"Subject: {_encoded_words(_clean(rendered.subject))}",
        f"Date: {rfc2822_date(utcnow())}",
        f"Message-ID: {message_id}",
        *(f"{name}: {_clean(value)}" for name, value in (headers or {}).items()),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
    ]
    head = "\r\n".join(lines).encode("ascii") + b"\r\n"
    parts = []
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        parts.append(
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii")
            + _quoted_printable(body)
            + b"\r\n"
        )
    return head + b"".join(parts) + f"--{boundary}--\r\n".encode("ascii")
