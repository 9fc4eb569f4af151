"""Every use case of the orders service on both dialects (PostgreSQL, and SQLite as in the embedded
mode): placing an order (guest, with an account, with an Idempotency-Key, two requests racing with
the same key), uploading documents to completion, cancelling, the supplier asking for a document
again; on PostgreSQL a guest's order is one statement; the migration orders_0004 on a database
holding orders."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from alembic import command
from alembic.config import Config
from orders_helpers import (
    CUSTOMER_SECRET,
    DOCUMENT_KEY,
    order_body,
    order_status,
    outbox_events,
    pdf_bytes,
    place_order,
)
from sqlalchemy import (
    JSON,
    column,
    create_engine,
    event,
    insert,
    inspect,
    select,
    table,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from coc_orders.adapters import tables
from coc_orders.adapters.repository import IdempotencyRepository
from coc_orders.domain.errors import AccountGone, Conflict, NotAllowedNow, NotFound
from coc_orders.service import definition
from coc_orders.service_layer import accounts as accounts_uc
from coc_orders.service_layer import orders as orders_uc
from coc_shared.config import Settings
from coc_shared.db import normalise_url
from coc_shared.documents import Cipher, LocalFolderStorage
from coc_shared.envelope import utcnow
from coc_shared.migrate import upgrade
from coc_shared.service import Runtime
from coc_shared.testing import assert_migrations_match_metadata, fresh_example, handle
from coc_shared.tokens import hash_access_token

PDF = pdf_bytes()
PROFILE = {
    "customer": {"first_name": "Léa", "last_name": "N'Diaye", "phone": "+33 6 98 76 54 32"},
    "shipping_address": {
        "line1": "3 quai des Chartrons",
        "postal_code": "33000",
        "city": "Bordeaux",
        "country": "FR",
    },
}


def sqlite_runtime(folder) -> Runtime:
    url = f"sqlite:///{folder}/main.db"
    return Runtime(
        definition,
        Settings.from_env(
            "orders",
            database_url=url,
            parking_database_url=url,
            rabbitmq_url="memory://",
            customer_token_secret=CUSTOMER_SECRET,
            extra={
                "ORDERS_DOCUMENT_KEY": DOCUMENT_KEY,
                "ORDERS_DOCUMENT_STORE": "local",
                "ORDERS_DOCUMENTS_DIR": str(folder / "documents"),
            },
        ),
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def rt(request, tmp_path):
    if request.param == "postgresql":
        yield request.getfixturevalue("make_runtime")()
        return
    runtime = sqlite_runtime(tmp_path)
    runtime.migrate()
    yield runtime
    runtime.dispose()


def stored(rt, table_, where) -> list:
    with rt.engine.connect() as conn:
        return conn.execute(select(table_).where(where)).all()


# placing ------------------------------------------------------------------------------------


def test_a_guest_order_is_stored_with_its_number_timeline_and_event(rt):
    placed = place_order(
        rt, order_body(payment_method="paypal"), client_ip="203.0.113.7", user_agent="ua/1"
    )
    order = placed.order
    assert not placed.replayed and len(placed.access_token) >= 40
    [row] = stored(rt, tables.orders, tables.orders.c.id == order.id)
    assert row.seq == order.seq and order.number == f"COC-{order.placed_at.year}-{order.seq:06d}"
    assert (row.status, row.payment_method, row.total_cents, row.client_ip, row.user_agent) == (
        "placed",
        "paypal",
        24900,
        "203.0.113.7",
        "ua/1",
    )
    assert row.access_token_sha256 == hash_access_token(placed.access_token)
    [event] = outbox_events(rt, "order.placed", order.id)
    assert event["data"]["order_number"] == order.number and event["correlation_id"] == order.id
    assert event["personal"]["email"] == "emilie@example.org"
    [entry] = stored(rt, tables.order_events, tables.order_events.c.order_id == order.id)
    assert (entry.event_id, entry.event_type, entry.outcome, entry.status_after) == (
        event["id"],
        "order.placed",
        "applied",
        "placed",
    )


def test_order_numbers_are_distinct_and_increase(rt):
    numbers = [place_order(rt).order.seq for _ in range(3)]
    assert numbers == sorted(set(numbers))


def test_an_account_s_order_is_filled_from_its_profile(rt):
    account = accounts_uc.create_account(
        rt, f"lea.{uuid.uuid4().hex[:8]}@example.org", "correct horse battery", PROFILE
    )
    placed = place_order(
        rt,
        {"vehicle": order_body()["vehicle"], "payment_method": "card"},
        account_id=account.account_id,
    )
    assert placed.access_token is None and placed.order.account_id == account.account_id
    assert (
        placed.order.customer["email"] == account.email
        and placed.order.shipping_address["city"] == "Bordeaux"
    )
    [event] = outbox_events(rt, "order.placed", placed.order.id)
    assert (
        event["data"]["account_id"] == account.account_id
        and event["data"]["access_token_sha256"] is None
    )
    assert [o.id for o, _ in orders_uc.account_orders(rt, account.account_id)] == [placed.order.id]
    with pytest.raises(AccountGone):
        place_order(rt, account_id=str(uuid.uuid4()))


def test_a_retry_with_the_same_key_gets_the_first_order_without_its_access_token(rt):
    key = f"key-{uuid.uuid4()}"
    first = place_order(rt, idempotency_key=key)
    again = place_order(rt, idempotency_key=key)
    assert (
        again.replayed
        and again.order.id == first.order.id
        and again.order.number == first.order.number
    )
    # whoever sends the same key and body gets the order, never the token that opens it
    assert first.access_token and again.access_token is None
    assert len(stored(rt, tables.orders, tables.orders.c.id == first.order.id)) == 1
    # a guest's key is theirs together with the body: another body is another guest's order
    another = place_order(rt, order_body(payment_method="transfer"), idempotency_key=key)
    assert not another.replayed and another.order.id != first.order.id and another.access_token
    other = place_order(rt, idempotency_key=f"other-{key}")
    assert not other.replayed and other.order.id != first.order.id
    [record] = stored(
        rt, tables.idempotency_keys, tables.idempotency_keys.c.order_id == first.order.id
    )
    assert record.secret is None  # no access token is kept for retries


def test_an_account_s_key_with_another_body_is_a_conflict(rt):
    account = accounts_uc.create_account(
        rt, f"lea.{uuid.uuid4().hex[:8]}@example.org", "correct horse battery", PROFILE
    )
    key = f"key-{uuid.uuid4()}"
    first = place_order(rt, idempotency_key=key, account_id=account.account_id)
    again = place_order(rt, idempotency_key=key, account_id=account.account_id)
    assert again.replayed and again.order.id == first.order.id
    with pytest.raises(Conflict):
        place_order(
            rt,
            order_body(payment_method="transfer"),
            idempotency_key=key,
            account_id=account.account_id,
        )


def test_an_expired_key_places_a_new_order(rt):
    key = f"key-{uuid.uuid4()}"
    first = place_order(rt, idempotency_key=key)
    k = tables.idempotency_keys
    with rt.engine.begin() as conn:
        conn.execute(
            update(k).where(k.c.key == key).values(created_at=utcnow() - timedelta(hours=25))
        )
    later = place_order(rt, idempotency_key=key)
    assert not later.replayed and later.order.id != first.order.id
    [record] = stored(rt, k, k.c.key == key)
    assert record.order_id == later.order.id


def test_a_request_losing_the_race_for_its_key_answers_as_the_winner(rt, monkeypatch):
    """The record of the key is committed between this request's look and its commit: the commit
    fails on the key, and the order placed by the other request is answered."""
    key = f"key-{uuid.uuid4()}"
    winner = place_order(rt, idempotency_key=key)
    real_get, looks = IdempotencyRepository.get, []

    def too_early(self, scope, key_):
        looks.append(key_)
        return None if len(looks) == 1 else real_get(self, scope, key_)

    monkeypatch.setattr(IdempotencyRepository, "get", too_early)
    loser = place_order(rt, idempotency_key=key)
    assert len(looks) == 2 and loser.replayed and loser.order.id == winner.order.id
    assert winner.access_token and loser.access_token is None
    assert len(outbox_events(rt, "order.placed", winner.order.id)) == 1
    assert len(stored(rt, tables.idempotency_keys, tables.idempotency_keys.c.key == key)) == 1


def test_concurrent_requests_with_one_key_place_one_order(rt):
    key = f"key-{uuid.uuid4()}"
    place_order(rt)  # the allocator's block and the pools are ready
    barrier, results, errors = threading.Barrier(6), [], []

    def request():
        barrier.wait()
        try:
            results.append(place_order(rt, idempotency_key=key))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(results) == 6
    assert (
        len({r.order.id for r in results}) == 1 and [r.replayed for r in results].count(False) == 1
    )
    assert [r.access_token is not None for r in results].count(True) == 1  # the first's only
    assert len(stored(rt, tables.orders, tables.orders.c.id == results[0].order.id)) == 1
    assert len(outbox_events(rt, "order.placed", results[0].order.id)) == 1


def test_on_postgresql_a_guest_order_is_one_statement(make_runtime):
    rt = make_runtime()
    place_order(rt)  # the allocator's block is taken
    statements = []
    listener = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
    event.listen(rt.worker_engine, "before_cursor_execute", listener)
    try:
        placed = place_order(rt)
        # the new order's data key (coc_shared.keystore: a look-up, then its insert) is made on
        # the key store's own connection, before the use case's one statement
        keys = [st for st in statements if "subject_keys" in st]
        assert len(keys) == 2, keys
        assert len(statements) - len(keys) == 1, statements
        keyed = place_order(rt, idempotency_key=f"key-{uuid.uuid4()}")
    finally:
        event.remove(rt.worker_engine, "before_cursor_execute", listener)
    statements = [st for st in statements if "subject_keys" not in st]
    assert len(statements) == 3  # with a key: its look, then one statement
    assert "nextval" not in " ".join(statements).lower()
    for order in (placed.order, keyed.order):
        assert order_status(rt, order.id) == "placed" and outbox_events(
            rt, "order.placed", order.id
        )


# documents ----------------------------------------------------------------------------------


def upload(rt, tmp_path, order_id, kind, data=PDF):
    storage = LocalFolderStorage(tmp_path / "uploads")
    return orders_uc.add_document(rt, storage, Cipher(DOCUMENT_KEY), order_id, kind, data)


def test_documents_uploaded_to_completion(rt, tmp_path):
    order = place_order(rt).order
    first = upload(rt, tmp_path, order.id, "id_card")
    assert not first.completed and first.documents_missing == ["registration_certificate"]
    second = upload(rt, tmp_path, order.id, "registration_certificate")
    assert second.completed and second.documents_missing == []
    assert not upload(rt, tmp_path, order.id, "other").completed
    [event] = outbox_events(rt, "order.documents_completed", order.id)
    assert event["data"] == {
        "order_id": order.id,
        "document_ids": [first.document.id, second.document.id],
        "documents": [
            {"id": first.document.id, "kind": "id_card", "content_type": "application/pdf"},
            {
                "id": second.document.id,
                "kind": "registration_certificate",
                "content_type": "application/pdf",
            },
        ],
    }
    view = orders_uc.order_view(rt, order.id)
    assert view.order.documents_completed_at is not None and len(view.documents) == 3
    assert [(e["event_type"], e["status_after"]) for e in view.timeline] == [
        ("order.placed", "placed"),
        ("order.documents_completed", "placed"),
    ]
    blob = LocalFolderStorage(tmp_path / "uploads").get(
        stored(rt, tables.order_documents, tables.order_documents.c.id == first.document.id)[
            0
        ].storage_key
    )
    assert PDF not in blob and Cipher(DOCUMENT_KEY).decrypt(blob, first.document.id) == PDF


def test_the_supplier_asks_for_a_document_again_and_the_set_completes_again(rt, tmp_path):
    order = place_order(rt).order
    kept = upload(rt, tmp_path, order.id, "id_card").document
    refused = upload(rt, tmp_path, order.id, "registration_certificate").document
    with rt.engine.begin() as conn:
        conn.execute(
            update(tables.orders)
            .where(tables.orders.c.id == order.id)
            .values(status="sent_to_supplier")
        )
    rejection = fresh_example("documents.rejected_by_supplier", lambda: order.id)
    rejection.data = {**rejection.data, "documents_requested": ["registration_certificate"]}
    handle(rt, rejection)
    view = orders_uc.order_view(rt, order.id)
    assert view.order.status == "supplier_rejected" and view.order.documents_completed_at is None
    assert {d.id: d.valid for d in view.documents} == {kept.id: True, refused.id: False}
    again = upload(rt, tmp_path, order.id, "registration_certificate")
    assert again.completed
    completed = outbox_events(rt, "order.documents_completed", order.id)
    assert [e["data"]["document_ids"] for e in completed] == [
        [kept.id, refused.id],
        [kept.id, again.document.id],
    ]


def test_a_cancelled_order_takes_no_document(rt, tmp_path):
    order = place_order(rt).order
    orders_uc.cancel_order(rt, order.id, "ordered by mistake")
    with pytest.raises(NotAllowedNow):
        upload(rt, tmp_path, order.id, "id_card")
    assert stored(rt, tables.order_documents, tables.order_documents.c.order_id == order.id) == []


# cancelling ---------------------------------------------------------------------------------


def test_an_order_is_cancelled_once(rt):
    order = place_order(rt).order
    cancelled = orders_uc.cancel_order(rt, order.id, "ordered by mistake", cancelled_by="customer")
    assert cancelled.status == "cancelled" and order_status(rt, order.id) == "cancelled"
    [event] = outbox_events(rt, "order.cancelled", order.id)
    assert event["data"] == {
        "order_id": order.id,
        "reason": "ordered by mistake",
        "cancelled_by": "customer",
    }
    with pytest.raises(NotAllowedNow, match="already cancelled"):
        orders_uc.cancel_order(rt, order.id, "again")
    assert len(outbox_events(rt, "order.cancelled", order.id)) == 1
    assert [e["event_type"] for e in orders_uc.order_timeline(rt, order.id)] == [
        "order.placed",
        "order.cancelled",
    ]
    with pytest.raises(NotFound):
        orders_uc.cancel_order(rt, str(uuid.uuid4()), "unknown")


# the migrations orders_0004 and orders_0005 on a database holding orders -----------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def old_database(request, tmp_path):
    """A new, empty database of the dialect (its URL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    server = make_url(normalise_url(request.getfixturevalue("postgres_server_url")))
    name = f"coc_t_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def downgrade(engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", definition.migrations)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["schema"] = "orders"
        command.downgrade(cfg, revision)


