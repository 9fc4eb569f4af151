"""Suppliers' document links, served by orders (which holds the documents) on the real PostgreSQL
and an S3 server: a link the supplier gateway signs opens one document, decrypted, for one supplier,
until it expires, and every download is recorded; an expired, altered or another supplier's link
is refused with 403; a cancelled order's or an erased document's link answers 404."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from orders_helpers import DOCUMENT_LINK_SECRET, image_bytes, order_body, pdf_bytes
from sqlalchemy import select, update
from test_accounts import sign_up

from coc_orders.adapters import tables
from coc_shared.documents import sign_document_link
from coc_shared.envelope import utcnow
from coc_shared.testing import fresh_example, handle

SECRET = DOCUMENT_LINK_SECRET
PDF = pdf_bytes()
JPEG = image_bytes("JPEG")


def upload(client, order, kind, content, mimetype="application/pdf"):
    answer = client.post(
        f"/v1/orders/{order['id']}/documents",
        headers={"X-Order-Token": order["access_token"]},
        data={"kind": kind, "file": (io.BytesIO(content), "scan", mimetype)},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["document"]


def link(document_id: str, supplier: str = "psa-coc", hours: float = 72, secret=SECRET) -> str:
    query = sign_document_link(secret, supplier, document_id, utcnow() + timedelta(hours=hours))
    return f"/v1/supplier-documents/{document_id}?" + "&".join(f"{k}={v}" for k, v in query.items())


def downloads(runtime, document_id: str) -> list:
    t = tables.document_downloads
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(t.c.supplier, t.c.order_id, t.c.client_ip, t.c.downloaded_at).where(
                t.c.document_id == document_id
            )
        ).all()


@pytest.fixture
def order(client):
    placed = client.post("/v1/orders", json=order_body())
    assert placed.status_code == 201
    return placed.get_json()


def test_a_signed_link_serves_the_document_decrypted_and_records_each_download(
    runtime, client, order
):
    pdf = upload(client, order, "id_card", PDF)
    jpeg = upload(client, order, "registration_certificate", JPEG, "image/jpeg")
    answer = client.get(link(pdf["id"]), environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert answer.status_code == 200
    assert answer.data == PDF and answer.mimetype == "application/pdf"
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert answer.headers["Cache-Control"] == "no-store"
    image = client.get(link(jpeg["id"], supplier="vag-coc"))
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert image.data.startswith(b"\xff\xd8\xff")
    assert client.get(link(pdf["id"])).status_code == 200
    recorded = downloads(runtime, pdf["id"])
    assert [(r.supplier, r.order_id, r.client_ip) for r in recorded] == [
        ("psa-coc", order["id"], "203.0.113.9"),
        ("psa-coc", order["id"], "127.0.0.1"),
    ]
    assert all(r.downloaded_at is not None for r in recorded)
    assert [r.supplier for r in downloads(runtime, jpeg["id"])] == ["vag-coc"]


def test_an_expired_link_is_refused(runtime, client, order):
    document = upload(client, order, "id_card", PDF)
    answer = client.get(link(document["id"], hours=-0.01))
    assert answer.status_code == 403 and "expired" in answer.get_json()["error"]["message"]
    assert downloads(runtime, document["id"]) == []


def test_a_link_claiming_more_than_72_hours_is_refused(client, order):
    document = upload(client, order, "id_card", PDF)
    assert client.get(link(document["id"], hours=72)).status_code == 200
    assert client.get(link(document["id"], hours=80)).status_code == 403


def test_another_supplier_s_link_or_an_altered_one_is_refused(runtime, client, order):
    document = upload(client, order, "id_card", PDF)
    other = upload(client, order, "registration_certificate", PDF)
    good = link(document["id"], supplier="psa-coc")
    # the same signature presented by another supplier
    assert client.get(good.replace("supplier=psa-coc", "supplier=vag-coc")).status_code == 403
    # a link of one document used for another
    assert client.get(good.replace(document["id"], other["id"], 1)).status_code == 403
    # a longer life, a changed signature, a link signed with another secret, no signature
    expires = good.split("expires=")[1].split("&")[0]
    assert client.get(good.replace(expires, str(int(expires) + 60))).status_code == 403
    signature = good.split("signature=")[1]
    altered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert client.get(good.replace(signature, altered)).status_code == 403
    assert client.get(link(document["id"], secret="another-secret-" + "q" * 32)).status_code == 403
    assert client.get(good.split("&signature=")[0]).status_code == 403
    assert downloads(runtime, document["id"]) == []
    assert client.get(good).status_code == 200


def test_an_unknown_document_answers_404(client):
    assert client.get(link(str(uuid.uuid4()))).status_code == 404


def test_a_cancelled_order_s_documents_no_longer_open(runtime, client, order):
    document = upload(client, order, "id_card", PDF)
    url = link(document["id"])
    assert client.get(url).status_code == 200
    cancelled = client.post(
        f"/v1/orders/{order['id']}/cancellation",
        headers={"X-Order-Token": order["access_token"]},
        json={"reason": "changed my mind"},
    )
    assert cancelled.status_code == 200, cancelled.get_json()
    assert client.get(url).status_code == 404
    assert len(downloads(runtime, document["id"])) == 1


def test_an_erased_document_no_longer_opens(runtime, client):
    """account.deactivated erases the files of the account's orders' documents."""
    account, auth = sign_up(client)
    placed = client.post("/v1/orders", json=order_body(), headers=auth)
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    answer = client.post(
        f"/v1/orders/{order['id']}/documents",
        headers=auth,
        data={"kind": "id_card", "file": (io.BytesIO(PDF), "scan", "application/pdf")},
        content_type="multipart/form-data",
    )
    document = answer.get_json()["document"]
    url = link(document["id"])
    assert client.get(url).status_code == 200
    deactivated = fresh_example("account.erasure_requested")
    deactivated.data = {**deactivated.data, "account_id": account["id"]}
    handle(runtime, deactivated)
    assert client.get(url).status_code == 404
    t = tables.order_documents
    with runtime.engine.connect() as conn:
        erased_at = conn.execute(select(t.c.erased_at).where(t.c.id == document["id"])).scalar()
    assert erased_at is not None


def test_a_file_gone_from_the_store_answers_404(runtime, client, order):
    document = upload(client, order, "id_card", PDF)
    t = tables.order_documents
    with runtime.engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == document["id"]).values(storage_key="documents/x/y"))
    assert client.get(link(document["id"])).status_code == 404


def test_links_answer_503_without_a_secret(make_runtime, order):
    client = make_runtime(ORDERS_DOCUMENT_LINK_SECRET="").create_app().test_client()
    assert client.get(link(str(uuid.uuid4()))).status_code == 503


def test_an_order_carries_its_certificate_link_once_the_certificate_is_received(
    runtime, client, order
):
    headers = {"X-Order-Token": order["access_token"]}
    assert (
        "certificate"
        not in client.get(f"/v1/orders/{order['id']}", headers=headers).get_json()["links"]
    )
    with runtime.engine.begin() as conn:
        conn.execute(
            update(tables.orders)
            .where(tables.orders.c.id == order["id"])
            .values(status="certificate_received")
        )
    links = client.get(f"/v1/orders/{order['id']}", headers=headers).get_json()["links"]
    assert links["certificate"] == f"http://127.0.0.1:8003/v1/orders/{order['id']}/certificate"
