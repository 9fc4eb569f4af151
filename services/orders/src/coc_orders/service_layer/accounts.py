"""Use cases of customer accounts: sign up, log in, see and change one's data, change of e-mail
confirmed by a link, deactivation request. One unit of work each; refusals are ``domain.errors``.

Neither a sign-up nor a change of e-mail tells whether an address already has an account: both
answer the same either way, and take as long (the password is hashed either way). A change of
e-mail to an address in use is recorded and mailed like any other (the mail goes to that address,
whose owner is so told; its confirmation is refused); a sign-up with an address in use creates
nothing, is logged (``account.sign_up_address_in_use``, with the owner's account id) and the owner
is told by mail (``account.sign_up_attempted``).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError

from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger
from coc_shared.tokens import hash_access_token
from coc_shared.values import as_utc

from ..adapters.repository import AccountRepository
from ..domain import checks
from ..domain.errors import Conflict, InvalidCredentials, NotFound, ValidationFailed
from ..domain.validation import check_profile, checked, put_error

log = get_logger(__name__)
_hasher = PasswordHasher()
# verified against when the e-mail is unknown, so that both cases take as long
_DUMMY_HASH = _hasher.hash("not a password of anyone")
EMAIL_CHANGE_TTL = timedelta(hours=24)
EMAIL_CHANGE_EVENT = "account.email_change_requested"
EMAIL_IN_USE = "this e-mail address is used by another account"


@dataclass(frozen=True)
class AccountView:
    id: str
    email: str
    pending_email: str | None
    customer: dict
    shipping_address: dict | None
    billing_address: dict | None
    company: dict | None
    marketing_consent: bool
    deactivation_requested_at: datetime | None


@dataclass(frozen=True)
class SignUp:
    """What a sign-up did: ``account_id`` is the new account's, or None when the address already
    had one (which the answer never tells)."""

    email: str
    account_id: str | None


@dataclass(frozen=True)
class DeactivationRequested:
    account_id: str
    requested_at: datetime


def _tell_the_consent_ledger(uow, account_id: str, email: str, given: bool, channel: str) -> None:
    """A choice about marketing mails goes to the gdpr service's consent ledger, which tells
    notifications (``consent.given`` / ``consent.withdrawn``)."""
    uow.emit(
        "account.marketing_choice_made",
        {
            "account_id": account_id,
            "purpose": "marketing_email",
            "given": given,
            "channel": channel,
            "text_version": None,  # the ledger's current version of the text
            "at": utcnow().isoformat(),
        },
        subject=account_id,
        personal={"email": email},
    )


def _tell_the_owner(uow, owner_id: str, email: str) -> None:
    """The owner of an address someone tried to sign up with is told by mail."""
    uow.emit(
        "account.sign_up_attempted",
        {"account_id": owner_id, "attempted_at": utcnow().isoformat()},
        subject=owner_id,
        personal={"email": email},
        correlation_id=owner_id,
    )


def create_account(runtime, email: str, password: str, profile: dict) -> SignUp:
    """A new account for ``email``, unless the address already has one: then nothing is created,
    and the caller cannot tell (same result, as long)."""
    errors: dict = {}
    email = checked(errors, ("email",), checks.email_address, email)
    if len(password or "") < 10:
        put_error(errors, ("password",), "At least 10 characters.")
    elif not checks.is_storable_string(password):
        put_error(errors, ("password",), checks.UNSTORABLE_TEXT)
    normalised, profile_errors = check_profile(profile or {}, partial=True)
    if profile_errors:
        errors["profile"] = profile_errors
    if errors:
        raise ValidationFailed(errors, "the account is not valid")
    normalised.setdefault("marketing_consent", False)
    password_hash = _hasher.hash(password)  # either way: both answers take as long
    account_id = str(uuid.uuid4())
    try:
        with runtime.unit_of_work(correlation_id=account_id) as uow:
            accounts = AccountRepository(uow)
            owner = accounts.by_email(email)
            if owner is None:
                accounts.add(account_id, email, password_hash, normalised)
                if normalised.get("marketing_consent"):
                    _tell_the_consent_ledger(uow, account_id, email, True, "account_sign_up")
            else:
                _tell_the_owner(uow, owner.id, email)
            uow.commit()
    except IntegrityError:  # the same address signed up concurrently
        with runtime.unit_of_work() as uow:
            owner = AccountRepository(uow).by_email(email)
            if owner is None:
                raise
            _tell_the_owner(uow, owner.id, email)
            uow.commit()
    if owner is not None:
        log.warning("account.sign_up_address_in_use", account_id=owner.id)
        return SignUp(email, None)
    log.info("account.created", account_id=account_id)
    return SignUp(email, account_id)


def authenticate(runtime, email: str, password: str) -> str:
    """The account id of these credentials; InvalidCredentials otherwise (as slow either way)."""
    if not (checks.is_storable_string(email or "") and checks.is_storable_string(password or "")):
        raise InvalidCredentials()  # no account has such an address or password
    with runtime.unit_of_work() as uow:
        account = AccountRepository(uow).by_email((email or "").strip())
    try:
        _hasher.verify(account.password_hash if account else _DUMMY_HASH, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise InvalidCredentials() from None
    if account is None or account.deactivation_requested_at is not None:
        raise InvalidCredentials()  # a deactivated account logs in no more, from the request on
    rehashed = {}
    if _hasher.check_needs_rehash(account.password_hash):
        rehashed["password_hash"] = _hasher.hash(password)
    # a log-in is activity: the account's two years start again (a warning no longer counts)
    with runtime.unit_of_work(correlation_id=account.id) as uow:
        AccountRepository(uow).active(account.id, utcnow(), **rehashed)
        uow.commit()
    return account.id


def account_view(runtime, account_id: str) -> AccountView:
    with runtime.unit_of_work() as uow:
        accounts = AccountRepository(uow)
        account = accounts.get(account_id)
        if account is None:
            raise NotFound("no such account")
        pending = accounts.pending_email_change(account_id)
    profile = account.profile or {}
    return AccountView(
        id=account.id,
        email=account.email,
        pending_email=pending.new_email if pending else None,
        customer=profile.get("customer") or {},
        shipping_address=profile.get("shipping_address"),
        billing_address=profile.get("billing_address"),
        company=profile.get("company"),
        marketing_consent=bool(profile.get("marketing_consent", False)),
        deactivation_requested_at=as_utc(account.deactivation_requested_at),
    )


def _changed_profile(saved: dict | None, normalised: dict) -> dict:
    profile = dict(saved or {})
    if "customer" in normalised:
        customer = dict(profile.get("customer") or {})
        customer.update({k: v for k, v in normalised.pop("customer").items() if v})
        profile["customer"] = customer
    profile.update(normalised)
    return profile


def update_account(runtime, account_id: str, changes: dict, confirmation_url: str) -> AccountView:
    """Profile changes apply at once; a new e-mail waits for the confirmation link sent to it
    (``account.email_change_requested``, emitted in the same unit of work; only the SHA-256 of the
    link's one-time token is stored). An address used by another account is treated the same
    (the answer does not tell): its mail says so (``address_in_use``), and its confirmation is
    refused."""
    errors: dict = {}
    new_email = None
    if changes.get("email"):
        new_email = checked(errors, ("email",), checks.email_address, changes["email"])
    normalised, profile_errors = check_profile(
        {k: v for k, v in changes.items() if k != "email"}, partial=True
    )
    errors.update(profile_errors)
    if errors:
        raise ValidationFailed(errors, "the changes are not valid")
    with runtime.unit_of_work(correlation_id=account_id) as uow:
        accounts = AccountRepository(uow)
        account = accounts.get(account_id)
        if account is None:
            raise NotFound("no such account")
        if new_email and new_email.lower() == account.email.lower():
            new_email = None
        in_use = bool(new_email) and accounts.by_email(new_email) is not None
        profile = _changed_profile(account.profile, normalised)
        changed = {"profile": profile} if profile != (account.profile or {}) else {}
        accounts.active(account_id, utcnow(), **changed)
        consent = bool(profile.get("marketing_consent"))
        if consent != bool((account.profile or {}).get("marketing_consent")):
            _tell_the_consent_ledger(uow, account_id, account.email, consent, "account_settings")
        if new_email:
            _request_email_change(uow, accounts, account_id, new_email, confirmation_url, in_use)
        uow.commit()
    return account_view(runtime, account_id)


def _request_email_change(
    uow,
    accounts: AccountRepository,
    account_id: str,
    new_email: str,
    confirmation_url: str,
    address_in_use: bool,
) -> None:
    """Record the change and emit the event whose mail carries the link. ``address_in_use``: the
    address has an account already; the event says so (``data.address_in_use``, an optional
    field) so that the mail tells its owner that someone asked to use it, rather than asking to
    confirm (the confirmation would be refused)."""
    token = secrets.token_urlsafe(32)
    expires_at = utcnow() + EMAIL_CHANGE_TTL
    accounts.add_email_change(hash_access_token(token), account_id, new_email, expires_at)
    data = {"account_id": account_id, "expires_at": expires_at.isoformat()}
    if address_in_use:
        data["address_in_use"] = True
    uow.emit(
        EMAIL_CHANGE_EVENT,
        data,
        subject=account_id,
        personal={"email": new_email, "confirmation_url": confirmation_url.format(token=token)},
    )
    log.info("account.email_change_requested", account_id=account_id, address_in_use=address_in_use)


def confirm_email_change(runtime, token: str) -> AccountView:
    if not checks.is_storable_string(token or ""):
        raise NotFound("this confirmation link is unknown, used or expired")
    with runtime.unit_of_work() as uow:
        accounts = AccountRepository(uow)
        change = accounts.email_change(hash_access_token(token or ""))
        if (
            change is None
            or change.confirmed_at is not None
            or as_utc(change.expires_at) < utcnow()
        ):
            raise NotFound("this confirmation link is unknown, used or expired")
        if accounts.by_email(change.new_email) is not None:
            raise Conflict("this e-mail address is used by another account")
        accounts.confirm_email_change(change.token_sha256)
        accounts.active(change.account_id, utcnow(), email=change.new_email)
        uow.commit()
    log.info("account.email_changed", account_id=change.account_id)
    return account_view(runtime, change.account_id)


def request_deactivation(runtime, account_id: str) -> DeactivationRequested:
    """Asks the gdpr service to erase the account (``account.deactivation_requested``, once)."""
    with runtime.unit_of_work(correlation_id=account_id) as uow:
        accounts = AccountRepository(uow)
        account = accounts.get(account_id)
        if account is None:
            raise NotFound("no such account")
        requested_at = as_utc(account.deactivation_requested_at)
        if requested_at is None:
            requested_at = utcnow()
            deactivate(uow, accounts, account, requested_at)
        uow.commit()
    return DeactivationRequested(account_id, requested_at)


def deactivate(uow, accounts: AccountRepository, account, at: datetime, reason=None) -> None:
    """Log-in is refused from ``at`` on and the gdpr service is asked to erase the account: the
    customer's own request, or (``reason`` inactivity) a purge run's, by the same saga."""
    accounts.update(account.id, deactivation_requested_at=at)
    data = {"account_id": account.id, "requested_at": at.isoformat()}
    if reason is not None:
        data["reason"] = reason
    uow.emit(
        "account.deactivation_requested",
        data,
        subject=account.id,
        # where gdpr sends the summary of the erasure, once every service has erased
        personal={"email": account.email, "first_name": first_name(account.profile)},
        correlation_id=account.id,
    )


def first_name(profile: dict | None) -> str | None:
    """The first name of an account's profile (kept under ``customer``)."""
    return ((profile or {}).get("customer") or {}).get("first_name") or None
