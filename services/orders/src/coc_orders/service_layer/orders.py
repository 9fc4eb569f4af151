"""Use cases of orders: place one, open and read one, take a document, cancel one.

Each is one unit of work (``runtime.unit_of_work()``): read through the repositories, decide in the
domain, register the writes and the events, commit; the state change and the events it causes
commit together. They return domain values and raise ``domain.errors`` refusals; what HTTP
answers is the entrypoints' business.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.exc import IntegrityError

from coc_shared.documents import Cipher, DocumentStorage, new_storage_key
from coc_shared.envelope import utcnow
from coc_shared.ids import BlockAllocator
from coc_shared.logging import bound_log_fields, get_logger
from coc_shared.tokens import new_order_access_token
from coc_shared.vies import UNAVAILABLE, VatCheck

from ..adapters.documents import check_document
from ..adapters.repository import (
    AccountRepository,
    DocumentRepository,
    IdempotencyRecord,
    IdempotencyRepository,
    OrderEventRepository,
    OrderRepository,
)
from ..domain.brands import Brands
from ..domain.errors import (
    AccountGone,
    Conflict,
    NotFound,
    TooLarge,
    ValidationFailed,
)
from ..domain.model import Order, OrderDocument, OrderEvent, missing_documents
from ..domain.validation import check_order, merge_with_profile
from ..domain.vat import (
    Pricing,
    buyer_country,
    price,
    reverse_charge_candidate,
    vat_number_refusal,
)

log = get_logger(__name__)

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
IDEMPOTENCY_TTL = timedelta(hours=24)
# asks VIES about one VAT number (coc_shared.vies.ViesClient.check): never raises, answers
# valid | invalid | unavailable | malformed
VatNumberCheck = Callable[[str], VatCheck]


# Placing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceOrder:
    body: dict
    account_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    idempotency_key: str | None = None

    @property
    def fingerprint(self) -> str:
        """The request's SHA-256: a retry with the same Idempotency-Key must send the same body."""
        return hashlib.sha256(
            json.dumps(self.body, sort_keys=True, default=str).encode()
        ).hexdigest()

    @property
    def idempotency_scope(self) -> str:
        """Whose Idempotency-Key it is: the account's, or, for a guest, the key together with the
        body's SHA-256 (a guest has nothing else of their own), so that guests using the same key
        for different orders never meet."""
        return self.account_id or self.fingerprint


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    # a guest's, shown once: never to a retry with the same Idempotency-Key, which anyone sending
    # the same key and body could be
    access_token: str | None
    replayed: bool = False  # a retry with the same Idempotency-Key: the order placed by the first


def place_order(
    runtime,
    cmd: PlaceOrder,
    *,
    brands: Brands,
    numbers: BlockAllocator,
    idempotency_ttl: timedelta = IDEMPOTENCY_TTL,
    today: date | None = None,
    vies: VatNumberCheck | None = None,
) -> PlacedOrder:
    """Validates and prices the order, stores it with its timeline row and ``order.placed`` (and
    the Idempotency-Key's record) in one unit of work. Raises ValidationFailed, AccountGone (the
    token's account no longer exists) or Conflict (the key was used for another request).

    An EU business's VAT number that could put it under the reverse charge is checked with VIES
    (``vies``: ``coc_shared.vies.ViesClient.check``; None counts as VIES unavailable) before the
    order is priced (``domain.vat.price``: VIES down never refuses the order). A guest's order
    has read nothing yet then; an account's has read its profile (no lock is held meanwhile).

    The number is drawn first (``numbers``: a new block is a short transaction of its own, which
    must not wait behind this one); a refused or replayed request leaves a gap, which is fine.
    A guest order without a key reads nothing: its commit is one statement on PostgreSQL."""
    seq, order_id = numbers.next(), str(uuid.uuid4())
    try:
        with runtime.unit_of_work(correlation_id=order_id) as uow:
            replay = _replay(uow, cmd, idempotency_ttl)
            if replay is not None:
                return replay
            order, token = _new_order(uow, cmd, brands, order_id, seq, today, vies)
            OrderRepository(uow).add(order, cmd.client_ip, cmd.user_agent)
            event = uow.emit(
                "order.placed",
                placed_data(order),
                subject=order.id,
                personal=placed_personal(order),
            )
            OrderEventRepository(uow).add(
                OrderEvent(order.id, event.id, event.type, order.placed_at),
                outcome="applied",
                status_after=order.status,
            )
            if cmd.idempotency_key:
                IdempotencyRepository(uow).add(_idempotency_record(cmd, order))
            uow.commit()
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        replay = _replay_after_race(runtime, cmd, idempotency_ttl)
        if replay is None:
            raise
        return replay
    with bound_log_fields(correlation_id=order.id):  # in the order's story, not the request's
        log.info(
            "order.placed",
            order_id=order.id,
            brand=order.brand,
            payment_method=order.payment_method,
            guest=cmd.account_id is None,
        )
    return PlacedOrder(order, token)


