"""The console's audit log: who did what, when and why."""

from __future__ import annotations

from coc_shared.envelope import utcnow

from ..adapters.repository import AuditRepository
from ..domain.model import Staff


def record(runtime, staff: Staff, action: str, target: str, reason=None, details=None) -> None:
    with runtime.engine.begin() as conn:
        AuditRepository(conn).add(utcnow(), staff.name, staff.role, action, target, reason, details)


def record_once(runtime, staff: Staff, action: str, target: str, reason=None, details=None):
    """``record`` an entry kept once per target (a replay's outcome); False: already there."""
    with runtime.engine.begin() as conn:
        return AuditRepository(conn).add_once(
            utcnow(), staff.name, staff.role, action, target, reason, details
        )


def search(runtime, staff_name=None, action=None, target=None, limit: int = 200) -> list[dict]:
    with runtime.engine.connect() as conn:
        return AuditRepository(conn).search(staff_name, action, target, limit)


def on_targets(runtime, targets: list[str]) -> list[dict]:
    with runtime.engine.connect() as conn:
        return AuditRepository(conn).for_targets(targets)
