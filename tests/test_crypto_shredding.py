"""Crypto-shredding of the events' personal part (issue 13 point 3), on the real PostgreSQL and
RabbitMQ: sealed in the outbox (no clear personal data in PostgreSQL), opened by the consumer;
a tampered ciphertext or one moved to another event or subject is refused (parked, never
applied); a destroyed key gives the erased marker: an event sealed before the erasure and still
in a queue is handled without its personal part (no mail, recorded as dropped), a parked message
of an erased subject is shown with its personal part marked erased and replayed; the
key-encryption key rotates."""

import base64
import copy
import json
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import email_change

from coc_notifications.adapters import tables as notifications_tables
from coc_notifications.service import definition as notifications_definition
from coc_orders.service import definition as orders_definition
from coc_shared import keystore
from coc_shared.bus import Broker, OutgoingMessage, Publisher
from coc_shared.envelope import Event
from coc_shared.keystore import KeyStore, SealBroken, key_subject, rotate
from coc_shared.parking import parked_to_json
from coc_shared.tables import subject_keys
from coc_shared.testing import TEST_KEK, wait_until
from coc_shared.tokens import Actor

ALICE = Actor("alice", "support")


@pytest.fixture
def orders(runtime_factory):
    return runtime_factory(orders_definition)


@pytest.fixture
def workers():
    stop = threading.Event()
    threads = []

    def start(runtime, **kwargs):
        threads.extend(runtime.start_worker_threads(stop, **kwargs))

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)




def emit(producer, event: Event) -> Event:
    with producer.unit_of_work(correlation_id=event.correlation_id) as uow:
        emitted = uow.emit(event.type, event.data, subject=event.subject, personal=event.personal)
        uow.commit()
    return emitted


def outbox_body(runtime, event_id: str) -> bytes:
    with runtime.engine.connect() as conn:
        return bytes(
            conn.execute(
                select(runtime.outbox.c.body).where(runtime.outbox.c.event_id == event_id)
            ).scalar_one()
        )


def mails_of(runtime, event_id: str) -> list:
    t = notifications_tables.mails
    with runtime.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.source_id == event_id)).all()


# the key store ----------------------------------------------------------------------------------


def test_sealed_parts_open_only_for_their_event_and_subject(orders):
    keys = orders.keys
    assert keys is not None, "the tests run with sealing on (coc_shared.testing.TEST_KEK)"
    account = str(uuid.uuid4())
    event = email_change(account, f"{account}@example.org", "t0k3n")
    keys.seal_events([event])
    assert event.sealed["kid"] == account and event.sealed["sealed"] == "A256GCM"
    assert account not in event.sealed["ct"] and "t0k3n" not in json.dumps(event.sealed)

    wire = Event.from_json(event.to_json())
    assert wire.personal is None and wire.sealed == event.sealed
    keys.unseal_event(wire)
    assert wire.personal == event.personal and not wire.personal_erased

    # tampered: one bit of the ciphertext flipped
    tampered = Event.from_json(event.to_json())
    raw = bytearray(base64.b64decode(tampered.sealed["ct"]))
    raw[20] ^= 1
    tampered.sealed = {**tampered.sealed, "ct": base64.b64encode(bytes(raw)).decode()}
    with pytest.raises(SealBroken):
        keys.unseal_event(tampered)

    # moved to another event (the associated data is the event id)
    moved = Event.from_json(event.to_json())
    moved.id = str(uuid.uuid4())
    with pytest.raises(SealBroken):
        keys.unseal_event(moved)

    # claimed for another subject that has a key of its own
    other = email_change(str(uuid.uuid4()), "other@example.org", "x")
    keys.seal_events([other])
    wrong_subject = Event.from_json(event.to_json())
    wrong_subject.sealed = {**wrong_subject.sealed, "kid": other.sealed["kid"]}
    with pytest.raises(SealBroken):
        keys.unseal_event(wrong_subject)

    # a subject that never had a key
    unknown = Event.from_json(event.to_json())
    unknown.sealed = {**unknown.sealed, "kid": str(uuid.uuid4())}
    with pytest.raises(SealBroken):
        keys.unseal_event(unknown)

    # destroyed: the erased marker, in this process and in another one (no cache)
    assert keys.destroy(account) == 1
    assert keys.destroy(account) == 0  # once
    for store in (keys, KeyStore(orders.parking_engine, keystore.decode_kek(TEST_KEK))):
        erased = Event.from_json(event.to_json())
        store.unseal_event(erased)
        assert erased.personal is None and erased.personal_erased
    with orders.parking_engine.connect() as conn:
        row = conn.execute(select(subject_keys).where(subject_keys.c.subject == account)).one()
    assert row.wrapped_key is None and row.destroyed_at is not None

    # an event emitted about an erased subject travels with the marker only
    late = email_change(account, f"{account}@example.org", "late")
    keys.seal_events([late])
    assert late.sealed == {"erased": True}


