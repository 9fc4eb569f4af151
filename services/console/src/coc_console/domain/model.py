"""The console's rules, without I/O: staff accounts and roles, what a role may do, how a parked
message's personal part is masked, how parked messages are grouped and how one order's story is
ordered."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

ROLES = ("support", "admin")
# Reveal shows the personal part of a parked message (names, e-mail, addresses): admins only, each
# time with a reason in the audit log; support staff work on the masked message.
MAY_REVEAL = ("admin",)
MAY_DISCARD = ("support", "admin")
# safe replay (a dry run, then progressive batches): both roles, as the command line's replay
MAY_REPLAY = ("support", "admin")
MASK = "••••••"
NAME = re.compile(r"^[a-z][a-z0-9._-]{1,62}$")
MIN_PASSWORD = 12


class InputError(ValueError):
    """Bad input, with a message per field (answered 4xx)."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class Forbidden(Exception):
    """The staff member's role may not do this."""


@dataclass(frozen=True)
class Staff:
    id: int
    name: str
    role: str


def check_new_staff(name: str, role: str, password: str) -> None:
    problems = {}
    if not NAME.match(name or ""):
        problems["name"] = "2-63 characters: lower-case letters, digits, '.', '_' or '-'"
    if role not in ROLES:
        problems["role"] = f"one of {', '.join(ROLES)}"
    if len(password or "") < MIN_PASSWORD:
        problems["password"] = f"at least {MIN_PASSWORD} characters"
    if problems:
        raise InputError(problems)


def require_reason(reason: str | None, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InputError({field: "a reason is required"})
    if len(reason) > 500:
        raise InputError({field: "at most 500 characters"})
    return reason


def allow(staff: Staff, roles: tuple[str, ...], what: str) -> None:
    if staff.role not in roles:
        raise Forbidden(f"{what} needs the role {' or '.join(roles)}")


def mask(value):
    """The shape of ``value`` with every leaf hidden (keys stay: support sees what is there)."""
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return None if value is None else MASK


def masked_message(message: dict) -> dict:
    """A parked message (as a service's staff API shows it) with its personal part masked: the
    envelope's ``personal`` and a body that could not be read as JSON (it may hold anything)."""
    out = dict(message)
    body = out.get("body")
    if isinstance(body, dict) and "personal" in body:
        out["body"] = {**body, "personal": mask(body["personal"])}
    if "body_raw" in out:
        out["body_raw"] = MASK
    return out


@dataclass(frozen=True)
class FailureGroup:
    service: str
    event_type: str
    error_type: str
    count: int
    first_seen: str
    last_seen: str
    ids: tuple[int, ...]


def group_parked(items_by_service: dict[str, list[dict]]) -> list[FailureGroup]:
    """Parked messages grouped by service, event type and error class, the largest group first."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for service, items in items_by_service.items():
        for item in items:
            key = (service, item.get("event_type") or "?", item.get("error_type") or "?")
            groups.setdefault(key, []).append(item)
    result = []
    for (service, event_type, error_type), items in groups.items():
        firsts = [i.get("first_failed_at") or i.get("parked_at") or "" for i in items]
        lasts = [i.get("last_failed_at") or i.get("parked_at") or "" for i in items]
        result.append(
            FailureGroup(
                service,
                event_type,
                error_type,
                len(items),
                min(firsts),
                max(lasts),
                tuple(sorted(i["id"] for i in items)),
            )
        )
    return sorted(result, key=lambda g: (-g.count, g.service, g.event_type, g.error_type))


@dataclass(frozen=True)
class StoryEntry:
    at: str  # ISO 8601
    service: str
    what: str
    detail: str = ""
    kind: str = "event"  # event | state | mail | parked | support


def _instant(at: str) -> datetime:
    try:
        moment = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return datetime.max
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.replace(tzinfo=None)


def order_story(entries: list[StoryEntry]) -> list[StoryEntry]:
    """Entries of every service in time order (undated last)."""
    return sorted(entries, key=lambda e: (_instant(e.at), e.service))
