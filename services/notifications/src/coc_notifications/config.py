"""The notifications service's own configuration: its environment variables, declared once here,
and the typed, frozen ``NotificationsConfig`` built from them once per runtime (``runtime.config``,
through ``ServiceDefinition.config``). Tests and ``make run`` pass the same names in
``Settings.extra``, which wins over the environment.

A value that cannot be read stops the start with an error naming the variable. Left unset:
``NOTIFICATIONS_MAIL_FROM`` holds every mail (the sender waits and says so),
``NOTIFICATIONS_UNSUBSCRIBE_SECRET`` refuses campaigns and answers 503 at the unsubscribe link, and
``NOTIFICATIONS_TRANSFER_IBAN``/``_BIC`` hold the order mails of transfers (retried, then failed
and listed for staff), since a customer paying by transfer must learn where to pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr

from coc_shared.config import (
    Variable,
    declare,
    integer,
    load,
    number,
    one_of,
    seconds_list,
    secret,
    text,
    url,
)
from coc_shared.transfer import bic, iban

HTTP_URL = url("http", "https")
SECURITY = ("starttls", "tls", "none")


def host_and_port(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:587`` for an IPv6 address) -> (host, port)."""
    host, _, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535 or " " in host:
        raise ValueError("expected host:port, e.g. smtp.example.com:587")
    return host, int(port)


def mailbox(value: str) -> str:
    """``Name <local@domain>`` or ``local@domain``."""
    name, address = parseaddr(value)
    local, _, domain = address.partition("@")
    if not local or "." not in domain or "\n" in value or "\r" in value:
        raise ValueError("expected an address such as 'COC <commandes@example.com>'")
    return value.strip()


VARIABLES = declare(
    Variable(
        "NOTIFICATIONS_SMTP_SERVER",
        "127.0.0.1:587",
        "`host:port` of the SMTP server the notifications service sends its mails through (your "
        "mail provider's relay, usually port 587 with STARTTLS or 465 with TLS; Mailpit in "
        "docker-compose, the local sandbox under `make run`).",
        host_and_port,
    ),
    Variable(
        "NOTIFICATIONS_SMTP_SECURITY",
        "starttls",
        "`starttls` (upgrade the connection, refusing a server that cannot), `tls` (implicit "
        "TLS) or `none` (plain text: a local server only). The server's certificate and host "
        "name are always checked.",
        one_of(*SECURITY),
    ),
    Variable(
        "NOTIFICATIONS_SMTP_CA_FILE",
        "",
        "CA certificate file the SMTP server's certificate must chain to; empty means the "
        "system's CAs.",
        text,
    ),
    Variable(
        "NOTIFICATIONS_SMTP_USERNAME",
        "",
        "User name of the SMTP server's authentication (AUTH); empty means no authentication.",
        text,
    ),
    Variable(
        "NOTIFICATIONS_SMTP_PASSWORD",
        "",
        "Password of the SMTP server's authentication, sent only over TLS.",
        text,
    ),
    Variable(
        "NOTIFICATIONS_SMTP_TIMEOUT",
        "10",
        "Seconds the sender waits for the SMTP server (connection and each answer).",
        number(0.1),
    ),
    Variable(
        "NOTIFICATIONS_SMTP_RETRY_DELAYS",
        "30,120,600,1800,3600,7200",
        "Seconds before each new attempt of a mail the SMTP server answered with a temporary "
        "error (4xx), comma-separated; after the last one the mail is failed and listed for "
        "staff. While the server cannot be reached at all, mails wait the last delay at most and "
        "never fail.",
        seconds_list,
    ),
    Variable(
        "NOTIFICATIONS_SEND_BATCH_SIZE",
        "50",
        "Mails the sender claims and sends on one SMTP connection per transaction.",
        integer(1, 1000),
    ),
    Variable(
        "NOTIFICATIONS_SEND_POLL_SECONDS",
        "1.0",
        "Longest wait of the sender between two looks for mails to send.",
        number(0.01),
    ),
    Variable(
        "NOTIFICATIONS_MAIL_FROM",
        None,
        "Sender of every mail, e.g. `COC <commandes@example.com>`; its domain also ends each "
        "Message-ID. Mails wait unsent without it.",
        mailbox,
    ),
    Variable(
        "NOTIFICATIONS_STOREFRONT_URL",
        "http://127.0.0.1:8001",
        "Public base URL of the storefront that mails link to (`/orders/{id}`, its documents "
        "and payment pages, `/login`).",
        HTTP_URL,
    ),
    Variable(
        "NOTIFICATIONS_PUBLIC_URL",
        "http://127.0.0.1:8004",
        "Public base URL of the notifications API, where marketing mails' one-click unsubscribe "
        "links point (`/v1/unsubscribe/{token}`).",
        HTTP_URL,
    ),
    Variable(
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET",
        None,
        "Secret that signs the one-click unsubscribe links of marketing mails (HMAC-SHA-256). "
        "Campaigns are refused and the links answer 503 without it.",
        secret(32),
    ),
    Variable(
        "NOTIFICATIONS_TRANSFER_IBAN",
        None,
        "IBAN that the order mail of a transfer tells the customer to pay to: the payments "
        "service's TRANSFER_IBAN (docker-compose passes the same value to both).",
        iban,
    ),
    Variable(
        "NOTIFICATIONS_TRANSFER_BIC",
        None,
        "BIC shown with that IBAN (the payments service's TRANSFER_BIC).",
        bic,
    ),
    Variable(
        "NOTIFICATIONS_TRANSFER_BENEFICIARY",
        "COC",
        "Beneficiary name shown with that IBAN (the payments service's TRANSFER_BENEFICIARY).",
        text,
    ),
    Variable(
        "NOTIFICATIONS_RECIPIENT_RETENTION_DAYS",
        "30",
        "Days after an order's story ends (delivered, cancelled or refunded) before the address "
        "and first name kept to mail its customer are erased.",
        integer(0),
    ),
    Variable(
        "NOTIFICATIONS_SMTP_SANDBOX_PORT",
        "1025",
        "Port of `make run`'s local SMTP server (127.0.0.1), which writes each mail it receives "
        "as an .eml file under `var/mail/`.",
        integer(1, 65535),
    ),
)


