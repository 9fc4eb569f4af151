"""Staff accounts and sessions: a password (argon2) and a TOTP code (each code good once) open
a session; a session ends after ``idle_minutes`` without a request, or at log-out."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from coc_shared.envelope import utcnow

from ..adapters.repository import AuditRepository, SessionRepository, StaffRepository
from ..domain.model import InputError, Staff, check_new_staff

ISSUER = "COC support console"
LOCK_AFTER_FAILURES = 10
LOCK_MINUTES = 15
_hasher = PasswordHasher()
# verified when the name is unknown, so that a wrong name costs the same time as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class LoginRefused(Exception):
    """Wrong name, password or code, or a locked account (one message for all: no hint)."""


@dataclass(frozen=True)
class NewStaff:
    staff: Staff
    totp_secret: str
    totp_uri: str


@dataclass(frozen=True)
class Session:
    staff: Staff
    csrf_token: str


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_staff(
    runtime, name: str, role: str, password: str, by: str = "command line"
) -> NewStaff:
    name = (name or "").strip().lower()
    check_new_staff(name, role, password)
    secret = pyotp.random_base32()
    now = utcnow()
    with runtime.engine.begin() as conn:
        staff = StaffRepository(conn)
        if staff.by_name(name) is not None:
            raise InputError({"name": "a staff member of that name exists"})
        staff_id = staff.add(
            {
                "name": name,
                "role": role,
                "password_hash": _hasher.hash(password),
                "totp_secret": secret,
                "failed_logins": 0,
                "created_at": now,
            }
        )
        AuditRepository(conn).add(
            now, by, "admin", "create_staff", f"staff:{name}", None, {"role": role}
        )
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
    return NewStaff(Staff(staff_id, name, role), secret, uri)


def staff_count(runtime) -> int:
    with runtime.engine.connect() as conn:
        return StaffRepository(conn).count()


def _totp_step(secret: str, code: str, now: float) -> int | None:
    """The time step (30 s) whose code ``code`` is, within one step of now; None otherwise."""
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // totp.interval)
    for step in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


def log_in(runtime, name: str, password: str, code: str) -> tuple[str, Session]:
    """A new session (its cookie value, and the session) for the right password and a fresh
    TOTP code; LoginRefused otherwise. Ten failures in a row lock the account 15 minutes."""
    name = (name or "").strip().lower()
    now = utcnow()
    with runtime.engine.begin() as conn:
        accounts = StaffRepository(conn)
        account = accounts.by_name(name)
        if account is None:
            try:
                _hasher.verify(_DUMMY_HASH, password or "-")
            except VerificationError:
                pass
            raise LoginRefused()
        locked = account["locked_until"]
        if locked is not None and _aware(locked) > now:
            raise LoginRefused()
        try:
            password_ok = _hasher.verify(account["password_hash"], password or "")
        except (VerificationError, InvalidHashError):
            password_ok = False
        step = _totp_step(account["totp_secret"], code, time.time()) if password_ok else None
        if step is None or (account["last_totp_step"] or -1) >= step:
            failures = account["failed_logins"] + 1
            accounts.change(
                account["id"],
                failed_logins=0 if failures >= LOCK_AFTER_FAILURES else failures,
                locked_until=now + timedelta(minutes=LOCK_MINUTES)
                if failures >= LOCK_AFTER_FAILURES
                else account["locked_until"],
            )
            AuditRepository(conn).add(now, name, account["role"], "login_failed", f"staff:{name}")
            failed = True
        else:
            accounts.change(account["id"], failed_logins=0, last_totp_step=step, locked_until=None)
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            sessions = SessionRepository(conn)
            sessions.remove_idle(now - timedelta(minutes=runtime.config.idle_minutes))
            sessions.add(session_key(token), account["id"], csrf, now)
            AuditRepository(conn).add(now, name, account["role"], "login", f"staff:{name}")
            failed = False
    if failed:  # the failure is recorded (committed) before refusing
        raise LoginRefused()
    return token, Session(Staff(account["id"], account["name"], account["role"]), csrf)


def _aware(moment):
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def current_session(runtime, token: str | None) -> Session | None:
    """The session of a cookie value, its idle clock restarted; None when there is none or it
    was idle longer than the console allows (it is then removed)."""
    if not token:
        return None
    now = utcnow()
    key = session_key(token)
    with runtime.engine.begin() as conn:
        sessions = SessionRepository(conn)
        found = sessions.get(key)
        if found is None:
            return None
        if _aware(found["last_seen_at"]) < now - timedelta(minutes=runtime.config.idle_minutes):
            sessions.remove(key)
            return None
        sessions.touch(key, now)
    return Session(Staff(found["staff_id"], found["name"], found["role"]), found["csrf_token"])


def log_out(runtime, token: str | None) -> None:
    if token:
        with runtime.engine.begin() as conn:
            SessionRepository(conn).remove(session_key(token))