def _new_order(
    uow,
    cmd: PlaceOrder,
    brands: Brands,
    order_id: str,
    seq: int,
    today: date | None,
    vies: VatNumberCheck | None,
) -> tuple[Order, str | None]:
    """The validated, priced order (not stored yet) and, for a guest, its access token."""
    body = cmd.body
    if cmd.account_id:
        accounts = AccountRepository(uow)
        account = accounts.get(cmd.account_id)
        if account is None:
            raise AccountGone()
        accounts.active(account.id, utcnow())  # an order is activity of the account
        body = merge_with_profile(body, account.profile, account.email)
    values, errors = check_order(body, brands, today or utcnow().date())
    if errors:
        raise ValidationFailed(errors, "the order is not valid")
    brand = values.pop("brand")
    pricing = _priced(brand, values, vies)
    token, token_hash = (None, None) if cmd.account_id else new_order_access_token()
    order = Order.place(
        id=order_id,
        seq=seq,
        placed_at=utcnow(),
        brand=brand,
        values=values,
        account_id=cmd.account_id,
        access_token_sha256=token_hash,
        pricing=pricing,
    )
    return order, token


def _priced(brand, values: dict, vies: VatNumberCheck | None) -> Pricing:
    """The order's VAT regime and amounts: a reverse-charge candidate's VAT number asked of VIES;
    ValidationFailed (on ``company.vat_number``) when VIES says it is not valid."""
    candidate = reverse_charge_candidate(
        values.get("company"),
        buyer_country(values.get("billing_address"), values.get("shipping_address")),
    )
    status = None
    if candidate is not None:
        status = vies(candidate).status if vies is not None else UNAVAILABLE
        log.info("order.vat_number_checked", status=status, country=candidate[:2])
    refusal = vat_number_refusal(status)
    if refusal is not None:
        raise ValidationFailed({"company": {"vat_number": [refusal]}}, "the order is not valid")
    return price(brand, status)


def _idempotency_record(cmd: PlaceOrder, order: Order) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope=cmd.idempotency_scope,
        key=cmd.idempotency_key,
        request_sha256=cmd.fingerprint,
        order_id=order.id,
        secret=None,  # no access token is kept for retries (orders_0005 erased those kept before)
        created_at=utcnow(),
    )


def _replay(uow, cmd: PlaceOrder, ttl: timedelta) -> PlacedOrder | None:
    """The order placed by an earlier request with this Idempotency-Key, or None (no key, a new
    key, or an expired record, then removed). Conflict when an account's key came with another
    body. A guest's order comes back without its access token."""
    if not cmd.idempotency_key:
        return None
    records = IdempotencyRepository(uow)
    record = records.get(cmd.idempotency_scope, cmd.idempotency_key)
    if record is None:
        return None
    if record.created_at < utcnow() - ttl:
        records.remove(record)
        return None
    if record.request_sha256 != cmd.fingerprint:
        raise Conflict("this Idempotency-Key was already used for a different request")
    order = OrderRepository(uow).get(record.order_id)
    if order is None:
        raise NotFound("no such order")
    return PlacedOrder(order, None, replayed=True)


