"""Mails rendered from Jinja2 templates into ``multipart/alternative`` messages.

Templates live in ``templates/<locale>/`` (French, ``fr``, is the only locale so far, and the
fallback of any other): for each template ``<name>.txt`` (its ``subject`` block and the plain-text
body) and ``<name>.html`` (the HTML body, autoescaped, its CSS inlined into ``style`` attributes by
css-inline). Transactional mails extend ``base.txt``/``base.html``, marketing mails
``marketing.txt``/``marketing.html``, which add the unsubscribe footer: nothing marketing can reach
a transactional mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime as rfc2822_date
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from coc_shared.envelope import utcnow

from ..domain import formatting

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# CRLF line ends; headers folded at RFC 5322's hard limit (998), not at 78: the email package's
# folding at 78 puts a long subject's first word on a line of its own (a leading space once read)
WIRE_POLICY = SMTP.clone(max_line_length=998)


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


def build_message(
    rendered: Rendered,
    *,
    sender: Address,
    to_address: str,
    to_name: str | None,
    message_id: str,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """The ``multipart/alternative`` message (plain text first, HTML second)."""
    local, _, domain = to_address.strip().rpartition("@")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = Address(display_name=_clean(to_name), username=local, domain=domain)
    message["Subject"] = rendered.subject
    message["Date"] = rfc2822_date(utcnow())
    message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    # quoted-printable: 7-bit clean, for servers that do not offer 8BITMIME
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message
