"""Documents kept encrypted in an object store, what a PDF really is, and the links that let a
supplier fetch one document.

One implementation for every service that stores files (orders: the customers' documents; the
supplier gateway: the certificates suppliers send):

* ``Cipher``: AES-256-GCM, the document's id bound as associated data, so that a blob cannot be
  passed off as another document;
* ``S3Storage`` (any S3-compatible store, through boto3) and ``LocalFolderStorage`` (a folder:
  the embedded mode, development) behind ``DocumentStorage``; a service declares its store's
  variables with ``store_variables(prefix, ...)`` and opens it with ``open_store``;
* ``check_pdf``: a PDF read by pypdf within limits of pages, objects and inflated size, refused
  with active content (scripts, launch actions, embedded files) or bytes after its end
  (``DocumentRefused`` with the reason);
* document links: ``sign_document_link`` / ``verify_document_link``, an HMAC-SHA256 over (supplier
  code, document id, expiry) with a secret the signing and the serving service share. A link is
  scoped to one supplier and one document and lives at most ``MAX_LINK_HOURS``.

boto3 and pypdf are imported where they are used: a service that needs neither does not install
them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .config import Variable, one_of, url

# --------------------------------------------------------------------------- encryption
MAGIC = b"COC1"


def aes_256_key(value: str) -> bytes:
    """The 32 bytes of a base64-encoded AES-256 key."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected 32 bytes encoded in base64") from None
    if len(key) != 32:
        raise ValueError(f"expected 32 bytes encoded in base64 (this is {len(key)} bytes)")
    return key


class Cipher:
    def __init__(self, key: bytes | str):
        """``key``: the 32 bytes of an AES-256 key, or their base64 text."""
        if isinstance(key, str):
            key = aes_256_key(key)
        if len(key) != 32:
            raise ValueError("an AES-256 key is 32 bytes")
        self._aead = AESGCM(key)

    @staticmethod
    def new_key() -> str:
        return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        """``MAGIC | 12-byte nonce | ciphertext+tag``; ``context`` (e.g. the document id) is bound
        as associated data, so a blob cannot be passed off as another document."""
        nonce = os.urandom(12)
        return MAGIC + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def decrypt(self, blob: bytes, context: str) -> bytes:
        if not blob.startswith(MAGIC):
            raise ValueError("not an encrypted blob of this service")
        nonce, ciphertext = blob[4:16], blob[16:]
        return self._aead.decrypt(nonce, ciphertext, context.encode())


# --------------------------------------------------------------------------- storage
def new_storage_key(folder: str = "documents") -> str:
    """A random object key: it reveals neither the order nor the customer."""
    return f"{folder}/{secrets.token_hex(2)}/{secrets.token_urlsafe(24)}"


class DocumentStorage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class StoredObjectMissing(KeyError):
    """No object under this key (never stored, or erased)."""


class S3Storage:
    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
            ),
        )
        self._bucket_checked = False
        self._lock = threading.Lock()

    def _ensure_bucket(self) -> None:
        if self._bucket_checked:
            return
        from botocore.exceptions import ClientError

        with self._lock:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError:
                region = self.client.meta.region_name
                kwargs = {}
                if region and region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
                self.client.create_bucket(Bucket=self.bucket, **kwargs)
            self._bucket_checked = True

    def put(self, key: str, data: bytes) -> None:
        self._ensure_bucket()
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream"
        )

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StoredObjectMissing(key) from None
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


class LocalFolderStorage:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        path = (self.folder / key).resolve()
        if self.folder.resolve() not in path.parents:
            raise ValueError("storage key outside the folder")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoredObjectMissing(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


@dataclass(frozen=True)
class StoreSettings:
    """Where a service's encrypted files go (from its ``store_variables``)."""

    key: bytes | None = field(default=None, repr=False)  # None: storing answers 503
    kind: str | None = None  # s3 | local | None (local in the embedded mode, else s3)
    folder: str = "var/documents"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "coc-documents"
    s3_region: str = "eu-west-3"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)


