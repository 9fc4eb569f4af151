"""POST /v1/orders/{id}/documents: PDF/JPEG/PNG recognised by content and read by their parsers
(pypdf, Pillow), 415 otherwise, 413 above 10 MB, encrypted (AES-GCM) before upload to the
S3-compatible server (moto), metadata only in the database, order.documents_completed once every
required document is there. The parsers' limits and the caps per order: test_uploads.py."""

from __future__ import annotations

import hashlib
import io

import boto3
import pytest
from orders_helpers import (
    DOCUMENT_KEY,
    image_bytes,
    order_body,
    outbox_events,
    pdf_bytes,
    pdf_of_size,
)
from PIL import Image
from sqlalchemy import select

from coc_orders.adapters import tables
from coc_shared.documents import Cipher, LocalFolderStorage

PDF = pdf_bytes()
JPEG = image_bytes("JPEG")
PNG = image_bytes("PNG")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64


def upload(client, order, kind, content, filename="scan.pdf", mimetype="application/pdf"):
    return client.post(
        f"/v1/orders/{order['id']}/documents",
        headers={"X-Order-Token": order["access_token"]},
        data={"kind": kind, "file": (io.BytesIO(content), filename, mimetype)},
        content_type="multipart/form-data",
    )


def s3_object(runtime, key):
    extra = runtime.settings.extra
    s3 = boto3.client(
        "s3",
        endpoint_url=extra["ORDERS_S3_ENDPOINT_URL"],
        region_name="eu-west-3",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return s3.get_object(Bucket=extra["ORDERS_S3_BUCKET"], Key=key)["Body"].read()


@pytest.mark.parametrize(
    "content,expected", [(PDF, "application/pdf"), (JPEG, "image/jpeg"), (PNG, "image/png")]
)
def test_each_accepted_type_is_recognised_encrypted_and_stored(runtime, client, content, expected):
    order = client.post("/v1/orders", json=order_body()).get_json()
    answer = upload(
        client,
        order,
        "id_card",
        content,
        filename="whatever.bin",
        mimetype="application/octet-stream",
    )
    assert answer.status_code == 201, answer.get_json()
    doc = answer.get_json()["document"]
    assert doc["content_type"] == expected
    assert answer.get_json()["documents_required"] == ["registration_certificate"]
    with runtime.engine.connect() as conn:
        row = conn.execute(
            select(tables.order_documents).where(tables.order_documents.c.id == doc["id"])
        ).one()
    assert order["id"] not in row.storage_key and "whatever" not in row.storage_key
    blob = s3_object(runtime, row.storage_key)
    assert content not in blob and content[:8] not in blob  # encrypted
    stored = Cipher(DOCUMENT_KEY).decrypt(blob, doc["id"])
    assert doc["size"] == len(stored) and doc["sha256"] == hashlib.sha256(stored).hexdigest()
    if expected == "application/pdf":
        assert stored == content  # a PDF is kept as sent
    else:  # an image is kept re-encoded: the same picture
        with Image.open(io.BytesIO(stored)) as image:
            assert image.size == (64, 48) and image.format == expected.split("/")[1].upper()


def test_a_renamed_executable_gets_415_and_nothing_is_stored(runtime, client):
    order = client.post("/v1/orders", json=order_body()).get_json()
    answer = upload(
        client, order, "id_card", EXE, filename="passport.pdf", mimetype="application/pdf"
    )
    assert (
        answer.status_code == 415 and answer.get_json()["error"]["code"] == "unsupported_media_type"
    )
    with runtime.engine.connect() as conn:
        assert (
            conn.execute(
                select(tables.order_documents).where(
                    tables.order_documents.c.order_id == order["id"]
                )
            ).first()
            is None
        )


def test_more_than_10_mb_gets_413(client):
    order = client.post("/v1/orders", json=order_body()).get_json()
    exactly = upload(client, order, "other", pdf_of_size(10 * 1024 * 1024))
    assert exactly.status_code == 201, exactly.get_json()
    answer = upload(client, order, "other", pdf_of_size(10 * 1024 * 1024 + 1))
    assert answer.status_code == 413 and answer.get_json()["error"]["status"] == 413


def test_a_bad_kind_or_a_missing_file_gets_422_and_another_s_order_404(client):
    order = client.post("/v1/orders", json=order_body()).get_json()
    other = client.post("/v1/orders", json=order_body()).get_json()
    assert upload(client, order, "selfie", PDF).get_json()["error"]["fields"]["kind"]
    missing = client.post(
        f"/v1/orders/{order['id']}/documents",
        headers={"X-Order-Token": order["access_token"]},
        data={"kind": "id_card"},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 422 and missing.get_json()["error"]["fields"]["file"]
    stolen = {"id": other["id"], "access_token": order["access_token"]}
    assert upload(client, stolen, "id_card", PDF).status_code == 404


def test_documents_completed_is_emitted_once_with_the_documents_ids_and_kinds_only(runtime, client):
    order = client.post("/v1/orders", json=order_body()).get_json()
    first = upload(client, order, "id_card", PDF).get_json()
    assert first["documents_completed"] is False
    assert upload(client, order, "other", PNG).get_json()["documents_completed"] is False
    second = upload(client, order, "registration_certificate", JPEG).get_json()
    assert second["documents_completed"] is True and second["documents_required"] == []
    again = upload(client, order, "id_card", PNG).get_json()
    assert again["documents_completed"] is False
    [event] = outbox_events(runtime, "order.documents_completed", order["id"])
    assert event["data"] == {
        "order_id": order["id"],
        "document_ids": [first["document"]["id"], second["document"]["id"]],
        "documents": [
            {"id": first["document"]["id"], "kind": "id_card", "content_type": "application/pdf"},
            {
                "id": second["document"]["id"],
                "kind": "registration_certificate",
                "content_type": "image/jpeg",
            },
        ],
    }
    assert event.get("personal") in (None, {})
    view = client.get(
        f"/v1/orders/{order['id']}", headers={"X-Order-Token": order["access_token"]}
    ).get_json()
    assert len(view["documents"]) == 4 and view["documents_required"] == []
    assert "order.documents_completed" in [e["event"] for e in view["timeline"]]


def test_the_embedded_mode_keeps_encrypted_files_in_a_local_folder(make_runtime, tmp_path):
    rt = make_runtime(ORDERS_DOCUMENT_STORE="local", ORDERS_DOCUMENTS_DIR=str(tmp_path))
    client = rt.create_app().test_client()
    order = client.post("/v1/orders", json=order_body()).get_json()
    doc = upload(client, order, "id_card", PDF).get_json()["document"]
    with rt.engine.connect() as conn:
        key = conn.execute(
            select(tables.order_documents.c.storage_key).where(
                tables.order_documents.c.id == doc["id"]
            )
        ).scalar_one()
    blob = LocalFolderStorage(tmp_path).get(key)
    assert PDF not in blob and Cipher(DOCUMENT_KEY).decrypt(blob, doc["id"]) == PDF


def test_without_an_encryption_key_uploads_answer_503(make_runtime):
    client = make_runtime(ORDERS_DOCUMENT_KEY=None).create_app().test_client()
    order = client.post("/v1/orders", json=order_body()).get_json()
    assert upload(client, order, "id_card", PDF).status_code == 503
