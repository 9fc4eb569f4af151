"""Staff accounts, sessions and the audit log in the console's schema (SQLAlchemy Core on one
connection: the use case owns the transaction)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from . import tables as t


class StaffRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def count(self) -> int:
        return self.conn.execute(select(func.count()).select_from(t.staff_accounts)).scalar_one()

    def by_name(self, name: str) -> dict | None:
        row = self.conn.execute(
            select(t.staff_accounts).where(t.staff_accounts.c.name == name)
        ).first()
        return dict(row._mapping) if row else None

    def add(self, values: dict) -> int:
        return self.conn.execute(
            insert(t.staff_accounts).values(**values).returning(t.staff_accounts.c.id)
        ).scalar_one()

    def change(self, staff_id: int, **values) -> None:
        self.conn.execute(
            update(t.staff_accounts).where(t.staff_accounts.c.id == staff_id).values(**values)
        )


class SessionRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, session_id: str, staff_id: int, csrf_token: str, now: datetime) -> None:
        self.conn.execute(
            insert(t.sessions).values(
                id=session_id,
                staff_id=staff_id,
                csrf_token=csrf_token,
                created_at=now,
                last_seen_at=now,
            )
        )

    def get(self, session_id: str) -> dict | None:
        s, a = t.sessions, t.staff_accounts
        row = self.conn.execute(
            select(s, a.c.name, a.c.role)
            .join(a, a.c.id == s.c.staff_id)
            .where(s.c.id == session_id)
        ).first()
        return dict(row._mapping) if row else None

    def touch(self, session_id: str, now: datetime) -> None:
        self.conn.execute(
            update(t.sessions).where(t.sessions.c.id == session_id).values(last_seen_at=now)
        )

    def remove(self, session_id: str) -> None:
        self.conn.execute(delete(t.sessions).where(t.sessions.c.id == session_id))

    def remove_idle(self, before: datetime) -> None:
        self.conn.execute(delete(t.sessions).where(t.sessions.c.last_seen_at < before))


class AuditRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, at, staff_name, staff_role, action, target, reason=None, details=None) -> None:
        self.conn.execute(
            insert(t.audit_log).values(
                at=at,
                staff_name=staff_name,
                staff_role=staff_role,
                action=action,
                target=target,
                reason=reason,
                details=details,
            )
        )

    def add_once(self, at, staff_name, staff_role, action, target, reason=None, details=None):
        """``add`` unless a unique index already holds this entry (a replay's outcome): False."""
        try:
            with self.conn.begin_nested():
                self.add(at, staff_name, staff_role, action, target, reason, details)
        except IntegrityError:
            return False
        return True

    def for_targets(self, targets: list[str], limit: int = 200) -> list[dict]:
        a = t.audit_log
        if not targets:
            return []
        query = select(a).where(a.c.target.in_(targets)).order_by(a.c.at, a.c.id).limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def search(
        self,
        staff_name: str | None = None,
        action: str | None = None,
        target: str | None = None,
        limit: int = 200,
    ) -> list[dict]:
        a = t.audit_log
        query = select(a).order_by(a.c.at.desc(), a.c.id.desc()).limit(limit)
        if staff_name:
            query = query.where(a.c.staff_name == staff_name)
        if action:
            query = query.where(a.c.action == action)
        if target:
            query = query.where(a.c.target.contains(target, autoescape=True))
        return [dict(r._mapping) for r in self.conn.execute(query)]
