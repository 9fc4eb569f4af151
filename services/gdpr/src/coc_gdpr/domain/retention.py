"""The retention schedule, as data: for each category of personal data, where it lives (service,
table, columns), how long it stays in the active base and in an archive, why (the legal basis),
and what happens at the end. Read from a JSON file (the one shipped in the package, or
GDPR_RETENTION_SCHEDULE_PATH) and checked at start; docs/retention.md and the record of
processing (docs/processing-record.md) are generated from it (``coc_gdpr.retention_doc``).

Durations are ISO 8601 periods of years, months and days (``P10Y``, ``P13M``, ``P30D``), or null
where the data stays only as long as its ``starts`` condition holds (e.g. while the account is
active). Pure: ``coc_gdpr.adapters.schedule_file`` reads the file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta

from marshmallow import Schema, ValidationError, fields, validate

END_ACTIONS = ("delete", "anonymise", "pseudonymise", "drop_personal_part", "never_stored")
SERVICES = ("orders", "payments", "supplier-gateway", "notifications", "gdpr", "ops")
# Schemas a service writes to besides its own: the invoice archive (payments writes, the archive
# role alone reads).
FOREIGN_SCHEMAS = ("archive",)
# Categories whose store refuses to delete data younger than a period: the schedule may not say
# less (the disclosure log's trigger, gdpr_0011, lets only disclosures older than 5 years go)
KEPT_AT_LEAST = {"disclosures": "P5Y"}
_PERIOD = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$")


class RetentionError(ValueError):
    """The schedule cannot be used: every problem, named."""


def period(value: str) -> tuple[int, int, int]:
    """(years, months, days) of an ISO 8601 period such as ``P10Y`` or ``P1Y6M``."""
    match = _PERIOD.match(value or "")
    if not match or value == "P":
        raise ValueError(f"{value!r} is not a period such as P10Y, P13M or P30D")
    return tuple(int(part or 0) for part in match.groups())


def add_period(start: date, value: str) -> date:
    """``start`` plus the period (a day that does not exist in the target month is its last)."""
    years, months, days = period(value)
    month_index = start.month - 1 + months
    year, month = start.year + years + month_index // 12, month_index % 12 + 1
    day = start.day
    while True:
        try:
            end = date(year, month, day)
            break
        except ValueError:
            day -= 1
    return end + timedelta(days=days)


def _is_period(value: str) -> None:
    try:
        period(value)
    except ValueError as exc:  # marshmallow 4: a validator raises, returning False is ignored
        raise ValidationError(str(exc)) from None


def _period_field(**kwargs):
    return fields.String(validate=_is_period, **kwargs)


class LocationSchema(Schema):
    service = fields.String(required=True, validate=validate.OneOf(SERVICES))
    # a schema other than the service's own that the service writes to (payments: ``archive``)
    schema = fields.String(load_default=None, validate=validate.OneOf(FOREIGN_SCHEMAS))
    table = fields.String(required=True)
    columns = fields.List(fields.String(), required=True)


class CategorySchema(Schema):
    category = fields.String(required=True, validate=validate.Regexp(r"^[a-z_]+$"))
    description = fields.String(required=True)
    data = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    purpose = fields.String(required=True)
    legal_basis = fields.String(required=True)
    where = fields.List(fields.Nested(LocationSchema), required=True)
    starts = fields.String(required=True)  # what starts the clock
    active = _period_field(required=True, allow_none=True)
    archive = _period_field(required=True, allow_none=True)
    # how long before the end its owner is warned (the account: a mail, and a log-in keeps it)
    warning = _period_field(load_default=None, allow_none=True)
    end_action = fields.String(required=True, validate=validate.OneOf(END_ACTIONS))
    end_note = fields.String(load_default="")
    # events of the catalogue whose personal part carries this category (their consumers are the
    # internal recipients) and the outside parties that receive it
    events = fields.List(fields.String(), load_default=list)
    outside_recipients = fields.List(fields.String(), load_default=list)


class ScheduleSchema(Schema):
    controller = fields.String(required=True)
    version = fields.String(required=True)
    categories = fields.List(fields.Nested(CategorySchema), required=True)


@dataclass(frozen=True)
class Location:
    service: str
    table: str
    columns: tuple[str, ...]
    schema: str | None = None  # None: the service's own

    @property
    def name(self) -> str:
        """``schema.table`` as the documents show it (the service's name for its own)."""
        return f"{self.schema or self.service}.{self.table}"


@dataclass(frozen=True)
class Category:
    category: str
    description: str
    data: tuple[str, ...]
    purpose: str
    legal_basis: str
    where: tuple[Location, ...]
    starts: str
    active: str | None
    archive: str | None
    end_action: str
    end_note: str
    events: tuple[str, ...]
    outside_recipients: tuple[str, ...]
    warning: str | None = None

    def kept_until(self, start: date) -> date | None:
        """The last day the data may be kept (active then archive) from ``start``; None when the
        schedule sets no fixed duration."""
        if self.active is None and self.archive is None:
            return None
        end = start
        for part in (self.active, self.archive):
            if part is not None:
                end = add_period(end, part)
        return end


@dataclass(frozen=True)
class Schedule:
    controller: str
    version: str
    categories: tuple[Category, ...]

    def category(self, name: str) -> Category:
        for category in self.categories:
            if category.category == name:
                return category
        raise KeyError(name)


def parse_schedule(raw: dict, known_event_types: set[str] | None = None) -> Schedule:
    try:
        loaded = ScheduleSchema().load(raw)
    except ValidationError as exc:
        raise RetentionError(json.dumps(exc.messages, ensure_ascii=False)) from None
    problems = []
    names = [c["category"] for c in loaded["categories"]]
    problems += [
        f"category {n} listed twice" for n in sorted({n for n in names if names.count(n) > 1})
    ]
    for c in loaded["categories"]:
        if c["end_action"] != "never_stored" and not c["where"]:
            problems.append(f"{c['category']}: stored nowhere, yet not never_stored")
        floor = KEPT_AT_LEAST.get(c["category"])
        if floor is not None and (c["active"] is None or _shorter(c["active"], floor)):
            problems.append(f"{c['category']}: its table keeps it at least {floor}")
        if c["warning"] is not None and not _shorter(c["warning"], c["active"]):
            problems.append(f"{c['category']}: a warning needs an active period longer than it")
        for event_type in c["events"]:
            if known_event_types is not None and event_type not in known_event_types:
                problems.append(f"{c['category']}: no event type {event_type} in the catalogue")
    if problems:
        raise RetentionError("; ".join(problems))
    return Schedule(
        controller=loaded["controller"],
        version=loaded["version"],
        categories=tuple(
            Category(
                **{
                    **c,
                    "data": tuple(c["data"]),
                    "where": tuple(
                        Location(w["service"], w["table"], tuple(w["columns"]), w["schema"])
                        for w in c["where"]
                    ),
                    "events": tuple(c["events"]),
                    "outside_recipients": tuple(c["outside_recipients"]),
                }
            )
            for c in loaded["categories"]
        ),
    )


def _shorter(value: str, than: str | None) -> bool:
    reference = date(2000, 1, 1)
    return than is not None and add_period(reference, value) < add_period(reference, than)


def minus_period(day: date, value: str) -> date:
    """``day`` less the period (a day that does not exist in the target month is its last)."""
    years, months, days = period(value)
    day = day - timedelta(days=days)
    month_index = day.month - 1 - months
    year, month = day.year - years + month_index // 12, month_index % 12 + 1
    wanted = day.day
    while True:
        try:
            return date(year, month, wanted)
        except ValueError:
            wanted -= 1


def purge_cutoffs(schedule: Schedule, today: date) -> dict[str, date]:
    """For each category with a fixed duration, the day before which its clock must have started
    for its data to have reached its end today (active, then archive)."""
    cutoffs = {}
    for category in schedule.categories:
        if category.end_action == "never_stored":
            continue
        parts = [p for p in (category.active, category.archive) if p is not None]
        if not parts:
            continue
        cutoff = today
        for part in parts:
            cutoff = minus_period(cutoff, part)
        cutoffs[category.category] = cutoff
    return cutoffs


INACTIVITY_CATEGORY = "account"


@dataclass(frozen=True)
class InactivityCutoffs:
    """What a purge run of ``today`` asks of the account's owner (orders), from the schedule's
    account category: an account whose last activity is before ``warn_before`` reaches its end
    within the warning period and is warned (once per period without activity); one whose last
    activity is before ``deactivate_before`` (its end reached) is deactivated if it was warned
    before ``warned_before`` (the whole warning period ago), else warned first. The warning of
    this run announces ``deletion_date``."""

    category: str
    warn_before: date
    deactivate_before: date
    warned_before: date
    deletion_date: date

    def as_data(self) -> dict:
        return {
            "category": self.category,
            "warn_before": self.warn_before.isoformat(),
            "deactivate_before": self.deactivate_before.isoformat(),
            "warned_before": self.warned_before.isoformat(),
            "deletion_date": self.deletion_date.isoformat(),
        }


def inactivity_cutoffs(schedule: Schedule, today: date) -> InactivityCutoffs | None:
    """The account category's inactivity cutoffs of a run of ``today``; None when the schedule
    sets no active period or no warning for it."""
    try:
        account = schedule.category(INACTIVITY_CATEGORY)
    except KeyError:
        return None
    if account.active is None or account.warning is None:
        return None
    deletion_date = add_period(today, account.warning)
    return InactivityCutoffs(
        category=account.category,
        warn_before=minus_period(deletion_date, account.active),
        deactivate_before=minus_period(today, account.active),
        warned_before=minus_period(today, account.warning),
        deletion_date=deletion_date,
    )
