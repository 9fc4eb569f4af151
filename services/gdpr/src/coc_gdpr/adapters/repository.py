"""Reading the domain values through a unit of work, and registering their writes."""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import func, select

from coc_shared.envelope import utcnow

from ..domain.corrections import DONE as CORRECTION_DONE
from ..domain.corrections import OPEN as CORRECTION_OPEN
from ..domain.corrections import CorrectionRequest
from ..domain.disclosures import Disclosure
from ..domain.export import EXPIRED as EXPORT_EXPIRED
from ..domain.export import PENDING as EXPORT_PENDING
from ..domain.export import READY as EXPORT_READY
from ..domain.export import ExportRequest
from ..domain.model import (
    DONE,
    PENDING,
    WITHDRAWN,
    ConsentRecord,
    ConsentWithdrawal,
    DeactivationRequest,
    ErasureReport,
)
from . import tables

_REQUEST_COLUMNS = (
    "account_id",
    "event_id",
    "requested_at",
    "status",
    "email",
    "first_name",
    "reason",
    "completed_at",
)


class DeactivationRequestRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, request: DeactivationRequest, verification: str | None = None) -> None:
        """``verification``: how staff verified the person, when they opened it for them."""
        self.uow.add(
            tables.deactivation_requests,
            {
                "account_id": request.account_id,
                "event_id": request.event_id,
                "requested_at": request.requested_at,
                "due_by": request.due_by,
                "status": request.status,
                "received_at": utcnow(),
                "email": request.email,
                "first_name": request.first_name,
                "reason": request.reason,
                "verification": verification,
            },
        )

    def _select(self):
        t = tables.deactivation_requests
        return select(*(t.c[name] for name in _REQUEST_COLUMNS))

    def lock(self, event_id: str) -> DeactivationRequest | None:
        """The request, locked until the transaction ends: two services' reports handled at once
        are counted one after the other, so the last one sees them all."""
        t = tables.deactivation_requests
        row = self.uow.execute(
            self._select().where(t.c.event_id == event_id).with_for_update()
        ).first()
        return DeactivationRequest(**row._mapping) if row is not None else None

    def pending(self, limit: int = 500) -> list[DeactivationRequest]:
        t = tables.deactivation_requests
        rows = self.uow.execute(
            self._select().where(t.c.status == PENDING).order_by(t.c.id).limit(limit)
        ).all()
        return [DeactivationRequest(**r._mapping) for r in rows]

    def complete(self, request: DeactivationRequest, at) -> None:
        """Done: the address the summary went to is forgotten."""
        t = tables.deactivation_requests
        self.uow.change(
            t,
            {"status": DONE, "completed_at": at, "email": None, "first_name": None},
            t.c.event_id == request.event_id,
        )

    def pending_for(self, account_id: str) -> DeactivationRequest | None:
        t = tables.deactivation_requests
        row = self.uow.execute(
            self._select()
            .where(t.c.account_id == account_id, t.c.status == PENDING)
            .order_by(t.c.id)
            .limit(1)
        ).first()
        return DeactivationRequest(**row._mapping) if row is not None else None

    def for_account(self, account_id: str) -> list[DeactivationRequest]:
        t = tables.deactivation_requests
        rows = self.uow.execute(
            self._select().where(t.c.account_id == account_id).order_by(t.c.id)
        ).all()
        return [DeactivationRequest(**r._mapping) for r in rows]


class ErasureReportRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, report: ErasureReport) -> bool:
        """Recorded once per request and service (a repeated report inserts nothing)."""
        return self.uow.claim(
            tables.erasure_reports,
            {
                "request_id": report.request_id,
                "service": report.service,
                "erased": list(report.erased),
                "retained": list(report.retained),
                "reported_at": report.reported_at,
            },
        )

    def of_request(self, request_id: str) -> list[ErasureReport]:
        t = tables.erasure_reports
        rows = self.uow.execute(
            select(t.c.request_id, t.c.service, t.c.erased, t.c.retained, t.c.reported_at)
            .where(t.c.request_id == request_id)
            .order_by(t.c.id)
        ).all()
        return [
            ErasureReport(
                request_id=r.request_id,
                service=r.service,
                erased=tuple(r.erased),
                retained=tuple(r.retained),
                reported_at=r.reported_at,
            )
            for r in rows
        ]


