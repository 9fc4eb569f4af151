"""The gdpr service's own configuration: its variables, declared once here (README.md's table is
generated from them), and ``GdprConfig``, built once at start (``runtime.config``). The retention
schedule is read and checked at the same time: one that cannot be used stops the start with every
problem named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coc_shared.catalogue import all_event_types
from coc_shared.config import ConfigError, Variable, declare, load, number

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
)


@dataclass(frozen=True)
class GdprConfig:
    schedule: Schedule
    purge_interval_hours: float = 24.0

    @classmethod
    def from_env(cls, overrides: Mapping[str, str | None] | None = None) -> GdprConfig:
        v = load(VARIABLES, overrides)
        try:
            schedule = load_schedule(
                v["GDPR_RETENTION_SCHEDULE_PATH"] or None, {e.type for e in all_event_types()}
            )
        except RetentionError as exc:
            raise ConfigError(f"GDPR_RETENTION_SCHEDULE_PATH: {exc}") from None
        return cls(schedule=schedule, purge_interval_hours=v["GDPR_PURGE_INTERVAL_HOURS"])
