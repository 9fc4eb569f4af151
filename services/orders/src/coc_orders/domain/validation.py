"""The meaning of what a customer sends (no I/O): an order's body and an account's profile are
normalised and checked field by field (``checks``), against the brands we sell; errors come back
by field, nested like the request, with the message shown for each."""

from __future__ import annotations

from datetime import date

import phonenumbers

from . import checks
from .brands import Brand, Brands


def put_error(errors: dict, path: tuple[str, ...], message: str) -> None:
    node = errors
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node.setdefault(path[-1], []).append(message)


def checked(errors: dict, path: tuple[str, ...], func, *args):
    """``func(*args)``, or None with its ValueError's message recorded at ``path``."""
    try:
        return func(*args)
    except ValueError as exc:
        put_error(errors, path, str(exc))
        return None


MISSING = "Missing data for required field."


def refuse_unstorable_text(errors: dict, value, path: tuple[str, ...] = ()) -> None:
    """Records ``checks.UNSTORABLE_TEXT`` at the path of every text (key or value, at any depth)
    that cannot be stored: a lone surrogate or a NUL sent by a client, or kept in a profile saved
    before this check, is a refusal by field, never an error at the database."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = (*path, str(key))
            if isinstance(key, str):
                checked(errors, where, checks.storable_text, key)
            refuse_unstorable_text(errors, item, where)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            refuse_unstorable_text(errors, item, (*path, str(index)))
    elif isinstance(value, str):
        checked(errors, path or ("_schema",), checks.storable_text, value)


def merge_with_profile(body: dict, profile: dict | None, account_email: str | None) -> dict:
    """Fields the body leaves out are filled from the account's saved profile."""
    if not profile and not account_email:
        return body
    profile = profile or {}
    merged = dict(body)
    customer = {k: v for k, v in (profile.get("customer") or {}).items() if v not in (None, "")}
    if account_email:
        customer.setdefault("email", account_email)
    customer.update({k: v for k, v in (body.get("customer") or {}).items() if v not in (None, "")})
    merged["customer"] = customer
    for part in ("shipping_address", "billing_address", "company"):
        if body.get(part) is None and profile.get(part):
            merged[part] = profile[part]
    if "marketing_consent" not in body and "marketing_consent" in profile:
        merged["marketing_consent"] = profile["marketing_consent"]
    return merged


def check_address(errors: dict, path: str, address: dict | None, required: bool) -> dict | None:
    if address is None:
        if required:
            put_error(errors, (path,), MISSING)
        return None
    out = {}
    for name in ("line1", "city", "country"):
        value = " ".join(str(address.get(name) or "").split())
        if not value:
            put_error(errors, (path, name), MISSING)
        out[name] = value
    line2 = " ".join(str(address.get("line2") or "").split())
    if line2:
        out["line2"] = line2
    country = out["country"].upper()
    out["country"] = country
    if country and (
        len(country) != 2 or not country.isalpha() or country not in phonenumbers.SUPPORTED_REGIONS
    ):
        put_error(errors, (path, "country"), "Not a valid ISO 3166 country code.")
    postal = address.get("postal_code")
    if not postal:
        put_error(errors, (path, "postal_code"), MISSING)
    else:
        out["postal_code"] = checked(
            errors, (path, "postal_code"), checks.postal_code, country, str(postal)
        )
    return out


def _check_person(errors: dict, customer: dict) -> dict:
    c = {}
    for name in ("first_name", "last_name"):
        if not customer.get(name):
            put_error(errors, ("customer", name), MISSING)
        else:
            c[name] = checked(errors, ("customer", name), checks.person_name, customer[name])
    if not customer.get("email"):
        put_error(errors, ("customer", "email"), MISSING)
    else:
        c["email"] = checked(errors, ("customer", "email"), checks.email_address, customer["email"])
    return c


def _check_phone(errors: dict, customer: dict, region: str) -> dict:
    """The phone number, read in the shipping address's country unless it has its prefix."""
    if not customer.get("phone"):
        put_error(errors, ("customer", "phone"), MISSING)
        return {}
    return {
        "phone": checked(
            errors,
            ("customer", "phone"),
            checks.phone_e164,
            customer["phone"],
            region if len(region) == 2 else "FR",
        )
    }


def _check_company(errors: dict, company: dict | None) -> dict | None:
    if company is None:
        return None
    co = {}
    name = " ".join(str(company.get("name") or "").split())
    if not name:
        put_error(errors, ("company", "name"), MISSING)
    co["name"] = name
    siren = None
    if company.get("siren"):
        siren = checked(errors, ("company", "siren"), checks.siren, company["siren"])
    if company.get("vat_number"):
        vat = checked(
            errors, ("company", "vat_number"), checks.vat_number, company["vat_number"], siren
        )
        if vat and vat.startswith("FR") and not company.get("siren"):
            siren = vat[4:]  # a valid French VAT number carries the SIREN
        co["vat_number"] = vat
    co["siren"] = siren
    return co


