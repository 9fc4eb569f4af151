"""Object storage of the (already encrypted) documents: any S3-compatible store through boto3, or
a local folder behind the same interface (embedded mode)."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import Protocol


def new_storage_key() -> str:
    """A random object key: it reveals neither the order nor the customer."""
    return f"documents/{secrets.token_hex(2)}/{secrets.token_urlsafe(24)}"


class DocumentStorage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...


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
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


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
        return self._path(key).read_bytes()


def document_storage(config, embedded: bool) -> DocumentStorage:
    """The store ``config`` (an ``OrdersConfig``) names: ORDERS_DOCUMENT_STORE, else a local folder
    in the embedded mode and S3 otherwise."""
    kind = config.document_store or ("local" if embedded else "s3")
    if kind == "local":
        return LocalFolderStorage(config.documents_dir)
    return S3Storage(
        bucket=config.s3_bucket,
        endpoint_url=config.s3_endpoint_url,
        region=config.s3_region,
        access_key_id=config.s3_access_key_id,
        secret_access_key=config.s3_secret_access_key,
    )