@dataclass(frozen=True)
class NotificationsConfig:
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_ca_file: str
    smtp_username: str
    smtp_password: str
    smtp_timeout: float
    retry_delays: tuple[float, ...]
    batch_size: int
    poll_seconds: float
    mail_from: str | None
    storefront_url: str
    public_url: str
    unsubscribe_secret: str | None
    transfer_iban: str | None
    transfer_bic: str | None
    transfer_beneficiary: str
    recipient_retention_days: int
    sandbox_port: int

    @classmethod
    def from_env(cls, overrides: dict | None = None) -> NotificationsConfig:
        v = load(VARIABLES, overrides)
        return cls(
            smtp_host=v["NOTIFICATIONS_SMTP_SERVER"][0],
            smtp_port=v["NOTIFICATIONS_SMTP_SERVER"][1],
            smtp_security=v["NOTIFICATIONS_SMTP_SECURITY"],
            smtp_ca_file=v["NOTIFICATIONS_SMTP_CA_FILE"] or "",
            smtp_username=v["NOTIFICATIONS_SMTP_USERNAME"] or "",
            smtp_password=v["NOTIFICATIONS_SMTP_PASSWORD"] or "",
            smtp_timeout=v["NOTIFICATIONS_SMTP_TIMEOUT"],
            retry_delays=v["NOTIFICATIONS_SMTP_RETRY_DELAYS"] or (60.0,),
            batch_size=v["NOTIFICATIONS_SEND_BATCH_SIZE"],
            poll_seconds=v["NOTIFICATIONS_SEND_POLL_SECONDS"],
            mail_from=v["NOTIFICATIONS_MAIL_FROM"],
            storefront_url=v["NOTIFICATIONS_STOREFRONT_URL"].rstrip("/"),
            public_url=v["NOTIFICATIONS_PUBLIC_URL"].rstrip("/"),
            unsubscribe_secret=v["NOTIFICATIONS_UNSUBSCRIBE_SECRET"],
            transfer_iban=v["NOTIFICATIONS_TRANSFER_IBAN"],
            transfer_bic=v["NOTIFICATIONS_TRANSFER_BIC"],
            transfer_beneficiary=v["NOTIFICATIONS_TRANSFER_BENEFICIARY"],
            recipient_retention_days=v["NOTIFICATIONS_RECIPIENT_RETENTION_DAYS"],
            sandbox_port=v["NOTIFICATIONS_SMTP_SANDBOX_PORT"],
        )

    @property
    def sender(self) -> Address | None:
        if not self.mail_from:
            return None
        name, address = parseaddr(self.mail_from)
        local, _, domain = address.partition("@")
        return Address(display_name=name, username=local, domain=domain)
