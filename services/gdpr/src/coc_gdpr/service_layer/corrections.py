"""Staff work through correction requests (GDPR 16): the list with each one's deadline (one
month, GDPR 12(3); late ones flagged), and "done": who made the change and what was changed,
recorded with the request and in the support actions, in one unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from coc_shared.envelope import utcnow

from ..adapters.repository import CorrectionRepository
from ..adapters.support_log import SupportActionLog
from ..domain.corrections import CorrectionRefused, CorrectionRequest


@dataclass(frozen=True)
class CorrectionView:
    request: CorrectionRequest
    late: bool


def correction_requests(runtime, status: str | None, limit: int) -> list[CorrectionView]:
    now = utcnow()
    with runtime.unit_of_work() as uow:
        requests = CorrectionRepository(uow).listed(status, limit)
    return [CorrectionView(r, r.late(now)) for r in requests]


def mark_done(runtime, actor, request_id: str, changed: str) -> CorrectionView:
    now = utcnow()
    with runtime.unit_of_work(correlation_id=request_id) as uow:
        requests, actions = CorrectionRepository(uow), SupportActionLog(uow, runtime)
        request = requests.get(request_id, lock=True)
        if request is None:
            raise CorrectionRefused("no such correction request", 404)
        done = request.done(actor.name, changed, now)
        requests.mark_done(done)
        actions.record(
            actor,
            "gdpr_correction_done",
            done.subject,
            None,
            {
                "service": runtime.settings.service,
                "request_id": done.request_id,
                "late": done.late(now),
            },
        )
        uow.commit()
    actions.committed()
    return CorrectionView(done, done.late(now))
