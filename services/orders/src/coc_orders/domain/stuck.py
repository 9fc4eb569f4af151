"""Stuck orders (pure rules): each state of an order's life has a deadline, held as data
(``coc_orders/deadlines/deadlines.json`` unless ORDERS_DEADLINES_PATH names another file; read
by ``adapters.deadlines_file``); an order still in the state past it is stuck, and the detector
reports it once (``order.stuck``).

A state is the order's status, sometimes with one more fact:

| state | the order | since |
|---|---|---|
| unpaid | placed | it was placed |
| payment_failed | payment_failed | its last failed payment |
| awaiting_documents | paid, its documents not complete | it was paid |
| not_sent_to_supplier | paid, its documents complete | the later of both |
| supplier_rejected | the supplier asked for documents again | the rejection |
| supplier_late | sent to the supplier | it was sent |
| not_shipped | certificate received | the certificate came |
| not_delivered | shipped | it was shipped |

Every deadline is ``since`` + ``after_hours``, except supplier_late's: the supplier's promise (the
directory's turnaround, announced by the supplier-gateway's ``supplier.request_overdue`` when it
passes) + ``after_hours``, or, without such an announcement, ``since`` +
``without_promise_after_hours``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from coc_shared.catalogue import STUCK_STATES

from .lifecycle import Status
from .model import order_number

MAX_HOURS = 24 * 365

# state -> the order's status in it
STATUS_OF_STATE: dict[str, Status] = {
    "unpaid": Status.PLACED,
    "payment_failed": Status.PAYMENT_FAILED,
    "awaiting_documents": Status.PAID,
    "not_sent_to_supplier": Status.PAID,
    "supplier_rejected": Status.SUPPLIER_REJECTED,
    "supplier_late": Status.SENT_TO_SUPPLIER,
    "not_shipped": Status.CERTIFICATE_RECEIVED,
    "not_delivered": Status.SHIPPED,
}
assert set(STATUS_OF_STATE) == set(STUCK_STATES)


@dataclass(frozen=True)
class Deadline:
    state: str
    after: timedelta
    without_promise_after: timedelta | None = None  # supplier_late only


@dataclass(frozen=True)
class Deadlines:
    by_state: dict[str, Deadline]

    def earliest_by_status(self) -> dict[str, timedelta]:
        """The shortest time an order of each status may wait before one of its states can be
        stuck (what a search for candidates may filter on: never later than the rules)."""
        found: dict[str, timedelta] = {}
        for state, deadline in self.by_state.items():
            status = STATUS_OF_STATE[state].value
            shortest = min(deadline.after, deadline.without_promise_after or deadline.after)
            found[status] = min(found.get(status, shortest), shortest)
        return found


def _hours(entry: dict, key: str, where: str, problems: list[str]) -> timedelta | None:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_HOURS:
        problems.append(f"{where}: {key} must be hours, more than 0 and at most {MAX_HOURS}")
        return None
    return timedelta(hours=value)


def parse_deadlines(document) -> Deadlines:
    """The deadlines of ``document`` (the file's JSON); ValueError naming every problem: each
    state of the catalogue's ``STUCK_STATES`` exactly once, hours positive."""
    entries = document.get("deadlines") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError('expected {"deadlines": [{"state": …, "after_hours": …}, …]}')
    problems: list[str] = []
    found: dict[str, Deadline] = {}
    named: set[str] = set()
    for n, entry in enumerate(entries):
        where = f"deadlines[{n}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected an object")
            continue
        state = entry.get("state")
        if state not in STATUS_OF_STATE:
            problems.append(f"{where}: state must be one of {', '.join(STUCK_STATES)}")
            continue
        if state in named:
            problems.append(f"{where}: {state} is given twice")
            continue
        named.add(state)
        after = _hours(entry, "after_hours", where, problems)
        without = None
        if state == "supplier_late":
            without = _hours(entry, "without_promise_after_hours", where, problems)
        if after is not None:
            found[state] = Deadline(state, after, without)
    for state in STUCK_STATES:
        if state not in named:
            problems.append(f"{state}: no deadline given")
    if problems:
        raise ValueError("; ".join(problems))
    return Deadlines(found)


@dataclass(frozen=True)
class OrderProgress:
    """What the detector reads of one order: its status and when things happened."""

    order_id: str
    seq: int
    placed_at: datetime
    status: str
    entered_at: datetime | None  # the last applied event that put it in its status
    documents_completed_at: datetime | None
    promise_passed_at: datetime | None  # the last supplier.request_overdue

    @property
    def number(self) -> str:
        return order_number(self.seq, self.placed_at)


@dataclass(frozen=True)
class StuckOrder:
    order_id: str
    order_number: str
    state: str
    status: str
    since: datetime
    deadline: datetime
    reported_at: datetime | None = None
    seq: int = 0  # the order's place in the numbering (what a list goes on after)

    @property
    def key(self) -> tuple[str, str, datetime]:
        """What is reported once: the order in this state since this moment (a state entered
        again later is another report)."""
        return (self.order_id, self.state, self.since)

    def event_data(self) -> dict:
        return {
            "order_id": self.order_id,
            "order_number": self.order_number,
            "state": self.state,
            "status": self.status,
            "since": self.since.isoformat(),
            "deadline": self.deadline.isoformat(),
        }


def state_of(order: OrderProgress) -> tuple[str, datetime] | None:
    """The order's state and since when, or None when no deadline watches its status."""
    entered = order.entered_at or order.placed_at
    status = order.status
    if status == Status.PAID:
        if order.documents_completed_at is None:
            return "awaiting_documents", entered
        return "not_sent_to_supplier", max(entered, order.documents_completed_at)
    if status == Status.PLACED:
        return "unpaid", order.placed_at
    for state, state_status in STATUS_OF_STATE.items():
        if state_status == status:
            return state, entered
    return None


def stuck(order: OrderProgress, deadlines: Deadlines, now: datetime) -> StuckOrder | None:
    """The order as stuck at ``now``, or None when it is within its state's deadline (or in a
    state without one: delivered, cancelled, refunded)."""
    found = state_of(order)
    if found is None:
        return None
    state, since = found
    rule = deadlines.by_state[state]
    if state == "supplier_late":
        promise = order.promise_passed_at
        if promise is not None and promise >= since:
            deadline = promise + rule.after
        else:
            deadline = since + (rule.without_promise_after or rule.after)
    else:
        deadline = since + rule.after
    if deadline > now:
        return None
    return StuckOrder(
        order.order_id, order.number, state, order.status, since, deadline, seq=order.seq
    )
