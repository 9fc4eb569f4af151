"""Use cases of orders: place one, read one, take a document, cancel one. One unit of work each
(``runtime.transaction()``): the state change and the events it causes commit together."""
from __future__ import annotations

import hashlib
import json
import uuid
import weakref
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.exc import DBAPIError, IntegrityError

from coc_shared.auth import new_order_access_token
from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger
from coc_shared.outbox import notify_channel, outbox_row
from coc_shared.service import Transaction

from ..adapters.repository import (
    AccountRepository, DocumentRepository, IdempotencyRepository, OrderEventRepository, OrderRepository,
    PlacedOrderWriter,
)
from ..domain import checks
from ..domain.catalogue import Catalogue
from ..domain.lifecycle import accepts_documents, why_not_cancellable
from ..domain.model import Order, OrderDocument, OrderEvent, complete_set, missing_documents, sniff_content_type

log = get_logger(__name__)

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


class ValidationFailed(Exception):
    def __init__(self, fields: dict, message: str = "the order is not valid"):
        super().__init__(message)
        self.fields = fields
        self.message = message


class Conflict(Exception):
    pass


class NotAllowedNow(Conflict):
    """The order's state does not allow it (409), e.g. cancelling an order sent to the supplier."""

    def __init__(self, message: str, status: str):
        super().__init__(message)
        self.status = status


class NotFound(Exception):
    pass


class UnsupportedMedia(Exception):
    pass


class TooLarge(Exception):
    pass


# Validation ----------------------------------------------------------------------------------

def _put(errors: dict, path: tuple[str, ...], message: str) -> None:
    node = errors
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node.setdefault(path[-1], []).append(message)


def _check(errors: dict, path: tuple[str, ...], func, *args):
    try:
        return func(*args)
    except ValueError as exc:
        _put(errors, path, str(exc))
        return None


PROFILE_PARTS = ("customer", "shipping_address", "billing_address", "company")


def merge_with_profile(body: dict, profile: dict | None, account_email: str | None) -> dict:
    """Fields the body leaves out are filled from the account's saved profile."""
    if not profile and not account_email:
        return body
    profile = profile or {}
    merged = dict(body)
    customer = {k: v for k, v in (profile.get("customer") or {}).items() if v not in (None, "")}
    if account_email:
        customer.setdefault("email", account_email)
    customer.update({k: v for k, v in (body.get("customer") or {}).items() if v not in (None, "")})
    merged["customer"] = customer
    for part in ("shipping_address", "billing_address", "company"):
        if body.get(part) is None and profile.get(part):
            merged[part] = profile[part]
    if "marketing_consent" not in body and "marketing_consent" in profile:
        merged["marketing_consent"] = profile["marketing_consent"]
    return merged


def check_address(errors: dict, path: str, address: dict | None, required: bool) -> dict | None:
    if address is None:
        if required:
            _put(errors, (path,), "Missing data for required field.")
        return None
    out = {}
    for name in ("line1", "city", "country"):
        value = " ".join(str(address.get(name) or "").split())
        if not value:
            _put(errors, (path, name), "Missing data for required field.")
        out[name] = value
    line2 = " ".join(str(address.get("line2") or "").split())
    if line2:
        out["line2"] = line2
    country = out["country"].upper()
    out["country"] = country
    if country and (len(country) != 2 or not country.isalpha()):
        _put(errors, (path, "country"), "Not a valid ISO 3166 country code.")
    elif country:
        import phonenumbers
        if country not in phonenumbers.SUPPORTED_REGIONS:
            _put(errors, (path, "country"), "Not a valid ISO 3166 country code.")
    postal = address.get("postal_code")
    if not postal:
        _put(errors, (path, "postal_code"), "Missing data for required field.")
    else:
        out["postal_code"] = _check(errors, (path, "postal_code"), checks.postal_code, country, str(postal))
    return out


