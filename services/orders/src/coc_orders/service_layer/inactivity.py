"""Accounts without activity (the retention schedule's account category: deleted after two years
without activity, their owner warned 30 days before), applied when a purge run asks
(``retention.purge_requested``'s ``inactivity``, computed by gdpr from the schedule).

An account whose last activity is before ``warn_before`` and whose owner was not warned since is
warned (``account.inactivity_warning``, mailed by notifications): once per period without
activity. One whose last activity is before ``deactivate_before`` and whose owner was warned
since, before ``warned_before``, is deactivated through the same saga as its owner's own request
(``account.deactivation_requested``, reason ``inactivity``); one never warned is warned first.
Any activity (log-in, order, change) moves ``last_activity_at`` past the warning, which then no
longer counts. A second run finds nothing more to do: the warned are warned, the deactivated
are deactivated."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from coc_shared.envelope import Event, utcnow
from coc_shared.errors import InvalidEvent
from coc_shared.logging import get_logger
from coc_shared.values import as_utc

from ..adapters.inactivity import InactivityRepository
from ..adapters.repository import AccountRepository
from .accounts import deactivate, first_name

log = get_logger(__name__)

INACTIVITY = "inactivity"
WARNED = "account_inactivity_warnings"  # the count in the run's report
BATCH = 500  # accounts of each kind per run; the next run goes on


def _day(plan: dict, name: str) -> date:
    try:
        return date.fromisoformat(str(plan[name]))
    except (KeyError, ValueError):
        raise InvalidEvent(f"the inactivity cutoffs carry no {name}") from None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def apply_inactivity(event: Event, ctx) -> dict[str, int]:
    """The run's ``inactivity`` (absent: nothing to do): deactivates, then warns; returns the
    counts for the run's report under the schedule's category."""
    plan = event.data.get("inactivity")
    if not plan:
        return {}
    category = str(plan.get("category") or "account")
    now = utcnow()
    inactive = InactivityRepository(ctx)
    accounts = AccountRepository(ctx)
    # warned on or before the day ``warned_before``: the whole warning period is over
    warned_before = _start_of(_day(plan, "warned_before")) + timedelta(days=1)
    deactivated = inactive.to_deactivate(
        _start_of(_day(plan, "deactivate_before")), warned_before, BATCH
    )
    for account in deactivated:
        deactivate(ctx, accounts, account, now, reason=INACTIVITY)
        log.info("account.deactivated_for_inactivity", account_id=account.id)
    deletion_date = _day(plan, "deletion_date")
    warned = inactive.to_warn(_start_of(_day(plan, "warn_before")), BATCH)
    for account in warned:
        accounts.update(account.id, inactivity_warned_at=now)
        ctx.emit(
            "account.inactivity_warning",
            {
                "account_id": account.id,
                "last_activity_at": as_utc(account.last_activity_at).isoformat(),
                "deletion_date": deletion_date.isoformat(),
                "warned_at": now.isoformat(),
            },
            subject=account.id,
            personal={"email": account.email, "first_name": first_name(account.profile)},
            correlation_id=account.id,
        )
        log.info("account.inactivity_warned", account_id=account.id)
    return {category: len(deactivated), WARNED: len(warned)}
