"""A support action (``ops.support_actions``: who, which action, on what, details) written by a
use case in its own unit of work, so that the request and its record commit or fail together."""

from __future__ import annotations

from coc_shared.envelope import utcnow
from coc_shared.export import jsonable
from coc_shared.logging import get_logger
from coc_shared.tables import support_actions
from coc_shared.tokens import Actor

log = get_logger(__name__)


class SupportActionLog:
    def __init__(self, uow, runtime):
        self.uow = uow
        # ops in the service's own database (the default; compose): the same transaction
        self.same_database = runtime.parking_engine is runtime.engine
        self.runtime = runtime
        self._deferred: list[tuple] = []

    def record(
        self, actor: Actor, action: str, target: str | None, reason: str | None, details: dict
    ) -> None:
        if self.same_database:
            self.uow.add(
                support_actions,
                {
                    "at": utcnow(),
                    "actor": actor.name,
                    "role": actor.role,
                    "action": action,
                    "target": target,
                    "reason": reason,
                    "details": jsonable(details),
                },
            )
            log.info("support.action", actor=actor.name, role=actor.role, action=action)
        else:  # PARKING_DATABASE_URL elsewhere: written once the unit of work has committed
            self._deferred.append((actor, action, target, reason, details))

    def committed(self) -> None:
        """Call after the unit of work's commit (only needed with ops in another database)."""
        for entry in self._deferred:
            self.runtime.parking.record_action(*entry)
        self._deferred = []
