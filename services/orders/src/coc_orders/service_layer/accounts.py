"""Use cases of customer accounts: sign up, log in, see and change one's data, change of e-mail
confirmed by a link, deactivation request."""
from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError

from coc_shared.auth import hash_access_token
from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters.repository import AccountRepository
from ..domain import checks
from .orders import Conflict, NotFound, ValidationFailed, _check, _put, check_address

log = get_logger(__name__)
_hasher = PasswordHasher()
# verified against when the e-mail is unknown, so that both cases take as long
_DUMMY_HASH = _hasher.hash("not a password of anyone")
EMAIL_CHANGE_TTL = timedelta(hours=24)
EMAIL_CHANGE_EVENT = "account.email_change_requested"


class InvalidCredentials(Exception):
    pass


def check_profile(profile: dict, partial: bool) -> tuple[dict, dict]:
    """Normalised profile and errors. The profile is what fills an order left partly blank."""
    errors: dict = {}
    out: dict = {}
    customer = profile.get("customer")
    if customer is not None:
        c = {}
        for name in ("first_name", "last_name"):
            if customer.get(name):
                c[name] = _check(errors, ("customer", name), checks.person_name, customer[name])
            elif not partial:
                _put(errors, ("customer", name), "Missing data for required field.")
        if customer.get("phone"):
            c["phone"] = _check(errors, ("customer", "phone"), checks.phone_e164, customer["phone"])
        out["customer"] = c
    elif not partial:
        _put(errors, ("customer",), "Missing data for required field.")
    for part in ("shipping_address", "billing_address"):
        if part in profile:
            out[part] = check_address(errors, part, profile[part], required=False) if profile[part] else None
    if "company" in profile:
        company = profile["company"]
        if company:
            co = {"name": " ".join(str(company.get("name") or "").split())}
            if not co["name"]:
                _put(errors, ("company", "name"), "Missing data for required field.")
            siren = _check(errors, ("company", "siren"), checks.siren, company["siren"]) if company.get("siren") else None
            co["siren"] = siren
            if company.get("vat_number"):
                co["vat_number"] = _check(errors, ("company", "vat_number"), checks.vat_number,
                                          company["vat_number"], siren)
            out["company"] = co
        else:
            out["company"] = None
    if "marketing_consent" in profile:
        out["marketing_consent"] = bool(profile["marketing_consent"])
    return out, errors


def create_account(runtime, email: str, password: str, profile: dict) -> dict:
    errors: dict = {}
    email = _check(errors, ("email",), checks.email_address, email)
    if len(password or "") < 10:
        _put(errors, ("password",), "At least 10 characters.")
    normalised, profile_errors = check_profile(profile or {}, partial=True)
    if profile_errors:
        errors["profile"] = profile_errors
    if errors:
        raise ValidationFailed(errors, "the account is not valid")
    normalised.setdefault("marketing_consent", False)
    account_id = str(uuid.uuid4())
    try:
        with runtime.transaction(correlation_id=account_id) as tx:
            accounts = AccountRepository(tx.conn)
            if accounts.by_email(email) is not None:
                raise Conflict("an account with this e-mail address exists; log in instead")
            accounts.add(account_id, email, _hasher.hash(password), normalised)
    except IntegrityError:
        raise Conflict("an account with this e-mail address exists; log in instead") from None
    log.info("account.created", account_id=account_id)
    return account_view(runtime, account_id)


