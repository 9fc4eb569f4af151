"""Suppliers fetch an order's documents through links the supplier gateway signs (HMAC-SHA256 over
the supplier's code, the document's id and the link's expiry, with the secret both services hold:
``coc_shared.documents``). This is the only way a document's bytes leave the company.

A link opens its document decrypted when it was signed for that supplier and that document, has
not expired (72 hours at most), the order is not cancelled and the document was not erased; every
download is recorded (supplier, document, time, client IP). Anything else is refused: 403 for a
link that is not ours (altered, another supplier's, expired), 404 for a document that is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coc_shared.documents import (
    Cipher,
    DocumentStorage,
    LinkRefused,
    StoredObjectMissing,
    verify_document_link,
)
from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters.repository import DocumentRepository
from ..domain.errors import LinkNotValid, NotConfigured, NotFound
from ..domain.lifecycle import Status

log = get_logger(__name__)


@dataclass(frozen=True)
class Download:
    document_id: str
    kind: str
    content_type: str
    data: bytes


def supplier_download(
    runtime,
    storage: DocumentStorage,
    cipher: Cipher | None,
    secret: str | None,
    document_id: str,
    query: Mapping[str, str],
    client_ip: str,
) -> Download:
    """The document a supplier's link opens, decrypted, its download recorded; LinkNotValid,
    NotFound or NotConfigured otherwise."""
    try:
        supplier = verify_document_link(secret, document_id, query)
    except LinkRefused as exc:
        if exc.status == 503:
            raise NotConfigured(str(exc)) from None
        log.warning("document_link.refused", document_id=document_id[:64], reason=str(exc))
        raise LinkNotValid(str(exc)) from None
    if cipher is None:
        raise NotConfigured("document encryption is not configured (ORDERS_DOCUMENT_KEY)")
    with runtime.unit_of_work() as uow:
        document = DocumentRepository(uow).stored(document_id)
    if document is None or document.erased_at is not None:
        raise NotFound("no such document")
    if document.order_status in (Status.CANCELLED, Status.REFUNDED):
        raise NotFound(
            f"this order was {document.order_status}: its documents are no longer available"
        )
    try:
        data = cipher.decrypt(storage.get(document.storage_key), document.id)
    except StoredObjectMissing:
        raise NotFound("no such document") from None
    with runtime.unit_of_work(correlation_id=document.order_id) as uow:
        DocumentRepository(uow).record_download(document, supplier, client_ip)
        uow.commit()
    log.info(
        "document.downloaded_by_supplier",
        order_id=document.order_id,
        document_id=document.id,
        supplier=supplier,
        kind=document.kind,
    )
    return Download(document.id, document.kind, document.content_type, data)


def erase_account_documents(storage_of, uow, account_id: str) -> int:
    """Erase the files of the documents of an account's orders (their links stop working);
    ``storage_of()`` gives the store. Returns how many were erased. The files are deleted once
    the documents' erasure committed (``uow.after_commit``: a rollback or a dry run keeps them)."""
    documents = DocumentRepository(uow)
    found = documents.of_account(account_id)
    if not found:
        return 0
    documents.erase(found, utcnow())
    uow.after_commit(delete_files(storage_of, [d.storage_key for d in found]))
    return len(found)


def delete_files(storage_of, storage_keys: list[str]):
    """What deletes these files from the store (``storage_of()``), to run after a commit."""

    def delete() -> None:
        storage = storage_of()
        for key in storage_keys:
            storage.delete(key)

    return delete
