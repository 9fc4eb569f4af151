"""Replies from suppliers by each channel (their queue as their own broker user, the signed HTTP
callback), on the real RabbitMQ and PostgreSQL: every kind, duplicated, out of order, late; bad
signature, stale timestamp, bad body and unknown request refused (401/422) or parked; the
certificate PDF checked, stored encrypted and downloaded by the customer; overdue requests
announced once; staff's actions recorded."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
from gateway_helpers import (
    CERT_KEY,
    ORDER_TOKEN,
    free_port,
    gateway_extra,
    make_directory,
    publish_reply,
    ready_order,
    reply,
    signed_headers,
    supplier_url,
    take_requests,
)
from pypdf import PdfWriter
from sqlalchemy import select, update

from coc_shared.documents import Cipher
from coc_shared.testing import staff_headers, wait_until
from coc_supplier_gateway.adapters import tables
from coc_supplier_gateway.service import definition


def pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def certificate(data: bytes | None = None) -> dict:
    return {
        "content_type": "application/pdf",
        "data_base64": base64.b64encode(data or pdf()).decode(),
    }


@pytest.fixture
def gateway(runtime_factory, tmp_path):
    directory = make_directory(tmp_path, {"renault-coc": 9, "bmw-coc": 9}, {"psa-coc": 0.0005})
    laposte_url = f"http://127.0.0.1:{free_port()}"
    rt = runtime_factory(definition, extra=gateway_extra(tmp_path, directory, laposte_url))
    rt.declare_topology()
    stop = threading.Event()
    threads = rt.start_worker_threads(stop)
    yield rt
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


@pytest.fixture
def client(gateway):
    return gateway.create_app().test_client()


def state(rt, order_id: str):
    t = tables.supplier_requests
    with rt.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.order_id == order_id)).one()


def events(rt, order_id: str, event_type: str) -> list[dict]:
    o = rt.outbox
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(o.c.body)
            .where(o.c.event_type == event_type, o.c.subject == order_id)
            .order_by(o.c.seq)
        ).scalars()
        return [json.loads(b) for b in rows]


def sent_request(gateway, broker_accounts, bus_prefix, **kwargs) -> tuple[str, str]:
    order_id, _ = ready_order(gateway, **kwargs)
    wait_until(lambda: state(gateway, order_id).status == "sent", message="sent")
    request_id = state(gateway, order_id).request_id
    take_requests(
        supplier_url(broker_accounts, "psa-coc"),
        f"{bus_prefix}coc.supplier.psa-coc",
        match=lambda body: body["request_id"] == request_id,
    )
    return order_id, request_id


def post(client, code: str, body: dict, **kwargs):
    raw = json.dumps(body).encode()
    return client.post(
        f"/v1/suppliers/{code}/replies", data=raw, headers=signed_headers(code, raw, **kwargs)
    )


def parked(gateway, reply_id: str) -> list[dict]:
    return [
        r
        for r in gateway.parking.list(service="supplier-gateway", limit=1000)
        if r["event_id"] == reply_id
    ]


# ------------------------------------------------------------------ the HTTP callback
def test_each_kind_by_the_http_callback_moves_the_request_once(
    gateway, client, broker_accounts, bus_prefix
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    accepted = reply(request_id, "psa-coc", "accepted")
    assert post(client, "psa-coc", accepted).get_json() == {"status": "applied"}
    assert post(client, "psa-coc", accepted).get_json() == {"status": "duplicate"}
    assert state(gateway, order_id).status == "accepted"
    [told] = events(gateway, order_id, "supplier.request_accepted")  # once: the order's timeline
    assert told["data"]["supplier"] == "psa-coc"
    assert told["data"]["supplier_request_id"] == request_id
    data = pdf()
    issued = reply(request_id, "psa-coc", "issued", certificate=certificate(data))
    assert post(client, "psa-coc", issued).get_json() == {"status": "applied"}
    row = state(gateway, order_id)
    assert row.status == "issued" and row.certificate_size == len(data)
    [received] = events(gateway, order_id, "certificate.received")
    assert received["data"]["certificate_document_id"] == row.certificate_id
    assert received["data"]["original_posted"] is False
    # stored encrypted: the file is not the PDF, and opens with the key and the certificate's id
    stored = gateway.config.store.folder + "/" + row.certificate_storage_key
    with open(stored, "rb") as f:
        blob = f.read()
    assert data not in blob and Cipher(CERT_KEY).decrypt(blob, row.certificate_id) == data
    # late and out of order: no effect
    assert post(client, "psa-coc", reply(request_id, "psa-coc", "accepted")).get_json() == {
        "status": "late"
    }
    again = reply(request_id, "psa-coc", "issued", original_posted=True)
    assert post(client, "psa-coc", again).get_json() == {"status": "duplicate"}
    assert len(events(gateway, order_id, "certificate.received")) == 1


def test_the_customer_downloads_the_certificate_with_the_order_s_credentials(
    gateway, client, broker_accounts, bus_prefix
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    path = f"/v1/orders/{order_id}/certificate"
    assert client.get(path).status_code == 401
    headers = {"X-Order-Token": ORDER_TOKEN}
    assert client.get(path, headers=headers).status_code == 404  # not received yet
    data = pdf()
    posted = post(
        client, "psa-coc", reply(request_id, "psa-coc", "issued", certificate=certificate(data))
    )
    assert posted.get_json() == {"status": "applied"}
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200 and answer.data == data, answer.get_json()
    assert answer.mimetype == "application/pdf" and answer.headers["Cache-Control"] == "no-store"
    assert client.get(path, headers={"X-Order-Token": "another"}).status_code == 404


def test_a_certificate_that_is_not_a_sound_pdf_is_refused_with_field_messages(
    gateway, client, broker_accounts, bus_prefix
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    fake = certificate(b"%PDF-1.4 not really a pdf")
    answer = post(client, "psa-coc", reply(request_id, "psa-coc", "issued", certificate=fake))
    assert answer.status_code == 422 and "certificate" in answer.get_json()["error"]["fields"]
    active = pdf().replace(b"/Type /Catalog", b"/Type /Catalog /OpenAction << /S /JavaScript >>")
    answer = post(
        client, "psa-coc", reply(request_id, "psa-coc", "issued", certificate=certificate(active))
    )
    assert answer.status_code == 422
    assert state(gateway, order_id).status == "sent"


def test_rejected_asks_the_customer_for_documents_and_a_new_set_sends_a_new_request(
    gateway, client, broker_accounts, bus_prefix
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    rejected = reply(
        request_id,
        "psa-coc",
        "rejected",
        reason="registration certificate unreadable",
        documents_to_redo=["registration_certificate"],
    )
    assert post(client, "psa-coc", rejected).get_json() == {"status": "applied"}
    [event] = events(gateway, order_id, "documents.rejected_by_supplier")
    assert event["data"]["documents_requested"] == ["registration_certificate"]
    assert state(gateway, order_id).status == "rejected"
    # the customer uploads a new set: a new request (new id); a reply to the old one is superseded
    from coc_shared.testing import fresh_example, handle

    completed = fresh_example("order.documents_completed")
    completed.data = {**completed.data, "order_id": order_id}
    handle(gateway, completed)
    wait_until(lambda: state(gateway, order_id).status == "sent", message="sent again")
    row = state(gateway, order_id)
    assert row.request_id != request_id and row.round == 2
    late = reply(request_id, "psa-coc", "accepted")
    assert post(client, "psa-coc", late).get_json() == {"status": "superseded"}
    assert len(events(gateway, order_id, "documents.sent_to_supplier")) == 2


def test_shipped_by_the_supplier_implies_the_certificate_and_is_tracked_to_delivery(
    gateway, client, broker_accounts, bus_prefix, laposte
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    shipped = reply(
        request_id, "psa-coc", "shipped", carrier="colissimo", tracking_number="6A12345678901"
    )
    assert post(client, "psa-coc", shipped).get_json() == {"status": "applied"}
    received = events(gateway, order_id, "certificate.received")
    assert received and received[0]["data"]["original_posted"] is True
    [event] = events(gateway, order_id, "certificate.shipped")
    assert event["data"]["tracking_url"].endswith("code=6A12345678901")
    assert event["data"]["shipped_by"] == "supplier"
    # the issued reply that comes after it has no effect
    late = reply(request_id, "psa-coc", "issued", certificate=certificate())
    assert post(client, "psa-coc", late).get_json() == {"status": "late"}
    wait_until(
        lambda: events(gateway, order_id, "certificate.delivered"), timeout=20, message="delivered"
    )
    assert state(gateway, order_id).status == "delivered"
    assert state(gateway, order_id).shipping_address is None  # kept no longer than shipping


def test_bad_signature_stale_timestamp_bad_body_and_unknown_request_are_refused(
    gateway, client, broker_accounts, bus_prefix
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    body = reply(request_id, "psa-coc", "accepted")
    raw = json.dumps(body).encode()
    bad = signed_headers("psa-coc", raw, key="not-the-key")
    assert client.post("/v1/suppliers/psa-coc/replies", data=raw, headers=bad).status_code == 401
    other = signed_headers("vag-coc", raw)  # another supplier's key
    assert client.post("/v1/suppliers/psa-coc/replies", data=raw, headers=other).status_code == 401
    stale = post(client, "psa-coc", body, timestamp=int(time.time()) - 301)
    assert stale.status_code == 401 and "5 minutes" in stale.get_json()["error"]["message"]
    unsigned = client.post(
        "/v1/suppliers/psa-coc/replies", data=raw, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
    invalid = post(client, "psa-coc", {**body, "kind": "maybe", "extra": 1})
    assert invalid.status_code == 422
    assert {"kind", "extra"} <= set(invalid.get_json()["error"]["fields"])
    missing = post(client, "psa-coc", reply(request_id, "psa-coc", "rejected"))
    assert set(missing.get_json()["error"]["fields"]) == {"reason", "documents_to_redo"}
    unknown = post(client, "psa-coc", reply("no-such-request", "psa-coc", "accepted"))
    assert unknown.status_code == 422 and "request_id" in unknown.get_json()["error"]["fields"]
    foreign = post(client, "vag-coc", reply(request_id, "vag-coc", "accepted"))
    assert foreign.status_code == 422
    assert client.post("/v1/suppliers/nobody/replies", data=raw).status_code == 404
    assert state(gateway, order_id).status == "sent"
    assert post(client, "psa-coc", body).get_json() == {"status": "applied"}


# ------------------------------------------------------------------ the replies queue
def test_each_kind_by_the_queue_as_the_supplier_s_own_user(gateway, broker_accounts, bus_prefix):
    url = supplier_url(broker_accounts, "psa-coc")
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    accepted = reply(request_id, "psa-coc", "accepted")
    publish_reply(url, bus_prefix, "psa-coc", accepted)
    publish_reply(url, bus_prefix, "psa-coc", accepted)  # duplicated
    wait_until(lambda: state(gateway, order_id).status == "accepted", message="accepted")
    publish_reply(
        url,
        bus_prefix,
        "psa-coc",
        reply(request_id, "psa-coc", "issued", certificate=certificate()),
    )
    wait_until(lambda: state(gateway, order_id).status == "issued", message="issued")
    publish_reply(url, bus_prefix, "psa-coc", reply(request_id, "psa-coc", "accepted"))  # late
    publish_reply(
        url,
        bus_prefix,
        "psa-coc",
        reply(
            request_id, "psa-coc", "shipped", carrier="colissimo", tracking_number="6A99999999999"
        ),
    )
    wait_until(
        lambda: state(gateway, order_id).status in ("shipped", "delivered"), message="shipped"
    )
    assert len(events(gateway, order_id, "certificate.received")) == 1
    assert len(events(gateway, order_id, "certificate.shipped")) == 1
    t = tables.supplier_replies
    with gateway.engine.connect() as conn:
        outcomes = conn.execute(
            select(t.c.kind, t.c.outcome, t.c.via).where(t.c.order_id == order_id)
        ).all()
    assert sorted(outcomes) == sorted(
        [
            ("accepted", "applied", "amqp"),
            ("issued", "applied", "amqp"),
            ("accepted", "late", "amqp"),
            ("shipped", "applied", "amqp"),
        ]
    )


def test_a_rejection_by_the_queue(gateway, broker_accounts, bus_prefix):
    url = supplier_url(broker_accounts, "psa-coc")
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    publish_reply(
        url,
        bus_prefix,
        "psa-coc",
        reply(
            request_id,
            "psa-coc",
            "rejected",
            reason="unreadable",
            documents_to_redo=["registration_certificate"],
        ),
    )
    wait_until(
        lambda: events(gateway, order_id, "documents.rejected_by_supplier"), message="rejected"
    )


def test_bad_replies_on_the_queue_are_parked_with_the_reason(
    gateway, broker_accounts, bus_prefix, rabbitmq_url
):
    url = supplier_url(broker_accounts, "psa-coc")
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    unknown = reply("no-such-request", "psa-coc", "accepted")
    publish_reply(url, bus_prefix, "psa-coc", unknown)
    invalid = reply(request_id, "psa-coc", "rejected")  # no reason
    publish_reply(url, bus_prefix, "psa-coc", invalid)
    # the administrator's account, claiming to be psa-coc's reply (user_id is the admin's)
    forged = reply(request_id, "psa-coc", "accepted")
    publish_reply(rabbitmq_url, bus_prefix, "psa-coc", forged)
    # psa-coc's user naming another supplier in the body
    other = reply(request_id, "vag-coc", "accepted")
    publish_reply(url, bus_prefix, "psa-coc", other)
    wait_until(
        lambda: all(parked(gateway, r["reply_id"]) for r in (unknown, invalid, forged, other)),
        message="four replies parked",
    )
    assert parked(gateway, unknown["reply_id"])[0]["error_type"] == "UnknownRequest"
    assert parked(gateway, invalid["reply_id"])[0]["error_type"] == "InvalidReply"
    assert "reason" in parked(gateway, invalid["reply_id"])[0]["error_message"]
    assert parked(gateway, forged["reply_id"])[0]["error_type"] == "ForgedReply"
    assert parked(gateway, other["reply_id"])[0]["error_type"] == "ForgedReply"
    assert state(gateway, order_id).status == "sent"


def test_the_broker_lets_a_supplier_publish_its_own_code_only(broker_accounts, bus_prefix):
    import amqp

    with pytest.raises(amqp.exceptions.AccessRefused):
        publish_reply(
            supplier_url(broker_accounts, "psa-coc"),
            bus_prefix,
            "psa-coc",
            reply("x", "vag-coc", "accepted"),
            routing_key="vag-coc",
        )
    with pytest.raises(amqp.exceptions.AMQPError):  # another supplier's queue
        take_requests(
            supplier_url(broker_accounts, "psa-coc"), f"{bus_prefix}coc.supplier.vag-coc", timeout=1
        )


# ------------------------------------------------------------------ deadlines and staff
def test_an_overdue_request_is_announced_once_and_listed_for_staff(
    gateway, client, broker_accounts, bus_prefix
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)  # due in 1.8 s
    wait_until(
        lambda: events(gateway, order_id, "supplier.request_overdue"),
        timeout=15,
        message="overdue announced",
    )
    time.sleep(1.0)
    [event] = events(gateway, order_id, "supplier.request_overdue")
    assert event["data"]["supplier_request_id"] == request_id and event["data"]["status"] == "sent"
    auth = staff_headers()
    listed = client.get("/v1/staff/supplier-requests?overdue=true&limit=1000", headers=auth)
    assert order_id in [r["order_id"] for r in listed.get_json()["items"]]
    assert client.get("/v1/staff/supplier-requests?overdue=true").status_code == 401


def test_staff_resend_and_record_a_reply_in_the_support_log(
    gateway, client, broker_accounts, bus_prefix
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    auth = staff_headers("bob", "support")
    resent = client.post(
        f"/v1/staff/supplier-requests/{order_id}/resend",
        json={"reason": "supplier lost it"},
        headers=auth,
    )
    assert resent.status_code == 202
    [again] = take_requests(
        supplier_url(broker_accounts, "psa-coc"),
        f"{bus_prefix}coc.supplier.psa-coc",
        match=lambda body: body["request_id"] == request_id and body["resend"],
    )
    body = json.loads(again.body)
    assert body["request_id"] == request_id and body["resend"] is True
    recorded = client.post(
        f"/v1/staff/supplier-requests/{order_id}/replies",
        json={"reason": "accepted by phone", "reply": {"kind": "accepted"}},
        headers=auth,
    )
    assert recorded.get_json() == {"status": "applied"}
    shown = client.get(f"/v1/staff/supplier-requests/{order_id}", headers=auth).get_json()
    assert shown["status"] == "accepted"
    assert [h["what"] for h in shown["history"]] == [
        "ready",
        "sent",
        "resend_asked",
        "resent",
        "reply_accepted",
    ]
    from coc_shared.tables import support_actions

    with gateway.engine.connect() as conn:
        logged = conn.execute(
            select(
                support_actions.c.action, support_actions.c.actor, support_actions.c.reason
            ).where(support_actions.c.target == order_id)
        ).all()
    assert ("resend_supplier_request", "bob", "supplier lost it") in logged
    assert ("record_supplier_reply", "bob", "accepted by phone") in logged
    assert len([e for e in events(gateway, order_id, "documents.sent_to_supplier")]) == 1


def test_the_company_ships_a_certificate_its_supplier_does_not(
    gateway, client, broker_accounts, bus_prefix, laposte
):
    order_id, request_id = sent_request(gateway, broker_accounts, bus_prefix)
    post(client, "psa-coc", reply(request_id, "psa-coc", "issued", certificate=certificate()))
    auth = staff_headers("carol", "support")
    to_ship = client.get("/v1/staff/shipments/to-ship", headers=auth).get_json()["items"]
    [item] = [i for i in to_ship if i["order_id"] == order_id]
    assert item["recipient"] == {
        "name": "Émilie Dupont-Lefèvre",
        "address": {
            "line1": "1 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country": "FR",
        },
    }
    shipped = client.post(
        f"/v1/staff/supplier-requests/{order_id}/shipment",
        json={
            "reason": "posted this morning",
            "carrier": "colissimo",
            "tracking_number": "6A11111111111",
        },
        headers=auth,
    )
    assert shipped.status_code == 200, shipped.get_json()
    [event] = events(gateway, order_id, "certificate.shipped")
    assert event["data"]["shipped_by"] == "company"
    wait_until(
        lambda: state(gateway, order_id).status == "delivered", timeout=20, message="delivered"
    )


@pytest.fixture
def laposte(gateway, tmp_path):
    """La Poste's tracking emulator, delivering after 1 s, on the gateway's configured URL."""
    import subprocess
    import sys
    from pathlib import Path

    port = int(gateway.config.laposte_url.rsplit(":", 1)[1])
    key_file = tmp_path / "laposte.key"
    key_file.write_text(gateway.config.laposte_key)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "coc-laposte-sandbox"),
            "--port",
            str(port),
            "--deliver-after",
            "1",
            "--key-file",
            str(key_file),
        ],
        stdout=subprocess.DEVNULL,
    )
    import requests

    wait_until(lambda: _answers(requests, port), message="the La Poste emulator")
    yield process
    process.terminate()
    process.wait(timeout=10)


def _answers(requests, port) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except requests.RequestException:
        return False


def test_staff_routes_need_a_staff_token(client):
    assert client.get("/v1/staff/supplier-requests").status_code == 401
    assert client.get("/v1/staff/shipments/to-ship").status_code == 401
    assert (
        client.get("/v1/staff/supplier-requests?status=nope", headers=staff_headers()).status_code
        == 400
    )


def test_erasing_an_account_erases_the_name_and_address_kept(gateway, broker_accounts, bus_prefix):
    from coc_shared.testing import fresh_example, handle

    order_id, _ = ready_order(gateway, vin="VF1AB000123456789", brand="Renault")
    with gateway.engine.begin() as conn:
        conn.execute(
            update(tables.supplier_requests)
            .where(tables.supplier_requests.c.order_id == order_id)
            .values(account_id="acc-1")
        )
    deactivated = fresh_example("account.erasure_requested")
    deactivated.data = {**deactivated.data, "account_id": "acc-1"}
    handle(gateway, deactivated)
    row = state(gateway, order_id)
    assert row.customer_name is None and row.shipping_address is None
    assert row.personal_erased_at is not None