class ConsentRepository:
    def __init__(self, uow):
        self.uow = uow

    def add_withdrawal(self, withdrawal: ConsentWithdrawal) -> bool:
        """Recorded once per event (a repeated delivery inserts nothing)."""
        return self.uow.claim(
            tables.marketing_consents,
            {
                "event_id": withdrawal.event_id,
                "account_id": withdrawal.account_id,
                "address_sha256": withdrawal.address_sha256,
                "purpose": withdrawal.purpose,
                "status": WITHDRAWN,
                "changed_at": withdrawal.changed_at,
                "source": withdrawal.source,
                "recorded_at": utcnow(),
            },
        )


class ConsentLedger:
    """The consent ledger (``marketing_consents``): records are appended once per event, and
    read; never changed."""

    def __init__(self, uow):
        self.uow = uow

    def add(self, record: ConsentRecord) -> bool:
        return self.uow.claim(
            tables.marketing_consents,
            {
                "event_id": record.event_id,
                "consent_id": record.consent_id,
                "account_id": record.account_id,
                "order_id": record.order_id,
                "address_sha256": record.address_sha256,
                "purpose": record.purpose,
                "status": record.status,
                "changed_at": record.at,
                "source": record.channel,
                "text_version": record.text_version,
                "recorded_at": utcnow(),
            },
        )

    def of_subject(self, account_id: str | None, order_ids) -> list[dict]:
        """The records of an account, or of a guest's orders."""
        t = tables.marketing_consents
        if account_id is None and not order_ids:
            return []
        mine = t.c.account_id == account_id if account_id else t.c.order_id.in_(list(order_ids))
        rows = self.uow.execute(
            select(
                t.c.status,
                t.c.purpose,
                t.c.source.label("channel"),
                t.c.text_version,
                t.c.changed_at.label("at"),
                t.c.order_id,
            )
            .where(mine)
            .order_by(t.c.changed_at, t.c.id)
        ).all()
        return [dict(r._mapping) for r in rows]

    def of_account(self, account_id: str) -> list[dict]:
        t = tables.marketing_consents
        rows = self.uow.execute(
            select(
                t.c.consent_id,
                t.c.status,
                t.c.purpose,
                t.c.source.label("channel"),
                t.c.text_version,
                t.c.changed_at.label("at"),
                t.c.order_id,
                t.c.recorded_at,
            )
            .where(t.c.account_id == account_id)
            .order_by(t.c.changed_at, t.c.id)
        ).all()
        return [dict(r._mapping) for r in rows]


class PurgeRunRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, run_id: str, trigger: str, started_at, cutoffs: dict) -> None:
        self.uow.add(
            tables.purge_runs,
            {
                "run_id": run_id,
                "trigger": trigger,
                "started_at": started_at,
                "cutoffs": {c: d.isoformat() for c, d in cutoffs.items()},
            },
        )

    def last_started_at(self):
        t = tables.purge_runs
        return self.uow.execute(select(func.max(t.c.started_at))).scalar_one()

    def lock(self, run_id: str):
        t = tables.purge_runs
        return self.uow.execute(
            select(t.c.run_id, t.c.completed_at).where(t.c.run_id == run_id).with_for_update()
        ).first()

    def add_report(self, run_id: str, service: str, purged: list, at) -> bool:
        return self.uow.claim(
            tables.purge_reports,
            {"run_id": run_id, "service": service, "purged": purged, "reported_at": at},
        )

    def reported_services(self, run_id: str) -> set[str]:
        t = tables.purge_reports
        return set(self.uow.execute(select(t.c.service).where(t.c.run_id == run_id)).scalars())

    def complete(self, run_id: str, at) -> None:
        t = tables.purge_runs
        self.uow.change(t, {"completed_at": at}, t.c.run_id == run_id)

    def recent(self, limit: int = 20) -> list[dict]:
        runs, reports = tables.purge_runs, tables.purge_reports
        rows = self.uow.execute(select(runs).order_by(runs.c.started_at.desc()).limit(limit)).all()
        ids = [r.run_id for r in rows]
        by_run: dict[str, list] = {i: [] for i in ids}
        for report in self.uow.execute(
            select(reports).where(reports.c.run_id.in_(ids)).order_by(reports.c.id)
        ).all():
            by_run[report.run_id].append(
                {
                    "service": report.service,
                    "purged": report.purged,
                    "reported_at": report.reported_at,
                }
            )
        return [{**dict(r._mapping), "reports": by_run[r.run_id]} for r in rows]


