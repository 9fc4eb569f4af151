"""What a purge run finds among the accounts without activity (the retention schedule's account
category): those to warn, and those warned long enough before to deactivate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from . import tables


class InactivityRepository:
    def __init__(self, uow):
        self.uow = uow

    def to_warn(self, active_before: datetime, limit: int):
        """Accounts not deactivated whose last activity is before ``active_before`` and whose
        owner was not warned since it."""
        a = tables.accounts
        return self.uow.execute(
            select(a)
            .where(
                a.c.deactivation_requested_at.is_(None),
                a.c.last_activity_at < active_before,
                or_(
                    a.c.inactivity_warned_at.is_(None),
                    a.c.inactivity_warned_at < a.c.last_activity_at,
                ),
            )
            .order_by(a.c.last_activity_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()

    def to_deactivate(self, active_before: datetime, warned_before: datetime, limit: int):
        """Accounts not deactivated whose last activity is before ``active_before`` and whose
        owner was warned since it, before ``warned_before``."""
        a = tables.accounts
        return self.uow.execute(
            select(a)
            .where(
                a.c.deactivation_requested_at.is_(None),
                a.c.last_activity_at < active_before,
                a.c.inactivity_warned_at >= a.c.last_activity_at,
                a.c.inactivity_warned_at < warned_before,
            )
            .order_by(a.c.last_activity_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
