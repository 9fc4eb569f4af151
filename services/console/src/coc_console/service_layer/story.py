"""One order's story across services, gathered from their staff APIs: the order's events as
orders recorded them, the payment due, the supplier request and its history, the mails, the
account's deactivation requests, the support records, the order's parked messages and the
console's own actions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..adapters.services_client import ServiceError, ServiceUnavailable, StaffApiClient
from ..domain.model import InputError, Staff, StoryEntry, order_story
from . import audit


@dataclass
class Story:
    order: dict
    entries: list[StoryEntry]
    states: dict[str, str] = field(default_factory=dict)  # service -> what it says of the order
    problems: dict[str, str] = field(default_factory=dict)  # service -> why it is missing
    stuck: list[dict] = field(default_factory=list)  # orders' stuck flags (past a deadline now)


def find(client: StaffApiClient, staff: Staff, reference: str) -> dict | None:
    """The order whose number or id is ``reference`` (orders' staff API), or None."""
    reference = (reference or "").strip()
    if not reference or len(reference) > 64 or "/" in reference:
        raise InputError({"q": "an order number (COC-2026-000123) or an order id"})
    return client.call(
        "orders", "GET", f"/v1/staff/orders/{reference}", staff.name, staff.role, missing_ok=True
    )


def _short(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:300]


class _Gatherer:
    def __init__(self, client: StaffApiClient, staff: Staff, result: Story):
        self.client, self.staff, self.result = client, staff, result
        self.answers: dict = {}  # asked at once beforehand (prefetch)

    def _call(self, service: str, path: str, params: dict | None) -> dict:
        staff = {"staff_name": self.staff.name, "role": self.staff.role}
        return {"service": service, "method": "GET", "path": path, "params": params, **staff}

    def prefetch(self, asks: list[tuple[str, str, dict | None]]) -> None:
        """Ask the services all at once: the page waits for the slowest, not for their sum."""
        calls = [{**self._call(*a), "missing_ok": True} for a in asks]
        for (service, path, params), answer in zip(asks, self.client.call_many(calls), strict=True):
            self.answers[(service, path, repr(params))] = answer

    def ask(self, service: str, path: str, params: dict | None = None):
        """A service's answer, None for a 404; a service that fails is named in the story."""
        key = (service, path, repr(params))
        try:
            if key in self.answers:
                answer = self.answers.pop(key)
                if isinstance(answer, Exception):
                    raise answer
                return answer
            return self.client.call(**self._call(service, path, params), missing_ok=True)
        except (ServiceUnavailable, ServiceError) as exc:
            self.result.problems[service] = str(exc)
            return None

    def add(self, *args, **kw) -> None:
        self.result.entries.append(StoryEntry(*args, **kw))

    def orders(self, order_id: str) -> dict:
        event_times = {}
        events = self.ask("orders", f"/v1/staff/orders/{order_id}/events") or {}
        for e in events.get("items", []):
            event_times[e["event_id"]] = e["occurred_at"]
            detail = " → ".join(x for x in (e.get("outcome"), e.get("status_after")) if x)
            self.add(e["occurred_at"], "orders", e["event_type"], detail)
        return event_times

    def payments(self, order_id: str) -> None:
        due = self.ask("payments", f"/v1/staff/payments-due/{order_id}")
        if due is not None:
            amount = (due.get("amount_cents") or 0) / 100
            self.result.states["payments"] = (
                f"{due.get('status')} ({due.get('method')}, {amount:.2f} {due.get('currency')})"
            )
        elif "payments" not in self.result.problems:
            self.result.states["payments"] = "no payment due"

    def supplier(self, order_id: str) -> None:
        request = self.ask("supplier-gateway", f"/v1/staff/supplier-requests/{order_id}")
        if request is None:
            if "supplier-gateway" not in self.result.problems:
                self.result.states["supplier-gateway"] = "no supplier request"
            return
        self.result.states["supplier-gateway"] = (
            f"{request.get('status')} at {request.get('supplier')}"
        )
        for h in request.get("history") or []:
            what = h.get("event") or h.get("what") or h.get("kind") or h.get("status") or "history"
            rest = {k: v for k, v in h.items() if k not in ("at", "event", "what", "kind")}
            self.add(h.get("at") or "", "supplier-gateway", str(what), _short(rest))

    def mails(self, order_id: str, event_times: dict) -> None:
        mails = self.ask("notifications", f"/v1/staff/orders/{order_id}/notifications") or {}
        items = mails.get("items", [])
        if "notifications" not in self.result.problems:
            self.result.states["notifications"] = f"{len(items)} mail(s)"
        for m in items:
            # mails carry no time of their own: shown at the time of the event that caused them
            self.add(
                event_times.get(m.get("event_id"), ""),
                "notifications",
                f"mail {m.get('template')}",
                f"{m.get('status')} (for {m.get('event_type')})",
                kind="mail",
            )

    def gdpr(self, account_id: str | None) -> None:
        if not account_id:
            return
        answer = self.ask("gdpr", f"/v1/staff/deactivation-requests/{account_id}") or {}
        requests = answer.get("items") or answer.get("requests") or []
        if requests:
            self.result.states["gdpr"] = f"{len(requests)} deactivation request(s)"
        for r in requests:
            at = r.get("requested_at") or r.get("received_at") or ""
            self.add(at, "gdpr", "deactivation requested", _short(r), kind="state")

    def support_records(self, order_id: str) -> None:
        """The records of the assistance the customer received (the order's and its account's)."""
        path = "/v1/staff/support-records"
        answer = self.ask("orders", path, params={"order_id": order_id}) or {}
        for r in answer.get("items", []):
            who = f"{r.get('staff')}: {r.get('summary')}"
            self.add(
                r.get("contacted_at") or "",
                "orders",
                f"support ({r.get('channel')})",
                who,
                kind="support",
            )

    def stuck(self, order_id: str) -> None:
        found = self.ask("orders", "/v1/staff/orders/stuck", params={"order_id": order_id})
        self.result.stuck = (found or {}).get("items", [])

    def parked(self, order_id: str) -> list[str]:
        """The order's parked messages (waiting or resolved); returns their audit targets."""
        targets = []
        for service in self.client.service_urls:
            parked = self.ask(service, "/v1/staff/parked", params=_parked_params(order_id)) or {}
            for p in parked.get("items", []):
                targets.append(f"{service}:parked:{p.get('id')}")
                self.add(
                    p.get("last_failed_at") or "",
                    service,
                    f"parked {p.get('event_type')}",
                    f"#{p.get('id')} {p.get('error_type')}: {p.get('status')}",
                    kind="parked",
                )
        return targets


def _asks(client: StaffApiClient, order_id: str, account_id: str | None) -> list[tuple]:
    """What the story asks each service (the ``_Gatherer`` methods ask the same)."""
    asks = [
        ("orders", f"/v1/staff/orders/{order_id}/events", None),
        ("payments", f"/v1/staff/payments-due/{order_id}", None),
        ("supplier-gateway", f"/v1/staff/supplier-requests/{order_id}", None),
        ("notifications", f"/v1/staff/orders/{order_id}/notifications", None),
        ("orders", "/v1/staff/support-records", {"order_id": order_id}),
        ("orders", "/v1/staff/orders/stuck", {"order_id": order_id}),
    ]
    if account_id:
        asks.append(("gdpr", f"/v1/staff/deactivation-requests/{account_id}", None))
    asks += [
        (service, "/v1/staff/parked", _parked_params(order_id)) for service in client.service_urls
    ]
    return [a for a in asks if a[0] in client.service_urls]


def _parked_params(order_id: str) -> dict:
    return {"order_id": order_id, "limit": "100", "status": ""}


def story(runtime, client: StaffApiClient, staff: Staff, order: dict) -> Story:
    order_id = order["id"]
    result = Story(order=order, entries=[], states={"orders": order.get("status", "?")})
    gather = _Gatherer(client, staff, result)
    gather.prefetch(_asks(client, order_id, order.get("account_id")))
    event_times = gather.orders(order_id)
    gather.payments(order_id)
    gather.supplier(order_id)
    gather.stuck(order_id)
    gather.mails(order_id, event_times)
    gather.gdpr(order.get("account_id"))
    gather.support_records(order_id)
    targets = gather.parked(order_id)
    # the console's own actions on the order and on its parked messages
    actions = audit.search(runtime, target=order_id, limit=100) + audit.on_targets(runtime, targets)
    for a in actions:
        who = f"{a['staff_name']}: {a['reason'] or ''}"
        gather.add(a["at"].isoformat(), "console", a["action"], who, kind="support")
    result.entries = order_story(result.entries)
    return result