def authenticate(runtime, email: str, password: str) -> str:
    with runtime.engine.connect() as conn:
        account = AccountRepository(conn).by_email((email or "").strip())
    try:
        _hasher.verify(account.password_hash if account else _DUMMY_HASH, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise InvalidCredentials() from None
    if account is None:
        raise InvalidCredentials()
    if _hasher.check_needs_rehash(account.password_hash):
        with runtime.engine.begin() as conn:
            AccountRepository(conn).update(account.id, password_hash=_hasher.hash(password))
    return account.id


def account_view(runtime, account_id: str) -> dict:
    with runtime.engine.connect() as conn:
        repo = AccountRepository(conn)
        account = repo.get(account_id)
        if account is None:
            raise NotFound("account")
        pending = repo.pending_email_change(account_id)
    profile = account.profile or {}
    return {"id": account.id, "email": account.email, "pending_email": pending.new_email if pending else None,
            "customer": profile.get("customer") or {}, "shipping_address": profile.get("shipping_address"),
            "billing_address": profile.get("billing_address"), "company": profile.get("company"),
            "marketing_consent": bool(profile.get("marketing_consent", False)),
            "deactivation_requested_at": account.deactivation_requested_at}


def update_account(runtime, account_id: str, changes: dict, confirmation_url: str) -> dict:
    """Profile changes apply at once; a new e-mail waits for the confirmation link sent to it
    (``account.email_change_requested``, emitted in the same transaction; only the SHA-256 of the
    link's one-time token is stored)."""
    errors: dict = {}
    new_email = None
    if changes.get("email"):
        new_email = _check(errors, ("email",), checks.email_address, changes["email"])
    profile_changes = {k: v for k, v in changes.items() if k != "email"}
    normalised, profile_errors = check_profile(profile_changes, partial=True)
    errors.update(profile_errors)
    if errors:
        raise ValidationFailed(errors, "the changes are not valid")
    with runtime.transaction(correlation_id=account_id) as tx:
        accounts = AccountRepository(tx.conn)
        account = accounts.get(account_id)
        if account is None:
            raise NotFound("account")
        profile = dict(account.profile or {})
        if "customer" in normalised:
            customer = dict(profile.get("customer") or {})
            customer.update({k: v for k, v in normalised.pop("customer").items() if v})
            profile["customer"] = customer
        profile.update(normalised)
        if profile != (account.profile or {}):
            accounts.update(account_id, profile=profile)
        if new_email and new_email.lower() != account.email.lower():
            if accounts.by_email(new_email) is not None:
                raise ValidationFailed({"email": ["This e-mail address cannot be used."]}, "the changes are not valid")
            token = secrets.token_urlsafe(32)
            expires_at = utcnow() + EMAIL_CHANGE_TTL
            accounts.add_email_change(hash_access_token(token), account_id, new_email, expires_at)
            tx.emit(EMAIL_CHANGE_EVENT, {"account_id": account_id, "expires_at": expires_at.isoformat()},
                    subject=account_id, personal={"email": new_email,
                                                  "confirmation_url": confirmation_url.format(token=token)},
                    correlation_id=account_id)
            log.info("account.email_change_requested", account_id=account_id)
    return account_view(runtime, account_id)


def confirm_email_change(runtime, token: str) -> dict:
    with runtime.transaction() as tx:
        accounts = AccountRepository(tx.conn)
        change = accounts.email_change(hash_access_token(token or ""))
        if change is None or change.confirmed_at is not None or _aware(change.expires_at) < utcnow():
            raise NotFound("this confirmation link is unknown, used or expired")
        if accounts.by_email(change.new_email) is not None:
            raise Conflict("this e-mail address is used by another account")
        accounts.confirm_email_change(change.token_sha256)
        accounts.update(change.account_id, email=change.new_email)
        account_id = change.account_id
    log.info("account.email_changed", account_id=account_id)
    return account_view(runtime, account_id)


def _aware(value):
    from datetime import timezone
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def request_deactivation(runtime, account_id: str) -> dict:
    with runtime.transaction(correlation_id=account_id) as tx:
        accounts = AccountRepository(tx.conn)
        account = accounts.get(account_id)
        if account is None:
            raise NotFound("account")
        requested_at = account.deactivation_requested_at
        if requested_at is None:
            requested_at = utcnow()
            accounts.update(account_id, deactivation_requested_at=requested_at)
            tx.emit("account.deactivation_requested", {"account_id": account_id,
                                                       "requested_at": requested_at.isoformat()},
                    subject=account_id, correlation_id=account_id)
    return {"account_id": account_id, "requested_at": _aware(requested_at)}
