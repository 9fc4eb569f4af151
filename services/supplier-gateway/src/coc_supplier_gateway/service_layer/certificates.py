"""The customer's certificate of conformity: the PDF the supplier sent, to the owner of the order
(its account, or the holder of its access token) once it is received."""

from __future__ import annotations

from dataclasses import dataclass

from coc_shared.documents import StoredObjectMissing
from coc_shared.tokens import access_token_matches

from ..adapters.repository import SupplierRequestRepository
from ..domain.model import DELIVERED, ISSUED, SHIPPED, SupplierRequest
from .replies import store_of

MAX_ORDER_ID = 200  # longer is no order id of ours: not looked up


class NoCertificate(Exception):
    """The caller gets no certificate (the message says why: an order that is not theirs is "no
    such order", whether it exists or not)."""


@dataclass(frozen=True)
class Certificate:
    order_number: str | None
    pdf: bytes


def customer_certificate(
    runtime, order_id: str, account_id: str | None, order_token: str | None
) -> Certificate:
    """The order's certificate for its owner; ``NoCertificate``, or ``NotConfigured`` when the
    certificates' key is not set."""
    found = None
    if len(order_id) <= MAX_ORDER_ID:
        with runtime.unit_of_work() as uow:
            found = SupplierRequestRepository(uow).get(order_id)
    if found is None or not _opens(found, account_id, order_token):
        raise NoCertificate("no such order")
    if found.status not in (ISSUED, SHIPPED, DELIVERED) or not found.certificate_id:
        raise NoCertificate("the certificate has not been received yet")
    if not found.certificate_storage_key:
        raise NoCertificate("the certificate was issued on paper only: it is posted")
    try:
        pdf = store_of(runtime).get(found.certificate_id, found.certificate_storage_key)
    except StoredObjectMissing:
        raise NoCertificate("the certificate is no longer available") from None
    return Certificate(found.order_number, pdf)


def _opens(found: SupplierRequest, account_id: str | None, order_token: str | None) -> bool:
    return (account_id is not None and found.account_id == account_id) or access_token_matches(
        order_token, found.access_token_sha256
    )