def test_an_orders_key_is_destroyed_with_its_account(orders):
    from coc_shared.testing import fresh_example

    placed = fresh_example("order.placed")
    placed.data["account_id"] = str(uuid.uuid4())  # a customer with an account
    account, order_id = placed.data["account_id"], placed.data["order_id"]
    orders.keys.seal_events([placed])
    assert placed.sealed["kid"] == account
    later = Event(
        type="certificate.shipped",
        producer="supplier-gateway",
        correlation_id=order_id,
        subject=order_id,
        data={"order_id": order_id},
        personal={"tracking": "X"},
    )
    orders.keys.seal_events([later])
    assert later.sealed["kid"] == order_id == key_subject(later)
    orders.keys.destroy(account)
    fresh = KeyStore(orders.parking_engine, keystore.decode_kek(TEST_KEK))
    for sealed in (placed, later):
        wire = Event.from_json(sealed.to_json())
        fresh.unseal_event(wire)
        assert wire.personal_erased


def test_the_key_encryption_key_rotates(orders, settings_factory):
    new_kek = base64.b64encode(b"another-key-encryption-key-32by!").decode()
    event = email_change(str(uuid.uuid4()), "rotate@example.org", "r")
    orders.keys.seal_events([event])
    rewrapped = rotate(
        orders.parking_engine, [keystore.decode_kek(TEST_KEK)], keystore.decode_kek(new_kek)
    )
    assert rewrapped >= 1
    try:
        only_new = KeyStore(orders.parking_engine, keystore.decode_kek(new_kek))
        wire = Event.from_json(event.to_json())
        only_new.unseal_event(wire)
        assert wire.personal == event.personal
        only_old = KeyStore(orders.parking_engine, keystore.decode_kek(TEST_KEK))
        with pytest.raises(SealBroken):
            only_old.unseal_event(Event.from_json(event.to_json()))
        during = KeyStore(  # the new key, the old one as PERSONAL_DATA_KEK_PREVIOUS
            orders.parking_engine, keystore.decode_kek(new_kek), [keystore.decode_kek(TEST_KEK)]
        )
        during.unseal_event(Event.from_json(event.to_json()))
        assert (
            rotate(
                orders.parking_engine, [keystore.decode_kek(TEST_KEK)], keystore.decode_kek(new_kek)
            )
            == 0
        )
    finally:  # the rest of the run's database under the tests' key again
        rotate(orders.parking_engine, [keystore.decode_kek(new_kek)], keystore.decode_kek(TEST_KEK))


# the pipeline -----------------------------------------------------------------------------------


def test_outbox_rows_hold_no_clear_personal_data(orders, database_url):
    account = str(uuid.uuid4())
    address, token = f"secret-{account[:8]}@example.org", f"tok-{uuid.uuid4().hex}"
    emitted = emit(orders, email_change(account, address, token))
    body = outbox_body(orders, emitted.id)
    assert address.encode() not in body and token.encode() not in body
    assert json.loads(body)["personal"]["sealed"] == "A256GCM"
    with orders.engine.connect() as conn:  # nowhere in any outbox of the database
        for schema in ("orders", "payments", "supplier_gateway", "notifications", "gdpr"):
            exists = conn.execute(
                text("SELECT to_regclass(:t)"), {"t": f"{schema}.outbox"}
            ).scalar()
            if exists is None:
                continue
            found = conn.execute(
                text(
                    f"SELECT count(*) FROM {schema}.outbox "
                    "WHERE position(CAST(:a AS bytea) IN body) > 0"
                ),
                {"a": address.encode()},
            ).scalar()
            assert found == 0, schema


def test_an_event_sealed_before_the_erasure_is_handled_without_its_personal_part(
    orders, runtime_factory, workers
):
    notifications = runtime_factory(notifications_definition)
    notifications.declare_topology()
    workers(orders, consume=False)  # the relay: the events go to notifications' queue
    account = str(uuid.uuid4())
    before = emit(orders, email_change(account, f"{account}@example.org", "before"))
    wait_until(lambda: json.loads(outbox_body(orders, before.id)) and _sent(orders, before.id))
    # erased while the event waits in the queue (nobody consumes yet)
    notifications.keys.destroy(account)
    workers(notifications)
    wait_until(lambda: mails_of(notifications, before.id), message="the event handled")
    [mail] = mails_of(notifications, before.id)
    assert mail.status == "dropped" and mail.to_address is None and mail.secret_url is None
    assert not notifications.parking.list(service="notifications", event_id=before.id)

    # an account not erased: its mail is recorded with the opened address and link
    other = str(uuid.uuid4())
    alive = emit(orders, email_change(other, f"{other}@example.org", "alive-token"))
    wait_until(lambda: mails_of(notifications, alive.id), message="the event handled")
    [mail] = mails_of(notifications, alive.id)
    assert mail.to_address == f"{other}@example.org" and "alive-token" in mail.secret_url