OLD_IDEMPOTENCY = table(
    "idempotency_keys",
    column("scope"),
    column("key"),
    column("request_sha256"),
    column("order_id"),
    column("status_code"),
    column("response", JSON),
    column("secret"),
    column("created_at"),
    schema="orders",
)


def test_orders_0004_keeps_the_orders_and_numbers_after_the_highest(old_database):
    rt = Runtime(
        definition,
        Settings.from_env(
            "orders",
            database_url=old_database,
            parking_database_url=old_database,
            rabbitmq_url="memory://",
            extra={"ORDERS_DOCUMENT_KEY": DOCUMENT_KEY},
        ),
    )
    try:
        upgrade(rt.engine, definition.migrations, "orders", revision="orders_0003")
        old = place_order_row(rt, seq=41)
        upgrade(rt.engine, definition.migrations, "orders", revision="orders_0004")
        with rt.engine.connect() as conn:
            assert conn.execute(select(tables.id_blocks)).all() == [("order_number", 42)]
            assert conn.execute(select(tables.idempotency_keys.c.order_id)).scalars().all() == [old]
        upgrade(rt.engine, definition.migrations, "orders")
        upgrade(rt.engine, definition.migrations, "orders")  # again: nothing to do
        with rt.engine.connect() as conn:
            # orders_0005: the shared "guest" scope and every kept access token are gone
            assert conn.execute(select(tables.idempotency_keys)).all() == []
        columns = {
            c["name"]: c
            for c in inspect(rt.engine).get_columns("idempotency_keys", schema="orders")
        }
        assert not {"status_code", "response"} & set(columns)
        if rt.engine.dialect.name == "postgresql":
            seq = {c["name"]: c for c in inspect(rt.engine).get_columns("orders", schema="orders")}[
                "seq"
            ]
            assert seq["default"] is None
            with rt.engine.connect() as conn:
                assert (
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_trigger WHERE tgname = 'coc_outbox_notify' "
                            "AND tgrelid = 'orders.outbox'::regclass"
                        )
                    ).scalar_one()
                    == 1
                )
        assert_migrations_match_metadata(rt)
        assert place_order(rt).order.seq == 42
        downgrade(rt.engine, "orders_0003")
        upgrade(rt.engine, definition.migrations, "orders")
        assert place_order(rt).order.seq > 42
    finally:
        rt.dispose()