def store_variables(
    prefix: str, what: str, key_name: str, folder_name: str, folder: str, bucket: str
) -> list[Variable]:
    """The variables of a service's encrypted store: ``{prefix}_{key_name}`` (the AES-256 key),
    ``{prefix}_{key_name minus KEY}STORE`` … — e.g. prefix ORDERS, what "customers' documents",
    key_name DOCUMENT_KEY, folder_name DOCUMENTS_DIR."""
    store = key_name.removesuffix("KEY") + "STORE"
    return [
        Variable(
            f"{prefix}_{key_name}",
            None,
            f"AES-256-GCM key (32 bytes, base64) that encrypts {what} before they are stored. "
            "Storing them answers 503 without it.",
            aes_256_key,
        ),
        Variable(
            f"{prefix}_{store}",
            None,
            f"Where {what} go, encrypted: `s3` (any S3-compatible store, through boto3) or `local` "
            f"(a folder, {prefix}_{folder_name}); empty chooses `local` in the embedded mode and "
            "`s3` otherwise.",
            one_of("s3", "local"),
        ),
        Variable(
            f"{prefix}_{folder_name}",
            folder,
            f"Folder of {what} when {prefix}_{store} is `local`.",
        ),
        Variable(
            f"{prefix}_S3_ENDPOINT_URL",
            None,
            "Endpoint of the S3-compatible store (e.g. MinIO); empty means AWS S3.",
            url("http", "https"),
        ),
        Variable(f"{prefix}_S3_BUCKET", bucket, f"Bucket of {what} (created when missing)."),
        Variable(f"{prefix}_S3_REGION", "eu-west-3", "Region of the S3-compatible store."),
        Variable(
            f"{prefix}_S3_ACCESS_KEY_ID",
            None,
            "Access key of the S3-compatible store (else boto3's usual credential chain).",
        ),
        Variable(
            f"{prefix}_S3_SECRET_ACCESS_KEY",
            None,
            "Secret key of the S3-compatible store (else boto3's usual credential chain).",
        ),
    ]


def store_settings(values: Mapping, variables: list[Variable]) -> StoreSettings:
    """``StoreSettings`` from the loaded values of ``store_variables`` (in their order)."""
    key, kind, folder, endpoint, bucket, region, access, secret = (
        values[v.name] for v in variables
    )
    return StoreSettings(key, kind, folder, endpoint, bucket, region, access, secret)


def open_store(settings: StoreSettings, embedded: bool) -> DocumentStorage:
    """The store ``settings`` name: their kind, else a local folder in the embedded mode and S3
    otherwise."""
    kind = settings.kind or ("local" if embedded else "s3")
    if kind == "local":
        return LocalFolderStorage(settings.folder)
    return S3Storage(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
    )


# --------------------------------------------------------------------------- PDF
class DocumentRefused(ValueError):
    """What a file is, or holds, cannot be taken (the message says why)."""


MAX_PDF_PAGES = 20
MAX_PDF_INFLATED_BYTES = 50 * 1024 * 1024  # all the PDF's streams decoded
MAX_PDF_OBJECTS = 20_000
# pypdf's own caps on one stream (its defaults are 75 MB), so that a bomb stops at our limit;
# applied around each reading (a context variable: other threads keep theirs)
PDF_LIMITS = {
    name: MAX_PDF_INFLATED_BYTES
    for name in (
        "maximum_declared_stream_length",
        "array_based_stream_maximum_output_length",
        "jbig2_maximum_output_length",
        "lzw_maximum_output_length",
        "run_length_maximum_output_length",
        "zlib_maximum_output_length",
        "brotli_maximum_output_length",
    )
}
# pypdf reports what it repairs through logging: an outside party's file is not an event of ours
logging.getLogger("pypdf").setLevel(logging.ERROR)

# names that only active content uses (scripts, launching programs, files carried inside, forms
# that run code): an identity document, a registration certificate or a COC has none
ACTIVE_KEYS = frozenset(
    {"/JS", "/JavaScript", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia", "/XFA"}
)
ACTIVE_VALUES = frozenset({"/JavaScript", "/Launch", "/EmbeddedFile", "/RichMedia"})
_AFTER_END = re.compile(rb"%%EOF[\x00\t\n\f\r ]*\Z")


def check_pdf(data: bytes) -> None:
    """``DocumentRefused`` (saying why) unless ``data`` is a sound PDF within the limits."""
    from pypdf import apply_configuration
    from pypdf.errors import PyPdfError

    if not data.startswith(b"%PDF-"):
        raise DocumentRefused("this is not a PDF file")
    if not _AFTER_END.search(data[-1024:]):
        raise DocumentRefused(
            "this PDF is not complete, or carries data after its end: it cannot be taken"
        )
    try:
        with apply_configuration(**PDF_LIMITS):
            _read_pdf(data)
    except DocumentRefused:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError):
        # pypdf's refusals, and what a malformed file makes its parser raise
        raise DocumentRefused("this PDF cannot be read") from None


