"""Crypto-shredding of the events' personal part: one data key per subject, kept wrapped in
``ops.subject_keys``.

Every event's ``personal`` part is sealed when it is emitted (``unit_of_work.Writes``, as its
outbox row is made) and unsealed when it is consumed (``consumer.EventConsumer``, before the
validation and the handler): services never see ciphertext and never call crypto.

* The **subject** of an event (whose key seals it) is decided from its data: ``account_id``,
  else ``order_id``, else the envelope's ``subject``. An event naming both an account and an order
  (``order.placed`` of a customer with an account) also links the order's key to the account, so
  that erasing the account destroys the keys of its orders too.
* A data key is 32 random bytes (AES-256-GCM); the sealed part is
  ``{"sealed": "A256GCM", "kid": <subject>, "ct": base64(nonce ‖ ciphertext ‖ tag)}`` with the
  event id and the subject as associated data, so a ciphertext moved to another event or
  subject does not open. Data keys are stored wrapped (RFC 3394 AES key wrap) by the
  key-encryption key of the configuration (``PERSONAL_DATA_KEK``), named by ``kek_id``;
  ``PERSONAL_DATA_KEK_PREVIOUS`` still unwraps during a rotation
  (``python -m coc_shared.keystore rotate``).
* **Erasure** destroys the subject's key (``destroy``: the wrapped key is nulled and
  ``destroyed_at`` set, once, whoever asks first). From then on every copy of the personal part —
  outboxes, queues, retry queues, parked messages, backups of them — cannot be opened: the
  consumer hands the event to its handler with ``personal = None`` and ``personal_erased = True``
  (never a failure, never parked for that); an event emitted about an erased subject travels with
  the marker ``{"erased": true}`` instead of its personal part.
* Unwrapped keys are cached in the process for ``PERSONAL_DATA_KEY_CACHE_SECONDS`` (a destroyed
  key is forgotten at once by the process that destroys it, by the others within that time).
* The embedded mode (SQLite, in-process transport) does not seal: nothing leaves the process.

A tampered ciphertext, a wrong subject or event id, a key that never existed raise
``SealBroken`` (a ``PermanentError``: the message is parked).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import hashlib
import os
import sys
import threading
import time
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import DBAPIError

from .envelope import Event, utcnow
from .errors import PermanentError
from .logging import get_logger
from .tables import subject_keys

log = get_logger(__name__)

ALGORITHM = "A256GCM"
ERASED = {"erased": True}  # what travels instead of the personal part of an erased subject
# Events whose personal part outlives the erasure of their account, under a key of their own
# (subject "<type>:<account or subject>"): the summary of the erasure, mailed to the address the
# request carried once everything else is erased.
OWN_KEY_TYPES = ("account.deactivated",)


def own_key_subject(event_type: str, subject: str) -> str:
    """The subject of the own key of an event of ``OWN_KEY_TYPES`` about ``subject``."""
    return f"{event_type}:{subject}"


class SealBroken(PermanentError):
    """A sealed personal part that does not open with its subject's key: tampered with, moved to
    another event or subject, or sealed with a key this store never had."""


def decode_kek(value: str) -> bytes:
    """A key-encryption key from its configuration text (base64 of 32 bytes)."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("expected the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")
    return raw


def kek_id(kek: bytes) -> str:
    return hashlib.sha256(b"coc-kek:" + kek).hexdigest()[:16]


def is_sealed(personal) -> bool:
    return isinstance(personal, dict) and personal.get("sealed") == ALGORITHM and "ct" in personal


def is_erased_marker(personal) -> bool:
    return isinstance(personal, dict) and personal.get("erased") is True and len(personal) == 1


def key_subject(event: Event) -> str:
    """Whose key seals ``event``'s personal part: its account, else its order, else its subject."""
    data = event.data if isinstance(event.data, dict) else {}
    for name in ("account_id", "order_id"):
        value = data.get(name)
        if isinstance(value, str) and value:
            subject = value
            break
    else:
        subject = event.subject or event.id
    if event.type in OWN_KEY_TYPES:
        return own_key_subject(event.type, subject)
    return subject


def _aad(event_id: str, subject: str) -> bytes:
    return f"{event_id}\n{subject}".encode()