def place_order_row(rt, seq: int) -> str:
    """An order and its idempotency record as the service before orders_0004 stored them."""
    order_id, now = str(uuid.uuid4()), utcnow()
    values = dict(
        seq=seq,
        id=order_id,
        status="placed",
        placed_at=now,
        updated_at=now,
        payment_method="card",
        brand="Peugeot",
        vin="VF3ABCDEF12345678",
        first_registration_date=now.date(),
        vehicle_extra={},
        total_cents=24900,
        currency="EUR",
        vat_rate="20.0",
        vat_cents=4150,
        documents_required=["id_card"],
        marketing_consent=False,
        customer={},
        shipping_address={},
    )
    with rt.engine.begin() as conn:
        conn.execute(insert(tables.orders).values(values))
        conn.execute(
            insert(OLD_IDEMPOTENCY).values(
                scope="guest",
                key="k",
                request_sha256="0" * 64,
                order_id=order_id,
                status_code=201,
                response={"id": order_id},
                secret=b"COC1 an encrypted access token",
                created_at=now,
            )
        )
    return order_id


def test_stuck_orders_are_found_and_reported_once(rt):
    from coc_orders.adapters.deadlines_file import load_deadlines
    from coc_orders.service_layer import stuck

    deadlines = load_deadlines()
    order_id = place_order(rt, order_body()).order.id
    shipped_at = utcnow() - deadlines.by_state["not_delivered"].after - timedelta(hours=1)
    with rt.engine.begin() as conn:
        conn.execute(
            update(tables.orders).where(tables.orders.c.id == order_id).values(status="shipped")
        )
        conn.execute(
            insert(tables.order_events).values(
                event_id=str(uuid.uuid4()),
                order_id=order_id,
                event_type="certificate.shipped",
                occurred_at=shipped_at,
                recorded_at=shipped_at,
                outcome="applied",
                status_after="shipped",
            )
        )
    first = [s for s in stuck.report_stuck(rt, deadlines) if s.order_id == order_id]
    assert [(s.state, s.since) for s in first] == [("not_delivered", shipped_at)]
    assert [s for s in stuck.report_stuck(rt, deadlines) if s.order_id == order_id] == []
    (listed,), _ = stuck.list_stuck(rt, deadlines, order_id=order_id)
    assert listed.state == "not_delivered" and listed.reported_at is not None
    assert len(outbox_events(rt, "order.stuck", subject=order_id)) == 1
