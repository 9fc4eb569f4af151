"""The gdpr service's own configuration: its variables, declared once here (README.md's table is
generated from them), and ``GdprConfig``, built once at start (``runtime.config``). The retention
schedule is read and checked at the same time: one that cannot be used stops the start with every
problem named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from coc_shared.catalogue import all_event_types
from coc_shared.config import ConfigError, Variable, declare, load, number, url
from coc_shared.documents import aes_256_key

from .adapters.schedule_file import load_schedule
from .domain.retention import RetentionError, Schedule

VARIABLES = declare(
    Variable(
        "GDPR_RETENTION_SCHEDULE_PATH",
        "",
        "JSON file of the retention schedule (per category of personal data: where it lives, how "
        "long in the active base and the archive, the legal basis, what happens at the end); "
        "defaults to the schedule shipped in the package (docs/retention.md). Checked at start.",
    ),
    Variable(
        "GDPR_PURGE_INTERVAL_HOURS",
        "24",
        "Hours between two purge runs of the retention schedule started by the gdpr worker (each "
        "service applies the ends of its own data; `coc-gdpr purge` starts one at once).",
        number(0.01),
    ),
    Variable(
        "GDPR_MARKETING_CONSENT_TEXT_VERSION",
        "2026-12-05",
        "Version of the marketing consent text the storefront shows, recorded in the consent "
        "ledger with each consent whose event names none.",
    ),
    Variable(
        "GDPR_EXPORT_KEY",
        None,
        "AES-256-GCM key (32 bytes, base64) that encrypts the customers' data exports (GDPR 15 "
        "and 20) kept for download; without it an export cannot be assembled (its last "
        "contribution is retried, then parked).",
        aes_256_key,
    ),
    Variable(
        "GDPR_EXPORT_LINK_HOURS",
        "72",
        "Hours a data export can be downloaded through the link mailed to the customer; then the "
        "document is dropped.",
        number(1),
    ),
    Variable(
        "GDPR_EXPORT_PAGE_URL",
        "https://coc.example/account/export",
        "The storefront page that downloads an export: the mailed link is this page with the "
        "export's id and token in its fragment (never sent to a server in a URL); the page calls "
        "`GET /v1/exports/{id}` of the gdpr API with the token in `X-Export-Token`.",
        url("https", "http"),
    ),
)


@dataclass(frozen=True)
class GdprConfig:
    schedule: Schedule
    purge_interval_hours: float = 24.0
    export_key: bytes | None = field(default=None, repr=False)
    export_link_hours: float = 72.0
    export_page_url: str = "https://coc.example/account/export"
    consent_text_version: str = "2026-12-05"

    @classmethod
    def from_env(cls, overrides: Mapping[str, str | None] | None = None) -> GdprConfig:
        v = load(VARIABLES, overrides)
        try:
            schedule = load_schedule(
                v["GDPR_RETENTION_SCHEDULE_PATH"] or None, {e.type for e in all_event_types()}
            )
        except RetentionError as exc:
            raise ConfigError(f"GDPR_RETENTION_SCHEDULE_PATH: {exc}") from None
        return cls(
            schedule=schedule,
            purge_interval_hours=v["GDPR_PURGE_INTERVAL_HOURS"],
            export_key=v["GDPR_EXPORT_KEY"],
            export_link_hours=v["GDPR_EXPORT_LINK_HOURS"],
            export_page_url=v["GDPR_EXPORT_PAGE_URL"],
            consent_text_version=v["GDPR_MARKETING_CONSENT_TEXT_VERSION"],
        )