class KeyStore:
    def __init__(
        self,
        engine: Engine,
        kek: bytes,
        previous: Iterable[bytes] = (),
        cache_seconds: float = 30.0,
    ):
        self.engine = engine
        self.kek = kek
        self.kek_id = kek_id(kek)
        self.keks = {self.kek_id: kek, **{kek_id(k): k for k in previous}}
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()

    # keys -----------------------------------------------------------------------------------
    def _cached(self, subject: str):
        hit = self._cache.get(subject)
        if hit is not None and hit[1] > time.monotonic():
            return hit
        return None

    def _remember(self, subject: str, key: bytes | None) -> None:
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[subject] = (key, time.monotonic() + self.cache_seconds)

    def _unwrap(self, subject: str, wrapped, wrapping_kek: str | None) -> bytes:
        kek = self.keks.get(wrapping_kek or "")
        if kek is None:
            raise SealBroken(
                f"the key of {subject!r} is wrapped by key-encryption key {wrapping_kek!r}, "
                "which this process does not hold (PERSONAL_DATA_KEK / _PREVIOUS)"
            )
        try:
            return aes_key_unwrap(kek, bytes(wrapped))
        except InvalidUnwrap as exc:
            raise SealBroken(f"the key of {subject!r} does not unwrap") from exc

    def _load(self, subjects: set[str]) -> dict[str, bytes | None]:
        """Keys of ``subjects`` from the store (None: destroyed); absent ones are not in the
        answer."""
        found: dict[str, bytes | None] = {}
        if not subjects:
            return found
        t = subject_keys
        query = select(t.c.subject, t.c.wrapped_key, t.c.kek_id, t.c.destroyed_at).where(
            t.c.subject.in_(sorted(subjects))
        )
        for attempt in (1, 2):  # the engine may have no pre-ping: a dead connection, once more
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(query).all()
                break
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        for row in rows:
            key = None
            if row.destroyed_at is None and row.wrapped_key is not None:
                key = self._unwrap(row.subject, row.wrapped_key, row.kek_id)
            found[row.subject] = key
            self._remember(row.subject, key)
        return found

    def keys(self, subjects: Iterable[str]) -> dict[str, bytes | None]:
        """Existing keys of ``subjects`` (None when destroyed; missing when never made)."""
        out: dict[str, bytes | None] = {}
        missing = set()
        for subject in subjects:
            hit = self._cached(subject)
            if hit is None:
                missing.add(subject)
            else:
                out[subject] = hit[0]
        out.update(self._load(missing))
        return out

    def keys_for_sealing(
        self, subjects: Iterable[str], links: dict[str, str] | None = None
    ) -> dict[str, bytes | None]:
        """The keys of ``subjects``, made for those that have none yet (committed at once, on the
        store's own connection: a key made for a unit of work that rolls back seals nothing);
        ``links`` (subject -> owner) records that a subject's key belongs to an owner's (an
        order to its account), so that destroying the owner's destroys it too."""
        from .db import insert_ignoring_conflicts

        links = links or {}
        wanted = set(subjects)
        found = self.keys(wanted | set(links))
        new = {s for s in wanted | set(links) if s not in found}
        if new:
            now = utcnow()
            rows = []
            made = {}
            for subject in sorted(new):
                key = AESGCM.generate_key(bit_length=256)
                made[subject] = key
                rows.append(
                    {
                        "subject": subject,
                        "owner": links.get(subject),
                        "wrapped_key": aes_key_wrap(self.kek, key),
                        "kek_id": self.kek_id,
                        "created_at": now,
                        "destroyed_at": None,
                    }
                )
            with self.engine.begin() as conn:
                inserted = set(
                    conn.execute(
                        insert_ignoring_conflicts(conn, subject_keys, rows).returning(
                            subject_keys.c.subject
                        )
                    ).scalars()
                )
            for subject in inserted:
                found[subject] = made[subject]
                self._remember(subject, made[subject])
            found.update(self._load(new - inserted))  # made by another process meanwhile
        unlinked = {s: o for s, o in links.items() if s not in new or s not in found}
        if unlinked:
            t = subject_keys
            with self.engine.begin() as conn:
                for subject, owner in unlinked.items():
                    conn.execute(
                        update(t)
                        .where(t.c.subject == subject, t.c.owner.is_(None))
                        .values(owner=owner)
                    )
        return found

    def destroy(self, subject: str) -> int:
        """Erase ``subject``'s key and the keys it owns (its orders'), for good: every personal
        part sealed with them is unreadable from now on. Once: a second call changes nothing.
        Returns how many keys were destroyed now."""
        t = subject_keys
        with self.engine.begin() as conn:
            destroyed = list(
                conn.execute(
                    update(t)
                    .where(
                        or_(t.c.subject == subject, t.c.owner == subject),
                        t.c.destroyed_at.is_(None),
                    )
                    .values(wrapped_key=None, destroyed_at=utcnow())
                    .returning(t.c.subject)
                ).scalars()
            )
            # a subject that never had a key gets a destroyed one: nothing is sealed for it later
            if not destroyed:
                from .db import insert_ignoring_conflicts

                conn.execute(
                    insert_ignoring_conflicts(
                        conn,
                        t,
                        {
                            "subject": subject,
                            "owner": None,
                            "wrapped_key": None,
                            "kek_id": None,
                            "created_at": utcnow(),
                            "destroyed_at": utcnow(),
                        },
                    )
                )
        for name in [subject, *destroyed]:
            self._remember(name, None)
        if destroyed:
            log.info("keystore.destroyed", subject=subject, keys=len(destroyed))
        return len(destroyed)

    def destroyed(self, subject: str) -> bool:
        return self.keys([subject]).get(subject, b"") is None

    # sealing ---------------------------------------------------------------------------------
    def seal_events(self, events: list[Event]) -> None:
        """Seal the personal part of each event (its ``sealed`` wire form); an event of an erased
        subject carries the erased marker instead."""
        to_seal = [e for e in events if e.personal and e.sealed is None]
        if not to_seal:
            return
        subjects = [key_subject(e) for e in to_seal]
        links = {}
        for event in to_seal:
            data = event.data if isinstance(event.data, dict) else {}
            account, order = data.get("account_id"), data.get("order_id")
            if isinstance(account, str) and account and isinstance(order, str) and order:
                links[order] = account
        keys: dict[str, bytes | None] = {}
        for subject in subjects:  # the common case: every key cached, nothing to link
            hit = self._cached(subject)
            if hit is None:
                break
            keys[subject] = hit[0]
        else:
            if links:
                keys = self.keys_for_sealing(set(subjects), links)
        if len(keys) < len(set(subjects)):
            keys = self.keys_for_sealing(set(subjects), links)
        for event, subject in zip(to_seal, subjects, strict=True):
            key = keys.get(subject)
            if key is None:
                event.sealed = dict(ERASED)
                event.personal_erased = True
                log.info("keystore.sealed_for_erased_subject", event_type=event.type)
                continue
            event.sealed = seal(key, event.id, subject, event.personal)

    def unseal_event(self, event: Event) -> None:
        self.unseal_events([event])

    def unseal_events(self, events: list[Event]) -> None:
        """Open the sealed personal part of each event (``personal``), or mark it erased
        (``personal = None``, ``personal_erased = True``) when its subject's key is destroyed;
        ``SealBroken`` when a part does not open."""
        to_seal = [e for e in events if e.sealed is not None and not e.personal_erased]
        if not to_seal:
            return
        subjects = {str(e.sealed.get("kid")) for e in to_seal if is_sealed(e.sealed)}
        keys = self.keys(subjects)
        for event in to_seal:
            open_event(event, keys)


