"""Exports of a customer's personal data (GDPR 15, right of access, and 20, portability), as plain
values (no I/O).

A customer (or a guest, with the order's access token) asks through orders
(``account.data_export_requested``); the request is answered within one month (GDPR 12(3)). The
gdpr service asks every service for its data of the subject (``account.export_requested``); each
contributes its data per category of the retention schedule
(``account.export_contributed.<service>``, in the personal part). Once all have, the export is
assembled: one JSON document holding, for every category of the schedule, what it is, why it is
kept (purpose, legal basis), who receives it, how long it is kept, and the subject's data in each
service; and a readable summary of the same. It is stored encrypted and offered through a link that
expires (``account.data_export_ready``, mailed by notifications).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from coc_shared.errors import InvalidEvent
from coc_shared.values import aware_datetime

from .retention import Schedule

ANSWER_WITHIN = timedelta(days=30)
PENDING, READY, EXPIRED = "pending", "ready", "expired"


@dataclass(frozen=True)
class ExportRequest:
    request_id: str
    account_id: str | None
    order_id: str | None  # a guest's order (account_id None)
    order_ids: tuple[str, ...]
    requested_at: datetime
    status: str = PENDING
    email: str | None = None  # where the link goes; kept only until it is sent
    first_name: str | None = None
    ready_at: datetime | None = None
    expires_at: datetime | None = None
    token_sha256: str | None = None

    @property
    def due_by(self) -> datetime:
        return self.requested_at + ANSWER_WITHIN

    @property
    def subject(self) -> str:
        return self.account_id or self.order_id or ""

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @classmethod
    def from_message(cls, event_id: str, data: dict, personal: dict | None) -> ExportRequest:
        account_id = data.get("account_id") or None
        order_id = data.get("order_id") or None
        if account_id is None and order_id is None:
            raise InvalidEvent("an export request names neither an account nor an order")
        order_ids = tuple(dict.fromkeys([*(data.get("order_ids") or ()), *([order_id] or [])]))
        personal = personal or {}
        return cls(
            request_id=event_id,
            account_id=account_id,
            order_id=order_id if account_id is None else None,
            order_ids=tuple(o for o in order_ids if o),
            requested_at=aware_datetime(data.get("requested_at"), "requested_at", InvalidEvent),
            email=personal.get("email") or None,
            first_name=personal.get("first_name") or None,
        )


def request_to_open(pending: ExportRequest | None, new: ExportRequest) -> ExportRequest | None:
    """``new``, or None when the same subject has a request still being assembled (it joins)."""
    if pending is not None and pending.pending and pending.subject == new.subject:
        return None
    return new


def address_on_file(request: ExportRequest, orders: dict) -> str | None:
    """Where the link of a request that carried no address goes (one staff opened): the address
    on file in orders' contribution, the account's, or for a guest the order's customer's; None
    when none is left (erased since: no mail)."""
    if request.account_id:
        accounts = orders.get("account") or [{}]
        return accounts[0].get("email") or None
    for order in orders.get("order_customer") or []:
        if order.get("order_id") == request.order_id:
            return (order.get("customer") or {}).get("email") or None
    return None


def complete(contributed: set[str], expected: tuple[str, ...]) -> bool:
    return set(expected) <= contributed


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LinkRefused(Exception):
    """An export link that does not open: ``status`` 403 (wrong token), 404 or 410 (expired)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def check_link(request: ExportRequest | None, token: str | None, now: datetime) -> ExportRequest:
    import hmac

    if request is None or request.status not in (READY, EXPIRED):
        raise LinkRefused("no such export", 404)
    if not token or not hmac.compare_digest(token_sha256(token), request.token_sha256 or ""):
        raise LinkRefused("this link is not valid", 403)
    if request.status == EXPIRED or request.expires_at is None or request.expires_at <= now:
        raise LinkRefused("this link has expired: ask for a new export", 410)
    return request


def assemble(
    request: ExportRequest,
    contributions: dict[str, dict[str, list]],
    schedule: Schedule,
    recipients: dict[str, list[str]],
    now: datetime,
) -> dict:
    """The export document: every category of the schedule, described, with the subject's data
    in each service that holds some (an empty ``data`` says none is held)."""
    categories = []
    for category in schedule.categories:
        data = {
            service: records
            for service, contributed in sorted(contributions.items())
            if (records := contributed.get(category.category))
        }
        categories.append(
            {
                "category": category.category,
                "description": category.description,
                "data_kinds": list(category.data),
                "purpose": category.purpose,
                "legal_basis": category.legal_basis,
                "recipients": {
                    "internal": recipients.get(category.category, []),
                    "outside": list(category.outside_recipients),
                },
                "retention": {
                    "starts": category.starts,
                    "active": category.active,
                    "archive": category.archive,
                    "end_action": category.end_action,
                    "note": category.end_note,
                },
                "held": bool(data),
                "data": data,
            }
        )
    other = {
        service: {
            c: r
            for c, r in contributed.items()
            if c not in {x.category for x in schedule.categories}
        }
        for service, contributed in contributions.items()
    }
    return {
        "controller": schedule.controller,
        "schedule_version": schedule.version,
        "generated_at": now.isoformat(),
        "request": {
            "id": request.request_id,
            "requested_at": request.requested_at.isoformat(),
            "account_id": request.account_id,
            "order_ids": list(request.order_ids),
        },
        "categories": categories,
        "other": {s: o for s, o in other.items() if o},
    }


def _count(records) -> int:
    return sum(len(r) if isinstance(r, list) else 1 for r in records.values())


def readable_summary(document: dict) -> str:
    """The readable summary of an export document (plain text, French then the data)."""
    lines = [
        "Vos données personnelles — export (RGPD art. 15 et 20)",
        f"Responsable du traitement : {document['controller']}",
        f"Établi le {document['generated_at'][:10]} ; demande du "
        f"{document['request']['requested_at'][:10]}.",
        "",
        "Le fichier JSON joint contient toutes vos données ; pour chaque catégorie :",
        "",
    ]
    for c in document["categories"]:
        r = c["retention"]
        durations = ", ".join(
            f"{what} {value}"
            for what, value in (("base active", r["active"]), ("archive", r["archive"]))
            if value
        )
        lines += [
            f"* {c['description']} ({c['category']}) — "
            + (f"{_count(c['data'])} enregistrement(s)" if c["held"] else "aucune donnée détenue"),
            f"  Finalité : {c['purpose']}",
            f"  Base légale : {c['legal_basis']}",
            "  Destinataires : "
            + (", ".join([*c["recipients"]["internal"], *c["recipients"]["outside"]]) or "aucun"),
            f"  Conservation : à partir de {r['starts']}"
            + (f" ({durations})" if durations else "")
            + f", puis {r['end_action']}"
            + (f" — {r['note']}" if r["note"] else ""),
            "",
        ]
    return "\n".join(lines)
