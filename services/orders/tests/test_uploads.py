"""Uploads as an attacker sends them (issue 8's findings, each refused): one guest order took 11
documents, ``%PDF-`` followed by an ELF executable, a JPEG carrying ``<script>``, and a PDF
inflating to 200 MB; only the first bytes were checked, nothing capped the count or the rate.
Now PDFs are read by pypdf (pages, objects, inflated size, active content, nothing after the end),
images decoded and re-encoded by Pillow (pixels capped; only the picture is stored), anything that
fails is 415 with the reason; an order takes 8 documents, 3 of a kind (409); uploads are
rate-limited per IP, order and account (429)."""

from __future__ import annotations

import io
import zlib

import pytest
from orders_helpers import DOCUMENT_KEY, image_bytes, order_body, pdf_bytes
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, StreamObject, TextStringObject
from sqlalchemy import func, select
from test_documents import s3_object, upload

from coc_orders.adapters import tables
from coc_shared.documents import Cipher

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x90" * 240


def order(client):
    return client.post("/v1/orders", json=order_body()).get_json()


def documents_of(runtime, order_id) -> int:
    t = tables.order_documents
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(t).where(t.c.order_id == order_id)
        ).scalar_one()


def refused(answer, words: str):
    assert answer.status_code == 415, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "unsupported_media_type" and words in error["message"], error
    return error


def bomb_pdf(*inflated: int) -> bytes:
    """A one-page PDF whose content streams are each ``inflated`` zero bytes, deflated."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    streams = ArrayObject()
    for size in inflated:
        stream = StreamObject()
        stream._data = zlib.compress(b"\0" * size, 9)
        stream[NameObject("/Filter")] = NameObject("/FlateDecode")
        streams.append(writer._add_object(stream))
    writer.pages[0][NameObject("/Contents")] = streams
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    "content,words",
    [
        (b"%PDF-1.7\n" + ELF, "not complete"),  # an executable behind a PDF's first bytes
        (b"%PDF-1.7\n" + ELF + b"\n%%EOF\n", "cannot be read"),  # with an end marker too
        (pdf_bytes() + ELF, "data after its end"),  # a PDF carrying an executable after its end
        (pdf_bytes(pages=21), "21 pages"),
        (pdf_bytes(pages=0), "no page"),
    ],
    ids=["elf-behind-header", "elf-with-eof", "elf-after-end", "21-pages", "no-page"],
)
def test_a_pdf_that_is_not_one_or_beyond_the_limits_gets_415_and_nothing_is_stored(
    runtime, client, content, words
):
    placed = order(client)
    refused(upload(client, placed, "id_card", content), words)
    assert documents_of(runtime, placed["id"]) == 0


def test_a_pdf_inflating_to_200_mb_gets_415(runtime, client):
    placed = order(client)
    bomb = bomb_pdf(200 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024  # a small file
    refused(upload(client, placed, "id_card", bomb), "inflates to more than 50 MB")
    # streams that each stay below the limit but add up beyond it are refused too
    megabytes = 1024 * 1024
    refused(upload(client, placed, "id_card", bomb_pdf(30 * megabytes, 30 * megabytes)), "50 MB")
    assert documents_of(runtime, placed["id"]) == 0
    assert (
        upload(client, placed, "id_card", bomb_pdf(20 * megabytes, 20 * megabytes)).status_code
        == 201
    )


def test_a_pdf_with_a_script_gets_415(client):
    placed = order(client)
    action = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('hello')"),
        }
    )
    refused(
        upload(client, placed, "id_card", pdf_bytes(extra={"/OpenAction": action})),
        "active content",
    )


def test_twenty_pages_are_taken(client):
    assert upload(client, order(client), "other", pdf_bytes(pages=20)).status_code == 201


def test_a_jpeg_carrying_a_script_is_stored_re_encoded_without_it(runtime, client):
    placed = order(client)
    carrier = image_bytes("JPEG") + b"<script>alert(document.cookie)</script>"
    answer = upload(client, placed, "id_card", carrier, filename="me.jpg", mimetype="image/jpeg")
    assert answer.status_code == 201, answer.get_json()
    document = answer.get_json()["document"]
    with runtime.engine.connect() as conn:
        key = conn.execute(
            select(tables.order_documents.c.storage_key).where(
                tables.order_documents.c.id == document["id"]
            )
        ).scalar_one()
    stored = Cipher(DOCUMENT_KEY).decrypt(s3_object(runtime, key), document["id"])
    assert b"<script>" not in stored and stored.startswith(b"\xff\xd8\xff")
    assert stored.rstrip(b"\0").endswith(b"\xff\xd9") and document["size"] == len(stored)


@pytest.mark.parametrize(
    "content,words",
    [
        # a PNG that declares 8000×6000 pixels (48 megapixels) in a few kilobytes
        (image_bytes("PNG", (8000, 6000), mode="1"), "too many pixels"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9", "cannot be read"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32, "cannot be read"),
        (image_bytes("JPEG")[:200], "cannot be read"),  # truncated
    ],
    ids=["48-megapixels", "jpeg-header-only", "png-header-only", "truncated-jpeg"],
)
def test_an_image_that_cannot_be_decoded_or_is_too_large_gets_415(runtime, client, content, words):
    placed = order(client)
    refused(upload(client, placed, "id_card", content, mimetype="image/png"), words)
    assert documents_of(runtime, placed["id"]) == 0


def test_an_order_takes_3_documents_of_a_kind_and_8_in_all(runtime, client):
    placed = order(client)
    pdf = pdf_bytes()
    codes = [upload(client, placed, "id_card", pdf).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 409]
    fourth = upload(client, placed, "id_card", pdf).get_json()["error"]
    assert "3 documents of the kind id_card" in fourth["message"]
    for kind in ("registration_certificate",) * 3 + ("other",) * 2:
        assert upload(client, placed, kind, pdf).status_code == 201
    ninth = upload(client, placed, "purchase_invoice", pdf)
    assert ninth.status_code == 409 and "8 documents" in ninth.get_json()["error"]["message"]
    assert documents_of(runtime, placed["id"]) == 8


def test_uploads_are_rate_limited_per_order_and_per_ip(make_runtime):
    client = make_runtime(ORDERS_RATE_LIMIT_UPLOADS="2/minute").create_app().test_client()
    pdf = pdf_bytes()
    placed = order(client)

    def send(target, ip):
        return client.post(
            f"/v1/orders/{target['id']}/documents",
            headers={"X-Order-Token": target["access_token"]},
            data={"kind": "other", "file": (io.BytesIO(pdf), "a.pdf", "application/pdf")},
            content_type="multipart/form-data",
            environ_base={"REMOTE_ADDR": ip},
        )

    codes = [send(placed, ip).status_code for ip in ("10.6.0.1", "10.6.0.2", "10.6.0.3")]
    assert codes == [201, 201, 429]  # the order's budget, whatever the IP
    other = order(client)
    assert send(other, "10.6.0.4").status_code == 201
    assert send(other, "10.6.0.4").status_code == 201
    third = order(client)
    assert send(third, "10.6.0.4").status_code == 429  # the IP's budget, whatever the order
