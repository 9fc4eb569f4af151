"""The orders service's part of an account's erasure (``account.erasure_requested``): its
documents' files, the account, and the personal part of its orders, which stay as pseudonymised
evidence for the time the report states."""

from __future__ import annotations

from collections.abc import Callable

from coc_shared.deactivation import AccountDeactivation, ErasureReport, Retained
from coc_shared.logging import get_logger

from ..adapters.erasure import AccountErasureRepository
from ..domain.retention import ORDER_EVIDENCE, ORDER_EVIDENCE_BASIS, evidence_kept_until

log = get_logger(__name__)


def account_erasure(erase_documents: Callable[[object, AccountDeactivation], int] | None):
    """The erasure function of ``erasure_requested_handler``; ``erase_documents`` deletes the
    files of the account's documents (None where no store is configured: unit tests)."""

    def erase(uow, deactivation: AccountDeactivation) -> ErasureReport:
        documents = erase_documents(uow, deactivation) if erase_documents else 0
        counts, last_placed = AccountErasureRepository(uow).erase_account(deactivation.account_id)
        retained = ()
        if last_placed is not None:
            until = evidence_kept_until(last_placed)
            retained = (Retained(ORDER_EVIDENCE, ORDER_EVIDENCE_BASIS, until),)
        log.info(
            "account.erased", account_id=deactivation.account_id, documents=documents, **counts
        )
        return ErasureReport(erased={**counts, "documents": documents}, retained=retained)

    return erase