@functools.lru_cache(maxsize=4096)
def _aead(key: bytes) -> AESGCM:
    return AESGCM(key)


def seal(key: bytes, event_id: str, subject: str, personal: dict) -> dict:
    import json

    nonce = os.urandom(12)
    plain = json.dumps(personal, separators=(",", ":"), ensure_ascii=False).encode()
    ciphertext = _aead(key).encrypt(nonce, plain, _aad(event_id, subject))
    return {
        "sealed": ALGORITHM,
        "kid": subject,
        "ct": base64.b64encode(nonce + ciphertext).decode(),
    }


def open_event(event: Event, keys: dict[str, bytes | None]) -> None:
    """``event.personal`` from ``event.sealed`` with ``keys`` (subject -> key, None: destroyed)."""
    import json

    sealed = event.sealed
    if is_erased_marker(sealed):
        event.personal, event.personal_erased = None, True
        return
    if not is_sealed(sealed):
        raise SealBroken("the personal part is neither clear, sealed nor marked erased")
    subject = str(sealed.get("kid"))
    if subject not in keys:
        raise SealBroken(f"no key was ever made for subject {subject!r}")
    key = keys[subject]
    if key is None:
        event.personal, event.personal_erased = None, True
        return
    try:
        raw = base64.b64decode(str(sealed["ct"]), validate=True)
        plain = _aead(key).decrypt(raw[:12], raw[12:], _aad(event.id, subject))
        personal = json.loads(plain)
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise SealBroken(
            "the sealed personal part does not open with its subject's key for this event "
            "(tampered with, or moved from another event or subject)"
        ) from exc
    if not isinstance(personal, dict):
        raise SealBroken("the sealed personal part is not an object")
    event.personal = personal


