"""AES-256-GCM encryption of documents (and of short secrets) before they leave the process."""
from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"COC1"


class EncryptionNotConfigured(Exception):
    pass


class Cipher:
    def __init__(self, key_b64: str | None):
        if not key_b64:
            raise EncryptionNotConfigured("document encryption is not configured (ORDERS_DOCUMENT_KEY)")
        try:
            key = base64.b64decode(key_b64, validate=True)
        except ValueError:
            raise EncryptionNotConfigured("ORDERS_DOCUMENT_KEY is not valid base64") from None
        if len(key) != 32:
            raise EncryptionNotConfigured("ORDERS_DOCUMENT_KEY must be 32 bytes (base64-encoded)")
        self._aead = AESGCM(key)

    @staticmethod
    def new_key() -> str:
        return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        """``MAGIC | 12-byte nonce | ciphertext+tag``; ``context`` (e.g. the document id) is bound as
        associated data, so a blob cannot be passed off as another document."""
        nonce = os.urandom(12)
        return MAGIC + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def decrypt(self, blob: bytes, context: str) -> bytes:
        if not blob.startswith(MAGIC):
            raise ValueError("not an encrypted blob of this service")
        nonce, ciphertext = blob[4:16], blob[16:]
        return self._aead.decrypt(nonce, ciphertext, context.encode())