def _check_brand(errors: dict, vehicle: dict, brands: Brands, out: dict) -> Brand | None:
    """The brand the VIN names (sets ``out["vin"]``), or None with the error recorded."""
    if not vehicle.get("vin"):
        if vehicle:
            put_error(errors, ("vehicle", "vin"), MISSING)
        return None
    info = checked(errors, ("vehicle", "vin"), checks.vin, vehicle["vin"])
    if info is None:
        return None
    brand = brands.by_maker(info.maker)
    if brand is None:
        put_error(
            errors,
            ("vehicle", "vin"),
            f"We do not sell certificates for this maker ({info.maker}).",
        )
        return None
    out["vin"] = info.vin
    given = vehicle.get("brand")
    if given and brands.by_name(given) is not brand:
        put_error(
            errors,
            ("vehicle", "brand"),
            f"This VIN belongs to a vehicle of {brand.brand}, not {given}.",
        )
    return brand


def _check_extra(errors: dict, brand: Brand | None, extra: dict) -> dict:
    out: dict = {}
    if brand is None:
        return out
    known = {f.name for f in brand.extra_fields}
    for name in sorted(set(extra) - known):
        put_error(errors, ("vehicle", "extra", name), f"Unknown field for {brand.brand}.")
    for spec in brand.extra_fields:
        message = spec.check(extra.get(spec.name))
        if message:
            put_error(errors, ("vehicle", "extra", spec.name), message)
        elif extra.get(spec.name):
            out[spec.name] = extra[spec.name].strip()
    return out


def _check_vehicle(
    errors: dict, vehicle: dict, brands: Brands, today: date, out: dict
) -> Brand | None:
    if not vehicle:
        put_error(errors, ("vehicle",), MISSING)
    brand = _check_brand(errors, vehicle, brands, out)
    if vehicle:
        when = vehicle.get("first_registration_date")
        if when is None:
            put_error(errors, ("vehicle", "first_registration_date"), MISSING)
        else:
            out["first_registration_date"] = checked(
                errors,
                ("vehicle", "first_registration_date"),
                checks.registration_date,
                when,
                today,
            )
    out["vehicle_extra"] = _check_extra(errors, brand, vehicle.get("extra") or {})
    return brand


def check_order(body: dict, brands: Brands, today: date) -> tuple[dict, dict]:
    """The semantic checks of an order's body (its shape is checked by the HTTP schema).

    Returns (normalised values, with ``brand`` the Brand sold; errors by field)."""
    errors: dict = {}
    refuse_unstorable_text(errors, body)
    out: dict = {
        "payment_method": body.get("payment_method"),
        "marketing_consent": bool(body.get("marketing_consent", False)),
    }
    customer = body.get("customer") or {}
    out["customer"] = _check_person(errors, customer)
    shipping = check_address(
        errors, "shipping_address", body.get("shipping_address"), required=True
    )
    out["customer"].update(_check_phone(errors, customer, (shipping or {}).get("country") or "FR"))
    out["shipping_address"] = shipping
    out["billing_address"] = check_address(
        errors, "billing_address", body.get("billing_address"), required=False
    )
    out["company"] = _check_company(errors, body.get("company"))
    out["brand"] = _check_vehicle(errors, body.get("vehicle") or {}, brands, today, out)
    return out, errors


def check_profile(profile: dict, partial: bool) -> tuple[dict, dict]:
    """Normalised profile and errors. The profile is what fills an order left partly blank."""
    errors: dict = {}
    refuse_unstorable_text(errors, profile)
    out: dict = {}
    customer = profile.get("customer")
    if customer is not None:
        out["customer"] = _check_profile_customer(errors, customer, partial)
    elif not partial:
        put_error(errors, ("customer",), MISSING)
    for part in ("shipping_address", "billing_address"):
        if part in profile:
            out[part] = (
                check_address(errors, part, profile[part], required=False)
                if profile[part]
                else None
            )
    if "company" in profile:
        out["company"] = _check_profile_company(errors, profile["company"])
    if "marketing_consent" in profile:
        out["marketing_consent"] = bool(profile["marketing_consent"])
    return out, errors


def _check_profile_customer(errors: dict, customer: dict, partial: bool) -> dict:
    c = {}
    for name in ("first_name", "last_name"):
        if customer.get(name):
            c[name] = checked(errors, ("customer", name), checks.person_name, customer[name])
        elif not partial:
            put_error(errors, ("customer", name), MISSING)
    if customer.get("phone"):
        c["phone"] = checked(errors, ("customer", "phone"), checks.phone_e164, customer["phone"])
    return c


def _check_profile_company(errors: dict, company: dict | None) -> dict | None:
    if not company:
        return None
    co = {"name": " ".join(str(company.get("name") or "").split())}
    if not co["name"]:
        put_error(errors, ("company", "name"), MISSING)
    siren = (
        checked(errors, ("company", "siren"), checks.siren, company["siren"])
        if company.get("siren")
        else None
    )
    co["siren"] = siren
    if company.get("vat_number"):
        co["vat_number"] = checked(
            errors, ("company", "vat_number"), checks.vat_number, company["vat_number"], siren
        )
    return co