def _replay_after_race(runtime, cmd: PlaceOrder, ttl: timedelta) -> PlacedOrder | None:
    if not cmd.idempotency_key:
        return None
    with runtime.unit_of_work() as uow:
        return _replay(uow, cmd, ttl)


def placed_data(order: Order) -> dict:
    return {
        "order_id": order.id,
        "order_number": order.number,
        "payment_method": order.payment_method,
        "total": {"amount_cents": order.total_cents, "currency": order.currency},
        "vat_rate": order.vat_rate,
        # what payments invoices (coc_payments.domain.billing.Sale): the regime decided here and
        # the VAT included in the total (0 under the reverse charge, whose total is net)
        "vat_regime": order.vat_regime,
        "vat": {"amount_cents": order.vat_cents, "currency": order.currency},
        "brand": order.brand,
        "vin": order.vin,
        "first_registration_date": order.first_registration_date.isoformat(),
        "documents_required": list(order.documents_required),
        "marketing_consent": order.marketing_consent,
        "account_id": order.account_id,
        "access_token_sha256": order.access_token_sha256,
        "vehicle_extra": dict(order.vehicle_extra or {}),
    }


def placed_personal(order: Order) -> dict:
    personal = {
        "first_name": order.customer["first_name"],
        "last_name": order.customer["last_name"],
        "email": order.customer["email"],
        "phone": order.customer.get("phone"),
        "shipping_address": order.shipping_address,
    }
    if order.billing_address:
        personal["billing_address"] = order.billing_address
    if order.company:
        personal["company"] = order.company
    return personal


