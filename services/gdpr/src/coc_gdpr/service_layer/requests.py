"""Staff reads of deactivation requests: an account's, and the late ones (a service that has not
reported within the domain's REPORT_WITHIN)."""

from __future__ import annotations

from dataclasses import dataclass

from coc_shared.catalogue import ERASING_SERVICES
from coc_shared.envelope import utcnow

from ..adapters.repository import DeactivationRequestRepository, ErasureReportRepository
from ..domain.model import DeactivationRequest, ErasureReport, late_services


@dataclass(frozen=True)
class RequestView:
    request: DeactivationRequest
    reports: list[ErasureReport]
    waiting_for: list[str]

    def as_json(self) -> dict:
        r = self.request
        return {
            "event_id": r.event_id,
            "account_id": r.account_id,
            "requested_at": r.requested_at.isoformat(),
            "due_by": r.due_by.isoformat(),
            "status": r.status,
            "reason": r.reason,
            "completed_at": r.completed_at.isoformat() if r.completed_at else None,
            "reports": [
                {
                    "service": report.service,
                    "reported_at": report.reported_at.isoformat(),
                    "erased": list(report.erased),
                    "retained": list(report.retained),
                }
                for report in self.reports
            ],
            "waiting_for": self.waiting_for,
        }


def _view(reports_repo, request: DeactivationRequest) -> RequestView:
    reports = reports_repo.of_request(request.event_id)
    reported = {report.service for report in reports}
    waiting = sorted(set(ERASING_SERVICES) - reported) if request.pending else []
    return RequestView(request, reports, waiting)


def requests_of_account(runtime, account_id: str) -> list[RequestView]:
    with runtime.unit_of_work() as uow:
        reports = ErasureReportRepository(uow)
        return [
            _view(reports, r) for r in DeactivationRequestRepository(uow).for_account(account_id)
        ]


def late_requests(runtime) -> list[RequestView]:
    now = utcnow()
    with runtime.unit_of_work() as uow:
        reports = ErasureReportRepository(uow)
        views = [_view(reports, r) for r in DeactivationRequestRepository(uow).pending()]
    return [
        v
        for v in views
        if late_services(v.request, {r.service for r in v.reports}, ERASING_SERVICES, now)
    ]