def from_settings(engine: Engine, settings) -> KeyStore | None:
    """The key store of a runtime, or None when no key-encryption key is configured (sealing
    off: the personal part travels in clear)."""
    if not settings.personal_data_kek:
        return None
    if engine.dialect.name == "sqlite":
        # The embedded mode: a transaction takes the write lock of every attached file (BEGIN
        # IMMEDIATE), so the store could not make a key beside a unit of work in progress; its
        # messages never leave the process (memory transport), so they go unsealed.
        log.info("keystore.off_in_embedded_mode")
        return None
    previous = (
        [decode_kek(settings.personal_data_kek_previous)]
        if (settings.personal_data_kek_previous)
        else []
    )
    return KeyStore(
        engine,
        decode_kek(settings.personal_data_kek),
        previous,
        cache_seconds=settings.personal_data_key_cache_seconds,
    )


# rotation ---------------------------------------------------------------------------------------
def rotate(engine: Engine, old: Iterable[bytes], new: bytes, batch: int = 1000) -> int:
    """Rewrap every live data key with ``new`` (unwrapping with whichever of ``old`` wrapped it);
    keys already under ``new`` are left. Returns how many were rewrapped. Safe to run again."""
    keks = {kek_id(k): k for k in old}
    new_id = kek_id(new)
    t = subject_keys
    done = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(t.c.subject, t.c.wrapped_key, t.c.kek_id)
                .where(t.c.wrapped_key.is_not(None), t.c.kek_id != new_id)
                .order_by(t.c.subject)
                .limit(batch)
                .with_for_update(skip_locked=False)
            ).all()
            if not rows:
                return done
            for row in rows:
                kek = keks.get(row.kek_id)
                if kek is None:
                    raise SystemExit(
                        f"the key of {row.subject!r} is wrapped by {row.kek_id!r}, "
                        "which is not among the old keys given"
                    )
                key = aes_key_unwrap(kek, bytes(row.wrapped_key))
                conn.execute(
                    update(t)
                    .where(t.c.subject == row.subject)
                    .values(wrapped_key=aes_key_wrap(new, key), kek_id=new_id)
                )
                done += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coc_shared.keystore",
        description="The key store of the events' personal parts (ops.subject_keys).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rot = sub.add_parser(
        "rotate",
        help="rewrap every data key with a new key-encryption key",
        description="Rewrap every data key with the new key-encryption key. Deploy the new key "
        "as PERSONAL_DATA_KEK with the old one as PERSONAL_DATA_KEK_PREVIOUS first, run this, "
        "then drop PERSONAL_DATA_KEK_PREVIOUS. Keys are read from the environment variables "
        "named by --old-env / --new-env (never from the command line, which others can see).",
    )
    rot.add_argument("--old-env", default="PERSONAL_DATA_KEK_PREVIOUS")
    rot.add_argument("--new-env", default="PERSONAL_DATA_KEK")
    args = parser.parse_args(argv)
    from .config import env
    from .db import make_engine
    from .tables import OPS_SCHEMA

    old_text, new_text = os.environ.get(args.old_env), os.environ.get(args.new_env)
    if not old_text or not new_text:
        print(f"set {args.old_env} and {args.new_env}", file=sys.stderr)
        return 2
    url = env("PARKING_DATABASE_URL") or env("DATABASE_URL")
    engine = make_engine(url, schemas=(OPS_SCHEMA,))
    try:
        count = rotate(engine, [decode_kek(old_text)], decode_kek(new_text))
    finally:
        engine.dispose()
    print(f"rewrapped {count} data keys with key-encryption key {kek_id(decode_kek(new_text))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
