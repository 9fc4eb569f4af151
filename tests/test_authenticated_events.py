"""Authenticated events, on the real broker with this run's per-service users: only the service
the catalogue names as producer of a type can publish it. Forgeries are refused by the broker
(topic permissions, validated ``user_id``) or parked as ``ForgedEvent`` by the consumer, and
change nothing anywhere; the genuine event is applied; a support replay of a parked message is
accepted, a forged one is never replayed."""

import json
import threading
import uuid

import amqp
import kombu
import pytest
from sqlalchemy import select

from coc_orders.adapters import tables as orders_tables
from coc_orders.service import definition as orders_definition
from coc_payments.service import definition as payments_definition
from coc_shared.broker_users import broker_user
from coc_shared.bus import HEADER_REPLAYED_FROM, Publisher
from coc_shared.envelope import Event
from coc_shared.testing import wait_until
from coc_shared.tokens import Actor
from coc_supplier_gateway.adapters import tables as gateway_tables
from coc_supplier_gateway.service import definition as gateway_definition

ALICE = Actor("alice", "support")


@pytest.fixture
def stack(runtime_factory, broker_accounts):
    """orders and supplier-gateway consuming as threads (their own users, publishers verified),
    and the payments relay (the genuine producer of payment.*)."""
    assert broker_accounts, "this run's broker users could not be created"
    orders = runtime_factory(orders_definition)
    gateway = runtime_factory(gateway_definition)
    payments = runtime_factory(payments_definition)
    stop = threading.Event()
    threads = []
    for runtime in (orders, gateway):
        runtime.declare_topology()
        threads += runtime.start_worker_threads(stop)
    threads += payments.start_worker_threads(stop, consume=False)
    yield orders, gateway, payments
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def place_order(orders, storefront_order) -> dict:
    answer = orders.create_app().test_client().post("/v1/orders", json=storefront_order)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def confirmation(order: dict, amount_cents: int) -> Event:
    return Event(
        type="payment.confirmed",
        producer="payments",
        correlation_id=order["id"],
        subject=order["id"],
        data={
            "order_id": order["id"],
            "order_number": order["number"],
            "method": "transfer",
            "provider": "bank-transfer",
            "provider_transaction_id": uuid.uuid4().hex,
            "amount": {"amount_cents": amount_cents, "currency": "EUR"},
        },
    )


def status_of(orders, order_id: str) -> str:
    t = orders_tables.orders
    with orders.engine.connect() as conn:
        return conn.execute(select(t.c.status).where(t.c.id == order_id)).scalar_one()


def gateway_paid(gateway, order_id: str) -> bool | None:
    """Whether the gateway's request of the order is paid (None: no request yet)."""
    t = gateway_tables.supplier_requests
    with gateway.engine.connect() as conn:
        return conn.execute(select(t.c.paid).where(t.c.order_id == order_id)).scalar()


def parked_forgeries(runtime, event_id: str) -> list[dict]:
    return [
        r
        for r in runtime.parking.list(service=runtime.definition.name, event_id=event_id)
        if r["error_type"] == "ForgedEvent"
    ]


def publish(url: str, exchange: str, routing_key: str, event: Event, **properties) -> None:
    """A raw publish with confirms on ``url``'s account; raises what the broker answers."""
    account = kombu.Connection(url)
    conn = amqp.Connection(
        f"{account.hostname}:{account.port or 5672}",
        userid=account.userid,
        password=account.password,
        virtual_host=account.virtual_host or "/",
    )
    conn.connect()
    try:
        channel = conn.channel()
        channel.confirm_select()
        channel.basic_publish(
            amqp.Message(
                event.to_json(),
                content_type="application/json",
                message_id=event.id,
                type=event.type,
                delivery_mode=2,
                **properties,
            ),
            exchange=exchange,
            routing_key=routing_key,
        )
        channel.basic_qos(0, 1, False)  # a round trip: a refusal of the publish arrives before it
    finally:
        try:
            conn.close()
        except Exception:
            pass