def check_order(body: dict, catalogue: Catalogue, today: date) -> tuple[dict, dict]:
    """The semantic checks of an order's body (shape already checked by the schema).

    Returns (normalised values, errors by field)."""
    errors: dict = {}
    out: dict = {"payment_method": body.get("payment_method"),
                 "marketing_consent": bool(body.get("marketing_consent", False))}
    customer = body.get("customer") or {}
    c = {}
    for name in ("first_name", "last_name"):
        if not customer.get(name):
            _put(errors, ("customer", name), "Missing data for required field.")
        else:
            c[name] = _check(errors, ("customer", name), checks.person_name, customer[name])
    if not customer.get("email"):
        _put(errors, ("customer", "email"), "Missing data for required field.")
    else:
        c["email"] = _check(errors, ("customer", "email"), checks.email_address, customer["email"])
    shipping = check_address(errors, "shipping_address", body.get("shipping_address"), required=True)
    region = (shipping or {}).get("country") or "FR"
    if not customer.get("phone"):
        _put(errors, ("customer", "phone"), "Missing data for required field.")
    else:
        c["phone"] = _check(errors, ("customer", "phone"), checks.phone_e164, customer["phone"],
                            region if len(region) == 2 else "FR")
    out["customer"] = c
    out["shipping_address"] = shipping
    out["billing_address"] = check_address(errors, "billing_address", body.get("billing_address"), required=False)

    company = body.get("company")
    if company is not None:
        co = {}
        name = " ".join(str(company.get("name") or "").split())
        if not name:
            _put(errors, ("company", "name"), "Missing data for required field.")
        co["name"] = name
        siren = None
        if company.get("siren"):
            siren = _check(errors, ("company", "siren"), checks.siren, company["siren"])
        if company.get("vat_number"):
            vat = _check(errors, ("company", "vat_number"), checks.vat_number, company["vat_number"], siren)
            if vat and vat.startswith("FR") and not company.get("siren"):
                siren = vat[4:]  # a valid French VAT number carries the SIREN
            co["vat_number"] = vat
        co["siren"] = siren
        out["company"] = co
    else:
        out["company"] = None

    vehicle = body.get("vehicle") or {}
    if not vehicle:
        _put(errors, ("vehicle",), "Missing data for required field.")
    brand = None
    if vehicle.get("vin"):
        info = _check(errors, ("vehicle", "vin"), checks.vin, vehicle["vin"])
        if info is not None:
            brand = catalogue.by_maker(info.maker)
            if brand is None:
                _put(errors, ("vehicle", "vin"), f"We do not sell certificates for this maker ({info.maker}).")
            else:
                out["vin"] = info.vin
                given = vehicle.get("brand")
                if given and catalogue.by_name(given) is not brand:
                    _put(errors, ("vehicle", "brand"),
                         f"This VIN belongs to a vehicle of {brand.brand}, not {given}.")
    elif vehicle:
        _put(errors, ("vehicle", "vin"), "Missing data for required field.")
    if vehicle:
        when = vehicle.get("first_registration_date")
        if when is None:
            _put(errors, ("vehicle", "first_registration_date"), "Missing data for required field.")
        else:
            out["first_registration_date"] = _check(errors, ("vehicle", "first_registration_date"),
                                                    checks.registration_date, when, today)
    extra = vehicle.get("extra") or {}
    out["vehicle_extra"] = {}
    if brand is not None:
        known = {f.name for f in brand.extra_fields}
        for name in sorted(set(extra) - known):
            _put(errors, ("vehicle", "extra", name), f"Unknown field for {brand.brand}.")
        for spec in brand.extra_fields:
            message = spec.check(extra.get(spec.name))
            if message:
                _put(errors, ("vehicle", "extra", spec.name), message)
            elif extra.get(spec.name):
                out["vehicle_extra"][spec.name] = extra[spec.name].strip()
    out["brand"] = brand
    return out, errors


# Placing ------------------------------------------------------------------------------------

@dataclass
class PlaceOrder:
    body: dict
    account_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    idempotency_key: str | None = None


@dataclass
class Placed:
    status_code: int
    order: Order
    access_token: str | None
    replayed: bool = False
    response: dict | None = None