# Opening and reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What a request presents to open an order: a customer's account (from a verified bearer
    token) and/or an order's access token (a guest's)."""

    account_id: str | None = None
    access_token: str | None = None


@dataclass(frozen=True)
class OrderView:
    order: Order
    documents: list[OrderDocument]
    timeline: list[dict]


def open_order(runtime, order_id: str, credentials: Credentials) -> Order:
    """The order if ``credentials`` open it; NotFound otherwise, whether it exists or not."""
    order = None
    if len(order_id) <= 36 and "\x00" not in order_id:
        with runtime.unit_of_work() as uow:
            order = OrderRepository(uow).get(order_id)
    if order is None or not order.opened_by(credentials.account_id, credentials.access_token):
        raise NotFound("no such order")
    return order


def order_view(runtime, order_id: str) -> OrderView:
    with runtime.unit_of_work() as uow:
        order = OrderRepository(uow).get(order_id)
        if order is None:
            raise NotFound("no such order")
        documents = DocumentRepository(uow).for_order(order_id)
        return OrderView(order, documents, OrderEventRepository(uow).timeline(order_id))


def find_order(runtime, reference: str) -> Order | None:
    """The order whose id or number (COC-2026-000123) is ``reference`` (staff's search)."""
    match = re.fullmatch(r"COC-(\d{4})-(\d{1,12})", reference.strip().upper())
    with runtime.unit_of_work() as uow:
        if match:
            order = OrderRepository(uow).by_seq(int(match.group(2)))
            return (
                order if order is not None and order.number == reference.strip().upper() else None
            )
        if len(reference) > 36:
            return None
        return OrderRepository(uow).get(reference.strip())


def order_timeline(runtime, order_id: str) -> list[dict]:
    """The events of the order's story as recorded (staff's view), whether the order exists or
    not."""
    with runtime.unit_of_work() as uow:
        return OrderEventRepository(uow).timeline(order_id)


def account_orders(runtime, account_id: str) -> list[tuple[Order, list[OrderDocument]]]:
    """The account's orders, newest first, each with its documents."""
    with runtime.unit_of_work() as uow:
        orders = OrderRepository(uow).for_account(account_id)
        documents = DocumentRepository(uow).for_orders([o.id for o in orders])
    return [(order, documents[order.id]) for order in orders]


# Documents ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentAdded:
    document: OrderDocument
    documents_missing: list[str]  # the required kinds still without a valid document
    completed: bool  # this document completed the set: order.documents_completed was emitted


def add_document(
    runtime, storage: DocumentStorage, cipher: Cipher, order_id: str, kind: str, data: bytes
) -> DocumentAdded:
    """Check, encrypt and store one document, record its metadata; emits
    ``order.documents_completed`` when it completes the required set (again, after the supplier
    refused some: see ``Order.request_documents_again``). What is stored is what the parsers let
    through (``adapters.documents``: a PDF as sent, an image re-encoded). Raises TooLarge,
    UnsupportedMedia (with the reason), NotFound, TooManyDocuments, and NotAllowedNow once the
    order's life is over (cancelled or shipped)."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise TooLarge()
    checked = check_document(data)
    with runtime.unit_of_work() as uow:  # refused before anything is stored (checked again below)
        order = OrderRepository(uow).get(order_id)
        if order is None:
            raise NotFound("no such order")
        order.check_accepts_documents()
        order.check_room_for(kind, DocumentRepository(uow).for_order(order_id))
    document = OrderDocument(
        id=str(uuid.uuid4()),
        order_id=order_id,
        kind=kind,
        content_type=checked.content_type,
        size=len(checked.data),
        sha256=hashlib.sha256(checked.data).hexdigest(),
        uploaded_at=utcnow(),
    )
    key = new_storage_key()
    storage.put(key, cipher.encrypt(checked.data, document.id))
    with runtime.unit_of_work(correlation_id=order_id) as uow:
        orders, documents = OrderRepository(uow), DocumentRepository(uow)
        order = orders.get(order_id, lock=True)
        if order is None:
            raise NotFound("no such order")
        order.check_accepts_documents()
        stored = documents.for_order(order_id)
        order.check_room_for(kind, stored)  # under the order's lock: concurrent uploads count
        present = stored + [document]
        complete_set = order.complete_documents(present, utcnow())
        documents.add(document, key)
        if complete_set is not None:
            orders.save_status(order)
            by_id = {d.id: d for d in present}
            event = uow.emit(
                "order.documents_completed",
                {
                    "order_id": order_id,
                    "document_ids": complete_set,
                    "documents": [
                        {
                            "id": i,
                            "kind": by_id[i].kind,
                            "content_type": by_id[i].content_type,
                        }
                        for i in complete_set
                    ],
                },
                subject=order_id,
            )
            OrderEventRepository(uow).add(
                OrderEvent(order_id, event.id, event.type, order.documents_completed_at),
                outcome="applied",
                status_after=order.status,
            )
        uow.commit()
    log.info(
        "order.document_added",
        order_id=order_id,
        kind=kind,
        size=document.size,
        completed=complete_set is not None,
    )
    return DocumentAdded(
        document, missing_documents(order.documents_required, present), complete_set is not None
    )


# Cancelling ---------------------------------------------------------------------------------


def cancel_order(runtime, order_id: str, reason: str, cancelled_by: str = "customer") -> Order:
    """Cancel the order if its state allows it (only before it was sent to the supplier) and emit
    ``order.cancelled`` in the same unit of work; raises NotFound, or NotAllowedNow with the
    reason."""
    with runtime.unit_of_work(correlation_id=order_id) as uow:
        orders = OrderRepository(uow)
        order = orders.get(order_id, lock=True)
        if order is None:
            raise NotFound("no such order")
        before = order.status
        order.cancel()
        orders.save_status(order)
        event = uow.emit(
            "order.cancelled",
            {"order_id": order_id, "reason": reason, "cancelled_by": cancelled_by},
            subject=order_id,
        )
        OrderEventRepository(uow).add(
            OrderEvent(order_id, event.id, event.type, event.occurred_at),
            outcome="applied",
            status_after=order.status,
        )
        uow.commit()
    log.info("order.cancelled", order_id=order_id, before=before, cancelled_by=cancelled_by)
    return order