def test_forged_events_change_nothing_and_the_genuine_one_is_applied(
    stack, storefront_order, rabbitmq_url, bus_prefix, broker_accounts
):
    orders, gateway, payments = stack
    order = place_order(orders, storefront_order)
    wait_until(lambda: gateway_paid(gateway, order["id"]) is False, message="the gateway's request")
    # (order.placed reached the gateway from orders' own relay: a genuine event is applied)
    exchange = bus_prefix + "coc.events"

    # 1. the administrator (docker-compose's old shared account) forges payment.confirmed: the
    #    broker lets it publish, the consumers refuse it (no user of the producer on it)
    by_admin = confirmation(order, 1)
    publish(rabbitmq_url, exchange, "payment.confirmed", by_admin)
    wait_until(
        lambda: parked_forgeries(orders, by_admin.id) and parked_forgeries(gateway, by_admin.id),
        message="the forgery parked by orders and by the gateway",
    )
    parked = parked_forgeries(orders, by_admin.id)[0]
    assert "only its producer" in parked["error_message"]
    assert broker_user(bus_prefix, "payments") in parked["error_message"]

    # 2. a compromised orders service cannot publish payment.* to the event exchange (topic
    #    permissions), nor stamp itself as payments (user_id is validated)...
    with pytest.raises(amqp.exceptions.AccessRefused):
        publish(
            broker_accounts["orders"],
            exchange,
            "payment.confirmed",
            confirmation(order, 24900),
            user_id=broker_user(bus_prefix, "orders"),
        )
    with pytest.raises(amqp.exceptions.PreconditionFailed):
        publish(
            broker_accounts["orders"],
            exchange,
            "order.placed",
            confirmation(order, 24900),
            user_id=broker_user(bus_prefix, "payments"),
        )
    # ...and what it slips straight into the gateway's queue is parked there
    direct = confirmation(order, 24900)
    publish(
        broker_accounts["orders"],
        "",
        gateway.broker.queue_name("supplier-gateway"),
        direct,
        user_id=broker_user(bus_prefix, "orders"),
    )
    wait_until(lambda: parked_forgeries(gateway, direct.id), message="the direct forgery parked")

    assert status_of(orders, order["id"]) == "placed"
    assert gateway_paid(gateway, order["id"]) is False
    assert orders.consumer.forged >= 1 and gateway.consumer.forged >= 2

    # 3. the genuine confirmation, from the payments service's own outbox and relay, is applied
    with payments.unit_of_work(correlation_id=order["id"]) as uow:
        genuine = confirmation(order, order["total"]["amount_cents"])
        uow.emit(genuine.type, genuine.data, subject=order["id"])
        uow.commit()
    wait_until(lambda: status_of(orders, order["id"]) == "paid", message="the order paid")
    wait_until(lambda: gateway_paid(gateway, order["id"]), message="the gateway's request paid")

    # 4. a forgery is never replayed, whoever asks
    publisher = Publisher(gateway.broker)
    try:
        with pytest.raises(ValueError, match="forged"):
            gateway.parking.replay(
                parked_forgeries(gateway, direct.id)[0]["id"], publisher, ALICE, "try"
            )
    finally:
        publisher.close()


def test_the_support_user_replays_parked_messages_and_injects_nothing(
    stack, storefront_order, bus_prefix, broker_accounts
):
    orders, gateway, payments = stack
    from coc_shared.bus import Broker

    support = Broker(broker_accounts["support"], bus_prefix)
    # a genuine event the gateway cannot handle yet (an order it never heard of: no brand) ...
    unknown_order = {"id": str(uuid.uuid4()), "number": "COC-2026-999999", "total": {}}
    with payments.unit_of_work(correlation_id=unknown_order["id"]) as uow:
        event = confirmation(unknown_order, 100)
        uow.emit(event.type, event.data, subject=unknown_order["id"])
        uow.commit()
    emitted_id = uow.events[0].id
    # orders parks it (unknown order); the support user replays it to the orders queue only
    wait_until(
        lambda: orders.parking.list(service="orders", event_id=emitted_id),
        message="the event parked by orders",
    )
    [row] = orders.parking.list(service="orders", event_id=emitted_id)
    assert row["error_type"] != "ForgedEvent"
    publisher = Publisher(support)
    try:
        orders.parking.replay(row["id"], publisher, ALICE, "after a fix")
        wait_until(
            lambda: (
                len(orders.parking.list(service="orders", event_id=emitted_id, status=None)) == 2
            ),
            message="the replay handled again (and parked again: still unknown)",
        )
        again = [
            r
            for r in orders.parking.list(service="orders", event_id=emitted_id, status=None)
            if r["id"] != row["id"]
        ]
        assert again[0]["error_type"] != "ForgedEvent"  # the replay was accepted as such

        # the support user cannot publish events, and what it injects with a made-up parked id is
        # refused: only the exact body of a message parked from that queue passes
        with pytest.raises(amqp.exceptions.AccessRefused):
            publish(
                broker_accounts["support"],
                bus_prefix + "coc.events",
                "payment.confirmed",
                confirmation(unknown_order, 1),
                user_id=broker_user(bus_prefix, "support"),
            )
        injected = confirmation(unknown_order, 2)
        publish(
            broker_accounts["support"],
            "",
            orders.broker.queue_name("orders"),
            injected,
            user_id=broker_user(bus_prefix, "support"),
            application_headers={HEADER_REPLAYED_FROM: row["id"]},
        )
        wait_until(lambda: parked_forgeries(orders, injected.id), message="the injection parked")
    finally:
        publisher.close()
    assert json.loads(orders.parking.get(row["id"])["body"])["id"] == emitted_id
