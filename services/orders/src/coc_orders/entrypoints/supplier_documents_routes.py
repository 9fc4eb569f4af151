"""``GET /v1/supplier-documents/{document_id}``: a document opened by the signed link the supplier
gateway gave a supplier (``service_layer.supplier_documents``)."""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from ..service_layer import supplier_documents as uc
from .common import client_ip, errors
from .context import orders_app

blp = Blueprint(
    "supplier_documents",
    __name__,
    url_prefix="/v1/supplier-documents",
    description="Documents fetched by the makers' COC suppliers through signed links",
)

LINK_PARAMS = [
    {
        "in": "query",
        "name": name,
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }
    for name, description in (
        ("supplier", "the supplier's code the link was signed for"),
        ("expires", "the link's expiry (Unix time, at most 72 hours after it was made)"),
        ("signature", "HMAC-SHA256 of the supplier, the document and the expiry"),
    )
]
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


@blp.route("/<document_id>", methods=["GET"])
@blp.doc(
    security=[{}],
    parameters=LINK_PARAMS,
    summary="A document of an order, decrypted, for the supplier the link was signed for",
    responses={
        "200": {
            "description": "The document (PDF, JPEG or PNG)",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in EXTENSIONS},
        }
    },
)
@errors(blp, 403, 404, 503)
def supplier_document(document_id: str):
    app = orders_app()
    download = uc.supplier_download(
        app.runtime,
        app.storage,
        app.cipher,
        app.config.document_link_secret,
        document_id,
        request.args,
        client_ip(),
    )
    name = f"{download.kind}-{download.document_id}.{EXTENSIONS.get(download.content_type, 'bin')}"
    return Response(
        download.data,
        mimetype=download.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Referrer-Policy": "no-referrer",
        },
    )
