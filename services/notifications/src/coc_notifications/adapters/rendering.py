"""Mails rendered from Jinja2 templates into ``multipart/alternative`` messages.

Templates live in ``templates/<locale>/`` (French, ``fr``, is the only locale so far, and the
fallback of any other): for each template ``<name>.txt`` (its ``subject`` block and the plain-text
body) and ``<name>.html`` (the HTML body, autoescaped, its CSS inlined into ``style`` attributes by
css-inline). Transactional mails extend ``base.txt``/``base.html``, marketing mails
``marketing.txt``/``marketing.html``, which add the unsubscribe footer: nothing marketing can reach
a transactional mail.

The CSS is inlined once per template, into its source, when Jinja2 loads it (``InliningLoader``),
not into every mail: the values a mail adds are text and attribute values, never elements, so the
styles of its elements are the template's. The Jinja2 syntax is kept out of the HTML parser's way
(comments between elements, plain words inside tags and ``<title>``) and put back after.
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
from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from coc_shared.envelope import utcnow

from ..domain import formatting

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_JINJA = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.S)
_MARKER = re.compile(r"<!--cocjinja(\d+)x-->|cocjinja(\d+)x")
_EXTENDS = re.compile(r"\{%-?\s*extends\s+[\"']([^\"']+)[\"']\s*-?%\}")
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_RAW_TEXT = ("title", "textarea", "style", "script")  # no comment markers inside these


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class _Position:
    """Where a text stops in HTML: inside a tag (and in which quote), inside a raw-text element."""

    def __init__(self):
        self.in_tag, self.quote, self.raw, self.name = False, None, None, ""

    @property
    def inline(self) -> bool:
        return bool(self.in_tag or self.raw)

    def feed(self, text: str) -> None:
        for i, char in enumerate(text):
            if self.in_tag:
                self._in_tag(char)
            elif self.raw:
                if text[i : i + 2 + len(self.raw)].lower() == f"</{self.raw}":
                    self.raw, self.in_tag, self.name = None, True, ""
            elif char == "<" and (text[i + 1 : i + 2].isalpha() or text[i + 1 : i + 2] in "/!"):
                name = _TAG_NAME.match(text, i + 1)
                self.in_tag, self.name = True, name.group().lower() if name else ""

    def _in_tag(self, char: str) -> None:
        if self.quote:
            if char == self.quote:
                self.quote = None
        elif char in "\"'":
            self.quote = char
        elif char == ">":
            self.in_tag = False
            if self.name in _RAW_TEXT:
                self.raw = self.name


def _protect(source: str) -> tuple[str, list[str]]:
    """``source`` with each Jinja2 tag, expression and comment replaced by a marker the HTML parser
    keeps where it is (an HTML comment between elements, a plain word inside a tag or a raw-text
    element), and the replaced texts."""
    out: list[str] = []
    saved: list[str] = []
    where = _Position()
    position = 0
    for match in _JINJA.finditer(source):
        where.feed(source[position : match.start()])
        out.append(source[position : match.start()])
        index = len(saved)
        saved.append(match.group())
        out.append(f"cocjinja{index}x" if where.inline else f"<!--cocjinja{index}x-->")
        position = match.end()
    out.append(source[position:])
    return "".join(out), saved


def _restore(html: str, saved: list[str], name: str) -> str:
    put: list[int] = []

    def back(match) -> str:
        index = int(match.group(1) or match.group(2))
        put.append(index)
        return saved[index]

    html = _MARKER.sub(back, html)
    if sorted(put) != list(range(len(saved))):
        raise ValueError(f"{name}: the CSS inliner moved or dropped Jinja2 syntax")
    return html


class InliningLoader(BaseLoader):
    """``loader``'s sources, the ``.html`` ones with the CSS of their layout inlined: a layout
    (a whole document with its ``<style>``) inlined as a document, a template extending one as a
    fragment with the layout's CSS."""

    def __init__(self, loader: BaseLoader, inliner: css_inline.CSSInliner):
        self.loader = loader
        self.inliner = inliner

    def get_source(self, environment, template):
        source, filename, uptodate = self.loader.get_source(environment, template)
        if template.endswith(".html"):
            protected, saved = _protect(source)
            if _EXTENDS.search(source):
                html = self.inliner.inline_fragment(protected, self._css(environment, source))
            else:
                html = self.inliner.inline(protected)
            source = _restore(html, saved, template)
        return source, filename, uptodate

    def _css(self, environment, source: str) -> str:
        """The CSS of the layout at the root of ``source``'s ``extends`` chain."""
        seen: set[str] = set()
        while (parent := _EXTENDS.search(source)) and parent.group(1) not in seen:
            seen.add(parent.group(1))
            source = self.loader.get_source(environment, parent.group(1))[0]
        return "\n".join(_STYLE.findall(source))

    def list_templates(self):
        return self.loader.list_templates()


class Renderer:
    """One Jinja2 environment per locale (templates compiled once, with their CSS inlined once,
    then cached)."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR):
        self.templates_dir = templates_dir
        self._environments: dict[str, Environment] = {}
        self._inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)

    def loader(self, folders: list[Path]) -> BaseLoader:
        return InliningLoader(FileSystemLoader([str(f) for f in folders]), self._inliner)

    def environment(self, locale: str) -> Environment:
        env = self._environments.get(locale)
        if env is None:
            folders = [self.templates_dir / locale]
            if locale != "fr":
                folders.append(self.templates_dir / "fr")
            env = Environment(
                loader=self.loader([f for f in folders if f.is_dir()]),
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
        ctx = text_template.new_context(context)  # one context for the subject and the text
        subject = "".join(text_template.blocks["subject"](ctx))
        text = env.concat(text_template.root_render_func(ctx))
        html = env.get_template(f"{template}.html").render(context)
        return Rendered(
            subject=_LINE_BREAKS.sub(" ", subject).strip(),
            text=_BLANK_LINES.sub("\n\n", text).strip() + "\n",
            html=html,
        )


def _clean(value: str | None) -> str:
    return _LINE_BREAKS.sub(" ", value or "").strip()


def _encoded_words(text: str) -> str:
    """``text`` as a header value: itself when ASCII, else RFC 2047 encoded words (base64, at most
    75 characters each, never cutting a character), folded."""
    if text.isascii():
        return text
    data = text.encode("utf-8")
    words, start = [], 0
    while len(data) - start > 45:
        end = start + 45
        while data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte: the word ends before it
            end -= 1
        words.append(data[start:end])
        start = end
    words.append(data[start:])
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)


def _mailbox(name: str | None, address: str) -> str:
    name = _clean(name)
    if not name:
        return address.strip()
    shown = _encoded_words(name) if not name.isascii() else formataddr((name, "x@x"))[:-6]
    return f"{shown} <{address.strip()}>"


def _qp_unchanged(line: str) -> bool:
    """Whether quoted-printable leaves ``line`` as it is (short printable ASCII, no ``=``, no
    trailing space, not a lone dot): it is then not run through the encoder."""
    return (
        len(line) < 76
        and line.isascii()
        and line.isprintable()
        and "=" not in line
        and line[-1:] != " "
        and line != "."
    )


def _quoted_printable(text: str) -> bytes:
    """``text`` in UTF-8, quoted-printable (lines of at most 76 characters), CRLF line ends."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    encoded = b"\n".join(
        line.encode("ascii")
        if _qp_unchanged(line)
        else binascii.b2a_qp(line.encode("utf-8"), istext=False)
        for line in lines
    )
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
