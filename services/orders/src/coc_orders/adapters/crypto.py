"""AES-256-GCM encryption of documents (and of short secrets) before they leave the process."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..config import aes_256_key

MAGIC = b"COC1"


class Cipher:
    def __init__(self, key: bytes | str):
        """``key``: the 32 bytes of an AES-256 key, or their base64 text (ORDERS_DOCUMENT_KEY)."""
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