class DisclosureRepository:
    """The disclosure log: add and read, nothing else (it is append-only)."""

    def __init__(self, uow):
        self.uow = uow

    def add(self, disclosure: Disclosure) -> None:
        self.uow.add(
            tables.disclosures,
            {
                "disclosure_id": disclosure.id,
                "authority": disclosure.authority,
                "legal_basis": disclosure.legal_basis,
                "reference": disclosure.reference,
                "categories": list(disclosure.categories),
                "disclosed_on": disclosure.disclosed_on,
                "staff": disclosure.staff,
                "staff_role": disclosure.staff_role,
                "recorded_at": disclosure.recorded_at,
                "subject": disclosure.subject,
                "note": disclosure.note,
            },
        )

    def listing(self, subject: str | None = None, limit: int = 100) -> list[Disclosure]:
        t = tables.disclosures
        query = select(t).order_by(t.c.disclosed_on.desc(), t.c.id.desc()).limit(limit)
        if subject:
            query = query.where(t.c.subject == subject)
        return [
            Disclosure(
                id=r.disclosure_id,
                authority=r.authority,
                legal_basis=r.legal_basis,
                reference=r.reference,
                categories=tuple(r.categories),
                disclosed_on=r.disclosed_on,
                staff=r.staff,
                staff_role=r.staff_role,
                recorded_at=r.recorded_at,
                subject=r.subject,
                note=r.note,
            )
            for r in self.uow.execute(query).all()
        ]


_EXPORT_COLUMNS = (
    "request_id",
    "account_id",
    "order_id",
    "order_ids",
    "requested_at",
    "status",
    "email",
    "first_name",
    "ready_at",
    "expires_at",
    "token_sha256",
)


