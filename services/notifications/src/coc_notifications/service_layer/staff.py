"""Staff use cases: the mails (no bodies, masked addresses) and the resending of a failed one,
recorded in the support actions log with the staff member and the reason."""

from __future__ import annotations

from coc_shared.envelope import utcnow

from ..adapters.repository import MailRepository
from ..domain.model import NotResendable


class MailNotFound(Exception):
    pass


def list_mails(runtime, status=None, template=None, order_id=None, limit=100) -> list[dict]:
    with runtime.unit_of_work() as uow:
        return MailRepository(uow).listing(status, template, order_id, limit)


def resend(runtime, mail_id: int, actor, reason: str) -> dict:
    """Put a failed mail back in the queue (sent at once, as the same message); recorded."""
    if not reason or not reason.strip():
        raise ValueError("a reason is required")
    with runtime.unit_of_work() as uow:
        mails = MailRepository(uow)
        mail = mails.get(mail_id, lock=True)
        if mail is None:
            raise MailNotFound(mail_id)
        again = mail.resent(utcnow())
        mails.save(again)
        uow.commit()
    runtime.parking.record_action(
        actor,
        "resend_mail",
        str(mail_id),
        reason.strip(),
        {
            "service": runtime.settings.service,
            "template": mail.template,
            "order_id": mail.order_id,
            "previous_answer": mail.last_answer,
        },
    )
    return {"id": mail_id, "status": again.status, "template": mail.template}


__all__ = ["MailNotFound", "NotResendable", "list_mails", "resend"]