def _read_pdf(data: bytes) -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    pages = len(reader.pages)
    if pages == 0:
        raise DocumentRefused("this PDF has no page")
    if pages > MAX_PDF_PAGES:
        raise DocumentRefused(
            f"this PDF has {pages} pages: a document is at most {MAX_PDF_PAGES} pages"
        )
    _check_objects(reader)


def _object_numbers(reader) -> list[int]:
    numbers = {n for by_number in reader.xref.values() for n in by_number}
    numbers.update(reader.xref_objStm)
    numbers.discard(0)
    if len(numbers) > MAX_PDF_OBJECTS:
        raise DocumentRefused(f"this PDF has more than {MAX_PDF_OBJECTS} objects")
    return sorted(numbers)


def _check_objects(reader) -> None:
    """Every object once: no active content, and all streams together inflate to at most
    MAX_PDF_INFLATED_BYTES (one stream beyond it is stopped by pypdf's caps, set above)."""
    from pypdf.errors import LimitReachedError
    from pypdf.generic import StreamObject

    inflated = 0
    for number in _object_numbers(reader):
        obj = reader.get_object(number)
        _refuse_active_content(obj)
        if isinstance(obj, StreamObject):
            try:
                inflated += len(obj.get_data())
            except LimitReachedError:
                inflated = MAX_PDF_INFLATED_BYTES + 1
            if inflated > MAX_PDF_INFLATED_BYTES:
                raise DocumentRefused(
                    "this PDF inflates to more than "
                    f"{MAX_PDF_INFLATED_BYTES // (1024 * 1024)} MB: it cannot be taken"
                )


def _refuse_active_content(obj, depth: int = 0) -> None:
    """``obj`` and the dictionaries and arrays written inside it (others are objects of their own,
    checked in their turn)."""
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject

    if depth > 32:
        raise DocumentRefused("this PDF cannot be read")
    if isinstance(obj, DictionaryObject):
        if ACTIVE_KEYS & set(obj.keys()) or ACTIVE_VALUES & {
            v for v in obj.values() if isinstance(v, NameObject)
        }:
            raise DocumentRefused(
                "this PDF holds active content (a script, a launch action or an embedded file): "
                "it cannot be taken"
            )
        for value in obj.values():
            _refuse_active_content(value, depth + 1)
    elif isinstance(obj, ArrayObject):
        for value in obj:
            _refuse_active_content(value, depth + 1)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- document links
MAX_LINK_HOURS = 72
MIN_LINK_SECRET_LENGTH = 32


class LinkRefused(Exception):
    """A document link that does not open its document: ``status`` 403 (not signed by us for this
    supplier and document, or expired) or 404."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


def link_secret(value: str) -> str:
    """Reader of a document link secret (config variables of both services)."""
    if len(value) < MIN_LINK_SECRET_LENGTH:
        raise ValueError(f"expected a secret of at least {MIN_LINK_SECRET_LENGTH} characters")
    return value


def _link_signature(secret: str, supplier: str, document_id: str, expires: int) -> str:
    message = f"coc-document-link\n{supplier}\n{document_id}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_document_link(
    secret: str, supplier: str, document_id: str, expires_at: datetime
) -> dict[str, str]:
    """The query of a link to ``document_id`` for ``supplier`` until ``expires_at``."""
    expires = int(expires_at.timestamp())
    return {
        "supplier": supplier,
        "expires": str(expires),
        "signature": _link_signature(secret, supplier, document_id, expires),
    }


def verify_document_link(
    secret: str | None,
    document_id: str,
    query: Mapping[str, str],
    now: datetime | None = None,
) -> str:
    """The supplier a link to ``document_id`` was signed for; ``LinkRefused`` (403) when it was
    not signed with ``secret`` for that supplier and document, has expired or claims to live
    longer than ``MAX_LINK_HOURS``."""
    if not secret:
        raise LinkRefused("document links are not configured", 503)
    supplier = query.get("supplier") or ""
    expires_text = query.get("expires") or ""
    signature = query.get("signature") or ""
    if not (re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", supplier) and expires_text.isdigit()):
        raise LinkRefused("this link is not valid")
    expires = int(expires_text)
    expected = _link_signature(secret, supplier, document_id, expires)
    if not hmac.compare_digest(expected, signature):
        raise LinkRefused("this link is not valid")
    now = now or datetime.now(UTC)
    if expires <= now.timestamp():
        raise LinkRefused("this link has expired")
    if expires - now.timestamp() > MAX_LINK_HOURS * 3600 + 60:
        raise LinkRefused("this link claims to live longer than allowed")
    return supplier


def link_expiry(now: datetime, hours: float) -> datetime:
    return now + timedelta(hours=min(hours, MAX_LINK_HOURS))