class ExportRepository:
    def __init__(self, uow):
        self.uow = uow

    def _request(self, row) -> ExportRequest:
        values = {name: row._mapping[name] for name in _EXPORT_COLUMNS}
        return ExportRequest(**{**values, "order_ids": tuple(values["order_ids"] or ())})

    def _select(self):
        t = tables.data_exports
        return select(*(t.c[name] for name in _EXPORT_COLUMNS))

    def add(self, request: ExportRequest, verification: str | None = None) -> None:
        """``verification``: how staff verified the person, when they opened it for them."""
        self.uow.add(
            tables.data_exports,
            {
                "request_id": request.request_id,
                "account_id": request.account_id,
                "order_id": request.order_id,
                "order_ids": list(request.order_ids),
                "subject": request.subject,
                "requested_at": request.requested_at,
                "due_by": request.due_by,
                "received_at": utcnow(),
                "status": request.status,
                "email": request.email,
                "first_name": request.first_name,
                "verification": verification,
            },
        )

    def get(self, request_id: str, lock: bool = False) -> ExportRequest | None:
        t = tables.data_exports
        query = self._select().where(t.c.request_id == request_id)
        row = self.uow.execute(query.with_for_update() if lock else query).first()
        return self._request(row) if row is not None else None

    def pending_for(self, subject: str) -> ExportRequest | None:
        t = tables.data_exports
        row = self.uow.execute(
            self._select().where(t.c.subject == subject, t.c.status == EXPORT_PENDING).limit(1)
        ).first()
        return self._request(row) if row is not None else None

    def of_subject(self, subject: str) -> list[ExportRequest]:
        t = tables.data_exports
        rows = self.uow.execute(
            self._select().where(t.c.subject == subject).order_by(t.c.requested_at)
        ).all()
        return [self._request(r) for r in rows]

    def add_contribution(self, request_id: str, service: str, categories, data, at) -> bool:
        return self.uow.claim(
            tables.export_contributions,
            {
                "request_id": request_id,
                "service": service,
                "categories": list(categories),
                "data": data,
                "contributed_at": at,
            },
        )

    def contributions(self, request_id: str) -> dict[str, dict]:
        t = tables.export_contributions
        rows = self.uow.execute(
            select(t.c.service, t.c.data).where(t.c.request_id == request_id)
        ).all()
        return {r.service: r.data or {} for r in rows}

    def contributed_services(self, request_id: str) -> set[str]:
        t = tables.export_contributions
        return set(
            self.uow.execute(select(t.c.service).where(t.c.request_id == request_id)).scalars()
        )

    def ready(self, request_id: str, document: bytes, categories, token_sha256, at, expires_at):
        """Assembled: the document stored, the link's token hash and expiry; the address the
        link goes to and the contributions' data are forgotten."""
        t, c = tables.data_exports, tables.export_contributions
        self.uow.change(
            t,
            {
                "status": EXPORT_READY,
                "document": document,
                "categories": list(categories),
                "token_sha256": token_sha256,
                "ready_at": at,
                "expires_at": expires_at,
                "email": None,
                "first_name": None,
            },
            t.c.request_id == request_id,
        )
        self.uow.change(c, {"data": None}, c.c.request_id == request_id)

    def document(self, request_id: str) -> bytes | None:
        t = tables.data_exports
        return self.uow.execute(
            select(t.c.document).where(t.c.request_id == request_id)
        ).scalar_one_or_none()

    def record_download(self, request_id: str, part: str, at) -> None:
        self.uow.add(
            tables.export_downloads, {"request_id": request_id, "part": part, "downloaded_at": at}
        )

    def downloads(self, request_id: str) -> list[dict]:
        t = tables.export_downloads
        rows = self.uow.execute(
            select(t.c.part, t.c.downloaded_at).where(t.c.request_id == request_id)
        ).all()
        return [dict(r._mapping) for r in rows]

    def forget_subject(self, subject: str) -> None:
        """An erased subject: its exports' documents, addresses and contributions' data go (the
        requests stay recorded, without them)."""
        t, c = tables.data_exports, tables.export_contributions
        self.uow.change(
            c,
            {"data": None},
            c.c.request_id.in_(select(t.c.request_id).where(t.c.subject == subject)),
        )
        self.uow.change(
            t,
            {
                "status": EXPORT_EXPIRED,
                "document": None,
                "email": None,
                "first_name": None,
                "verification": None,
            },
            t.c.subject == subject,
        )

    def expire(self, now) -> int:
        """Exports whose link expired: their document is dropped (the request stays recorded)."""
        t = tables.data_exports
        where = (t.c.status == EXPORT_READY) & (t.c.expires_at <= now)
        count = self.uow.execute(select(func.count()).select_from(t).where(where)).scalar_one()
        if count:
            self.uow.change(t, {"status": EXPORT_EXPIRED, "document": None}, where)
        return count