def request_fingerprint(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _idempotency_scope(account_id: str | None) -> str:
    return account_id or "guest"


def find_replay(runtime, cmd: PlaceOrder, ttl: timedelta, cipher) -> dict | None:
    """The first answer to a POST with this Idempotency-Key, or None. Raises Conflict when the key
    was used for another request."""
    if not cmd.idempotency_key:
        return None
    with runtime.engine.connect() as conn:
        replay = _replay_on(conn, cmd, ttl, cipher)
        conn.commit()
    return replay


def _replay_on(conn, cmd: PlaceOrder, ttl: timedelta, cipher) -> dict | None:
    """``find_replay`` on a connection (the caller commits: an expired key is deleted)."""
    row = IdempotencyRepository(conn).get(_idempotency_scope(cmd.account_id), cmd.idempotency_key, ttl)
    if row is None:
        return None
    if row.request_sha256 != request_fingerprint(cmd.body):
        raise Conflict("this Idempotency-Key was already used for a different request")
    response = dict(row.response)
    if row.secret is not None and cipher is not None:
        response["access_token"] = cipher.decrypt(row.secret, f"idempotency:{row.order_id}").decode()
    return {"status_code": row.status_code, "body": response}


def place_order(runtime, catalogue: Catalogue, cmd: PlaceOrder, render, cipher=None, today: date | None = None,
                ttl: timedelta = timedelta(hours=24)) -> dict:
    """Validates, prices, stores the order and writes ``order.placed`` in one transaction.

    ``render(order, access_token)`` gives the answer's body. Returns {"status_code", "body",
    "replayed"}; raises ValidationFailed (422) or Conflict (Idempotency-Key reused).

    On PostgreSQL the writes are one statement (``PlacedOrderWriter``) on a connection taken without
    a ping; elsewhere (SQLite, the embedded mode) through ``runtime.transaction()``."""
    if runtime.engine.dialect.name == "postgresql":
        return _place_order_postgresql(runtime, catalogue, cmd, render, cipher, today, ttl)
    return _place_order_generic(runtime, catalogue, cmd, render, cipher, today, ttl)


def _new_identity(cmd: PlaceOrder) -> tuple[str, str | None, str | None]:
    """A new order's id, and for a guest its access token and the token's hash."""
    token, token_hash = (None, None) if cmd.account_id else new_order_access_token()
    return str(uuid.uuid4()), token, token_hash


def _new_order(catalogue: Catalogue, cmd: PlaceOrder, profile, email, today: date | None, identity=None):
    """The validated, priced order (not stored yet) and the guest's access token; ValidationFailed."""
    body = merge_with_profile(cmd.body, profile, email)
    values, errors = check_order(body, catalogue, today or utcnow().date())
    if errors:
        raise ValidationFailed(errors)
    brand = values.pop("brand")
    order_id, token, token_hash = identity or _new_identity(cmd)
    order = Order(
        id=order_id, status="placed", placed_at=utcnow(), brand=brand.brand,
        total_cents=brand.price_cents, currency=brand.currency, vat_rate=brand.vat_rate, vat_cents=brand.vat_cents,
        documents_required=list(brand.documents_required), account_id=cmd.account_id,
        access_token_sha256=token_hash, **values)
    return order, token


def _placed(order: Order, cmd: PlaceOrder, token: str | None, render) -> dict:
    log.info("order.placed", order_id=order.id, brand=order.brand, payment_method=order.payment_method,
             guest=cmd.account_id is None)
    return {"status_code": 201, "body": render(order, token), "replayed": False}


_WRITERS: dict[str, PlacedOrderWriter] = {}


def _writer(schema: str) -> PlacedOrderWriter:
    writer = _WRITERS.get(schema)
    if writer is None:
        writer = _WRITERS[schema] = PlacedOrderWriter(schema)
    return writer


_AUTOCOMMIT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _autocommit_engine(runtime):
    """``runtime.worker_engine`` (its pool pings no connection before use) in autocommit: one
    statement is its own transaction, without BEGIN and COMMIT round trips. Built once per engine."""
    base = runtime.worker_engine
    engine = _AUTOCOMMIT.get(base)
    if engine is None:
        engine = _AUTOCOMMIT[base] = base.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def _place_order_postgresql(runtime, catalogue, cmd, render, cipher, today, ttl) -> dict:
    """On a connection from the pool without a pre-ping (``runtime.worker_engine``), in autocommit:
    the idempotency and account reads when needed, then one statement writing the order, its
    timeline row, the outbox row and the NOTIFY atomically (``PlacedOrderWriter``).

    A connection found dead (PostgreSQL restarted: what the pre-ping would have caught) is replaced
    and the request run once more with the same order id and access token: if the first write did
    commit before the connection died, the second one meets the order's id and the order stored
    is answered; no order is placed twice."""
    engine = _autocommit_engine(runtime)
    identity = _new_identity(cmd)
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                return _place_on(conn, runtime, catalogue, cmd, render, cipher, today, ttl, identity,
                                 retried=attempt > 1)
        except DBAPIError as exc:
            if attempt > 1 or not exc.connection_invalidated:
                raise
            log.warning("orders.connection_replaced", error_type=type(exc.orig).__name__)
    raise AssertionError("unreachable")


def _place_on(conn, runtime, catalogue, cmd, render, cipher, today, ttl, identity, retried: bool) -> dict:
    if cmd.idempotency_key:
        replay = _replay_on(conn, cmd, ttl, cipher)
        if replay is not None:
            return {**replay, "replayed": True}
    profile, email = None, None
    if cmd.account_id:
        account = AccountRepository(conn).get(cmd.account_id)
        if account is None:
            raise NotFound("account")
        profile, email = account.profile, account.email
    order, token = _new_order(catalogue, cmd, profile, email, today, identity)
    # order.seq stays None until the write: the bodies carry a placeholder number that the
    # statement replaces with the real one (PlacedOrderWriter)
    tx = Transaction(conn, runtime.definition.name, order.id, None)
    event = tx.emit("order.placed", placed_data(order), subject=order.id, personal=placed_personal(order),
                    correlation_id=order.id)
    row = outbox_row(event)  # validated against the catalogue, as add_to_outbox does
    idempotency = None
    if cmd.idempotency_key:
        secret = cipher.encrypt(token.encode(), f"idempotency:{order.id}") if (token and cipher) else None
        idempotency = {"scope": _idempotency_scope(cmd.account_id), "key": cmd.idempotency_key,
                       "request_sha256": request_fingerprint(cmd.body), "status_code": 201,
                       "response": render(order, None), "secret": secret}
    writer = _writer(runtime.definition.schema)
    try:
        order.seq = writer.write(conn, order, cmd.client_ip, cmd.user_agent, row,
                                 notify_channel(runtime.definition.schema), idempotency)
    except IntegrityError:
        if retried:
            stored = OrderRepository(conn).get(order.id)
            if stored is not None:  # written by the first attempt, whose connection died before the answer
                return _placed(stored, cmd, token, render)
        if not cmd.idempotency_key:
            raise
        # A concurrent request with the same key won the race: answer as it did.
        replay = _replay_on(conn, cmd, ttl, cipher)
        if replay is None:
            raise
        return {**replay, "replayed": True}
    return _placed(order, cmd, token, render)


def _place_order_generic(runtime, catalogue, cmd, render, cipher, today, ttl) -> dict:
    replay = find_replay(runtime, cmd, ttl, cipher)
    if replay is not None:
        return {**replay, "replayed": True}

    profile, email = None, None
    if cmd.account_id:
        with runtime.engine.connect() as conn:
            account = AccountRepository(conn).get(cmd.account_id)
        if account is None:
            raise NotFound("account")
        profile, email = account.profile, account.email
    order, token = _new_order(catalogue, cmd, profile, email, today)
    try:
        with runtime.transaction(correlation_id=order.id) as tx:
            OrderRepository(tx.conn).add(order, cmd.client_ip, cmd.user_agent)
            event = tx.emit("order.placed", placed_data(order), subject=order.id, personal=placed_personal(order),
                            correlation_id=order.id)
            OrderEventRepository(tx.conn).add(OrderEvent(order.id, event.id, "order.placed", order.placed_at),
                                              outcome="applied", status_after="placed", new=True)
            answer = render(order, None)
            if cmd.idempotency_key:
                secret = cipher.encrypt(token.encode(), f"idempotency:{order.id}") if (token and cipher) else None
                IdempotencyRepository(tx.conn).add(_idempotency_scope(cmd.account_id), cmd.idempotency_key,
                                                   request_fingerprint(cmd.body), order.id, 201, answer, secret)
    except IntegrityError:
        if not cmd.idempotency_key:
            raise
        # A concurrent request with the same key won the race: answer as it did.
        replay = find_replay(runtime, cmd, ttl, cipher)
        if replay is None:
            raise
        return {**replay, "replayed": True}
    return _placed(order, cmd, token, render)


def placed_data(order: Order) -> dict:
    return {
        "order_id": order.id, "order_number": order.number, "payment_method": order.payment_method,
        "total": {"amount_cents": order.total_cents, "currency": order.currency}, "vat_rate": order.vat_rate,
        "brand": order.brand, "vin": order.vin, "first_registration_date": order.first_registration_date.isoformat(),
        "documents_required": list(order.documents_required), "marketing_consent": order.marketing_consent,
        "account_id": order.account_id, "access_token_sha256": order.access_token_sha256,
    }


def placed_personal(order: Order) -> dict:
    personal = {"first_name": order.customer["first_name"], "last_name": order.customer["last_name"],
                "email": order.customer["email"], "phone": order.customer.get("phone"),
                "shipping_address": order.shipping_address}
    if order.billing_address:
        personal["billing_address"] = order.billing_address
    if order.company:
        personal["company"] = order.company
    return personal


# Reading ------------------------------------------------------------------------------------

def load_order_view(runtime, order_id: str) -> tuple[Order, list[OrderDocument], list[dict]] | None:
    with runtime.engine.connect() as conn:
        order = OrderRepository(conn).get(order_id)
        if order is None:
            return None
        return order, DocumentRepository(conn).for_order(order_id), OrderEventRepository(conn).timeline(order_id)


# Documents ----------------------------------------------------------------------------------

def add_document(runtime, storage, cipher, order_id: str, kind: str, data: bytes) -> tuple[OrderDocument, bool]:
    """Encrypt and store one document, record its metadata; emits ``order.documents_completed`` when
    it was the last one required (again, after the supplier refused some: see
    ``Order.request_documents_again``). Returns (document, completed now). Raises NotAllowedNow once
    the order's life is over (cancelled or shipped): no document is taken any more."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise TooLarge()
    content_type = sniff_content_type(data[:16])
    if content_type is None:
        raise UnsupportedMedia()
    from ..adapters.storage import new_storage_key
    document = OrderDocument(id=str(uuid.uuid4()), order_id=order_id, kind=kind, content_type=content_type,
                             size=len(data), sha256=hashlib.sha256(data).hexdigest(), uploaded_at=utcnow())
    key = new_storage_key()
    storage.put(key, cipher.encrypt(data, document.id))
    completed = False
    with runtime.transaction(correlation_id=order_id) as tx:
        orders = OrderRepository(tx.conn)
        order = orders.get(order_id, for_update=True)
        if order is None:
            raise NotFound(order_id)
        if not accepts_documents(order.status):
            raise NotAllowedNow(f"this order is {order.status}: it takes no more documents", order.status)
        documents = DocumentRepository(tx.conn)
        documents.add(document, key)
        if order.documents_completed_at is None:
            present = documents.for_order(order_id)
            if not missing_documents(order.documents_required, present):
                order.documents_completed_at = utcnow()
                orders.save_status(order)
                ids = complete_set(order.documents_required, present)
                event = tx.emit("order.documents_completed", {"order_id": order_id, "document_ids": ids},
                                subject=order_id, correlation_id=order_id)
                OrderEventRepository(tx.conn).add(
                    OrderEvent(order_id, event.id, "order.documents_completed", order.documents_completed_at),
                    outcome="applied", status_after=order.status)
                completed = True
    log.info("order.document_added", order_id=order_id, kind=kind, size=document.size, completed=completed)
    return document, completed


# Cancelling ---------------------------------------------------------------------------------

def cancel_order(runtime, order_id: str, reason: str, cancelled_by: str = "customer") -> Order:
    """Cancel the order if its state allows it (only before it was sent to the supplier) and emit
    ``order.cancelled`` in the same transaction; raises NotAllowedNow otherwise (409)."""
    with runtime.transaction(correlation_id=order_id) as tx:
        orders = OrderRepository(tx.conn)
        order = orders.get(order_id, for_update=True)
        if order is None:
            raise NotFound(order_id)
        refusal = why_not_cancellable(order.status)
        if refusal is not None:
            raise NotAllowedNow(refusal, order.status)
        before = order.status
        order.apply("order.cancelled")
        orders.save_status(order)
        event = tx.emit("order.cancelled", {"order_id": order_id, "reason": reason, "cancelled_by": cancelled_by},
                        subject=order_id, correlation_id=order_id)
        OrderEventRepository(tx.conn).add(OrderEvent(order_id, event.id, "order.cancelled", event.occurred_at),
                                          outcome="applied", status_after=order.status, new=True)
    log.info("order.cancelled", order_id=order_id, before=before, cancelled_by=cancelled_by)
    return order
