"""The disclosure log's use cases: an admin records a disclosure to an authority (also written to
the support actions log, with the staff member), and admins list them. There is no use case that
changes or deletes one."""

from __future__ import annotations

from coc_shared.envelope import utcnow

from ..adapters.repository import DisclosureRepository
from ..domain.disclosures import Disclosure, InvalidDisclosure, new_disclosure


def record_disclosure(runtime, actor, fields: dict) -> Disclosure:
    """Records the disclosure ``fields`` describe, made by ``actor`` (an admin's ``Actor``)."""
    known = tuple(c.category for c in runtime.config.schedule.categories)
    disclosure = new_disclosure(fields, actor.name, actor.role, known, utcnow())
    with runtime.unit_of_work(correlation_id=disclosure.id) as uow:
        DisclosureRepository(uow).add(disclosure)
        uow.commit()
    runtime.parking.record_action(
        actor,
        "record_disclosure",
        disclosure.id,
        f"{disclosure.legal_basis} ({disclosure.reference})",
        {
            "service": runtime.settings.service,
            "authority": disclosure.authority,
            "categories": list(disclosure.categories),
            "disclosed_on": disclosure.disclosed_on.isoformat(),
            "subject": disclosure.subject,
        },
    )
    return disclosure


def list_disclosures(runtime, subject: str | None = None, limit: int = 100) -> list[Disclosure]:
    with runtime.unit_of_work() as uow:
        return DisclosureRepository(uow).listing(subject, limit)


__all__ = ["InvalidDisclosure", "list_disclosures", "record_disclosure"]