class OwnPurgeRepository:
    """What a purge run removes from the gdpr schema itself (the schedule's gdpr categories)."""

    def __init__(self, uow):
        self.uow = uow

    def _count(self, table, where) -> int:
        return self.uow.execute(select(func.count()).select_from(table).where(where)).scalar_one()

    def summaries_to_shred(self, cutoff) -> list[str]:
        """Account ids of requests done before ``cutoff`` whose summary key is not destroyed."""
        t = tables.deactivation_requests
        return list(
            self.uow.execute(
                select(t.c.account_id).where(
                    t.c.status == DONE,
                    t.c.completed_at < cutoff,
                    t.c.summary_key_destroyed_at.is_(None),
                )
            ).scalars()
        )

    def summaries_shredded(self, account_ids: list[str], at) -> None:
        t = tables.deactivation_requests
        self.uow.change(
            t,
            {"summary_key_destroyed_at": at},
            t.c.account_id.in_(account_ids),
            t.c.status == DONE,
            t.c.summary_key_destroyed_at.is_(None),
        )

    def delete_done_requests(self, cutoff) -> int:
        """Deactivation requests done before ``cutoff``, with their reports."""
        t, r = tables.deactivation_requests, tables.erasure_reports
        where = (t.c.status == DONE) & (t.c.completed_at < cutoff)
        count = self._count(t, where)
        if count:
            self.uow.remove(r, r.c.request_id.in_(select(t.c.event_id).where(where)))
            self.uow.remove(t, where)
        return count

    def delete_export_records(self, cutoff) -> int:
        """Exports asked for before ``cutoff`` (no longer pending), their contributions and
        downloads."""
        t = tables.data_exports
        c, d = tables.export_contributions, tables.export_downloads
        where = (t.c.status != EXPORT_PENDING) & (t.c.requested_at < cutoff)
        count = self._count(t, where)
        if count:
            ids = select(t.c.request_id).where(where)
            self.uow.remove(c, c.c.request_id.in_(ids))
            self.uow.remove(d, d.c.request_id.in_(ids))
            self.uow.remove(t, where)
        return count

    def delete_done_corrections(self, cutoff) -> int:
        """Correction requests done before ``cutoff`` (open ones stay until done)."""
        t = tables.correction_requests
        where = (t.c.status == CORRECTION_DONE) & (t.c.done_at < cutoff)
        count = self._count(t, where)
        if count:
            self.uow.remove(t, where)
        return count

    def delete_old_disclosures(self, cutoff) -> int:
        """Disclosures made before ``cutoff`` (the log's trigger lets only those older than 5
        years go)."""
        t = tables.disclosures
        where = t.c.disclosed_on < cutoff.date()
        count = self._count(t, where)
        if count:
            self.uow.remove(t, where)
        return count

    def delete_stale_consents(self, cutoff) -> int:
        """The consent ledger's entries of each person (the address's hash, else the account,
        else the order) whose last entry is older than ``cutoff``."""
        t = tables.marketing_consents
        person = func.coalesce(t.c.address_sha256, t.c.account_id, t.c.order_id)
        stale = select(person).group_by(person).having(func.max(t.c.changed_at) < cutoff)
        where = person.in_(stale)
        count = self._count(t, where)
        if count:
            self.uow.remove(t, where)
        return count


# the table's columns but the derived ones (subject, due_by)
_CORRECTION_COLUMNS = tuple(f.name for f in fields(CorrectionRequest))


class CorrectionRepository:
    """Correction requests (GDPR 16) opened by staff on behalf of the customer."""

    def __init__(self, uow):
        self.uow = uow

    def _select(self):
        t = tables.correction_requests
        return select(*(t.c[name] for name in _CORRECTION_COLUMNS))

    def add(self, request: CorrectionRequest) -> None:
        self.uow.add(
            tables.correction_requests,
            {
                **{name: getattr(request, name) for name in _CORRECTION_COLUMNS},
                "subject": request.subject,
                "due_by": request.due_by,
            },
        )

    def get(self, request_id: str, lock: bool = False) -> CorrectionRequest | None:
        t = tables.correction_requests
        query = self._select().where(t.c.request_id == request_id)
        row = self.uow.execute(query.with_for_update() if lock else query).first()
        return CorrectionRequest(**row._mapping) if row is not None else None

    def listed(self, status: str | None, limit: int) -> list[CorrectionRequest]:
        """Oldest deadline first; ``status`` open or done, or None for both."""
        t = tables.correction_requests
        query = self._select().order_by(t.c.due_by, t.c.request_id).limit(limit)
        if status is not None:
            query = query.where(t.c.status == status)
        return [CorrectionRequest(**r._mapping) for r in self.uow.execute(query).all()]

    def of_subject(self, subject: str) -> list[CorrectionRequest]:
        t = tables.correction_requests
        rows = self.uow.execute(
            self._select().where(t.c.subject == subject).order_by(t.c.requested_at)
        ).all()
        return [CorrectionRequest(**r._mapping) for r in rows]

    def mark_done(self, request: CorrectionRequest) -> None:
        t = tables.correction_requests
        self.uow.change(
            t,
            {
                "status": request.status,
                "done_at": request.done_at,
                "done_by": request.done_by,
                "changed": request.changed,
            },
            t.c.request_id == request.request_id,
            t.c.status == CORRECTION_OPEN,
        )

    def forget_subject(self, subject: str) -> int:
        """An erased subject: its correction requests go with it (the text is personal data)."""
        t = tables.correction_requests
        where = (t.c.subject == subject) | (t.c.order_id == subject)
        count = self.uow.execute(select(func.count()).select_from(t).where(where)).scalar_one()
        if count:
            self.uow.remove(t, where)
        return count
