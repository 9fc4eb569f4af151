"""The orders service's part of a purge run of the retention schedule: the IP address and user
agent of old orders (``order_client_traces``), and the files of the ID card and registration
certificate copies once the supplier has issued the certificate plus the buffer
(``identity_documents``: the order keeps only that they were verified and sent), and the support
records of old contacts (``support_records``)."""

from __future__ import annotations

from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters.purges import PurgeRepository
from ..adapters.repository import DocumentRepository
from .supplier_documents import delete_files

log = get_logger(__name__)


def clear_client_traces(uow, cutoff) -> int:
    return PurgeRepository(uow).clear_client_traces(cutoff)


def delete_support_records(uow, cutoff) -> int:
    return PurgeRepository(uow).delete_support_records(cutoff)


def document_purge(storage_of):
    """The purge of identity documents; ``storage_of()`` gives the document store (None: no store
    configured, nothing to delete)."""

    def purge(uow, cutoff) -> int:
        found = PurgeRepository(uow).documents_issued_before(cutoff)
        if not found or storage_of is None:
            return 0
        DocumentRepository(uow).erase(found, utcnow())
        # the files go once the erasure committed (a rollback or a dry run keeps them)
        uow.after_commit(delete_files(storage_of, [d.storage_key for d in found]))
        log.info("documents.purged", documents=len(found))
        return len(found)

    return purge


def purges(storage_of) -> dict:
    return {
        "order_client_traces": clear_client_traces,
        "identity_documents": document_purge(storage_of),
        "support_records": delete_support_records,
    }