def _sent(runtime, event_id: str) -> bool:
    with runtime.engine.connect() as conn:
        return (
            conn.execute(
                select(runtime.outbox.c.sent_at).where(runtime.outbox.c.event_id == event_id)
            ).scalar()
            is not None
        )


def test_a_tampered_message_is_parked_and_changes_nothing(orders, runtime_factory, workers):
    notifications = runtime_factory(notifications_definition)
    notifications.declare_topology()
    workers(notifications)
    account = str(uuid.uuid4())
    event = email_change(account, f"{account}@example.org", "tampered")
    orders.keys.seal_events([event])
    event.sealed = copy.deepcopy(event.sealed)
    raw = bytearray(base64.b64decode(event.sealed["ct"]))
    raw[-1] ^= 0x80
    event.sealed["ct"] = base64.b64encode(bytes(raw)).decode()
    _publish_raw(orders, event)
    wait_until(
        lambda: notifications.parking.list(service="notifications", event_id=event.id),
        message="the tampered event parked",
    )
    [row] = notifications.parking.list(service="notifications", event_id=event.id)
    assert row["error_type"] == "SealBroken" and row["attempts"] == 1
    assert not mails_of(notifications, event.id)


def _publish_raw(producer, event: Event) -> None:
    publisher = Publisher(producer.broker)
    try:
        publisher.publish_one(
            OutgoingMessage(
                message_id=event.id,
                body=event.to_json(),
                routing_key=event.type,
                event_type=event.type,
                correlation_id=event.correlation_id,
            )
        )
    finally:
        publisher.close()


def test_a_parked_message_of_an_erased_subject_is_shown_erased_and_replayed(
    orders, runtime_factory, workers, broker_accounts, bus_prefix
):
    notifications = runtime_factory(notifications_definition)
    notifications.declare_topology()
    workers(notifications)
    account = str(uuid.uuid4())
    # a personal part its schema refuses (no confirmation link): parked once opened
    event = email_change(account, f"{account}@example.org", "parked")
    del event.personal["confirmation_url"]
    orders.keys.seal_events([event])
    _publish_raw(orders, event)
    wait_until(
        lambda: notifications.parking.list(service="notifications", event_id=event.id),
        message="the event parked",
    )
    [row] = notifications.parking.list(service="notifications", event_id=event.id)
    assert row["error_type"] == "SchemaViolation"
    stored = notifications.parking.get(row["id"])
    assert f"{account}@example.org".encode() not in bytes(stored["body"])
    shown = parked_to_json(stored, include_body=True, keys=notifications.parking.keys)
    assert shown["body"]["personal"] == {"email": f"{account}@example.org"}
    assert shown["body"]["personal_state"] == "opened"

    notifications.keys.destroy(account)  # the erasure
    shown = parked_to_json(
        notifications.parking.get(row["id"]), include_body=True, keys=notifications.parking.keys
    )
    assert shown["body"]["personal"] is None and shown["body"]["personal_state"] == "erased"
    assert shown["body"]["data"]["account_id"] == account  # the rest is still shown

    support = Broker(
        broker_accounts.get("support") or notifications.settings.rabbitmq_url, bus_prefix
    )
    publisher = Publisher(support)
    try:
        notifications.parking.replay(row["id"], publisher, ALICE, "after the erasure")
    finally:
        publisher.close()
    wait_until(lambda: mails_of(notifications, event.id), message="the replay handled")
    [mail] = mails_of(notifications, event.id)
    assert mail.status == "dropped" and mail.to_address is None
    assert (
        len(notifications.parking.list(service="notifications", event_id=event.id, status=None))
        == 1
    )


def test_the_erasure_handler_destroys_the_accounts_key(orders, runtime_factory):
    from coc_shared.testing import handle

    account = str(uuid.uuid4())
    event = email_change(account, f"{account}@example.org", "x")
    orders.keys.seal_events([event])
    order_id = str(uuid.uuid4())  # an order of the account whose key was never linked to it
    shipped = Event(
        type="certificate.shipped",
        producer="supplier-gateway",
        correlation_id=order_id,
        subject=order_id,
        data={"order_id": order_id},
        personal={"tracking": "X"},
    )
    orders.keys.seal_events([shipped])
    erasure = Event(
        type="account.erasure_requested",
        producer="gdpr",
        correlation_id=account,
        subject=account,
        data={
            "request_id": str(uuid.uuid4()),
            "account_id": account,
            "order_ids": [order_id],
            "requested_at": datetime.now(UTC).isoformat(),
        },
    )
    notifications = runtime_factory(notifications_definition)
    handle(notifications, erasure)
    assert notifications.keys.destroyed(account)
    assert notifications.keys.destroyed(order_id)
    wire = Event.from_json(event.to_json())
    KeyStore(orders.parking_engine, keystore.decode_kek(TEST_KEK)).unseal_event(wire)
    assert wire.personal_erased
