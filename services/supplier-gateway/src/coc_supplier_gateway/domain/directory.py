"""The directory of the makers' COC suppliers, as data: which supplier serves which makers and
brands, how it is reached (``amqp``: its queue on our broker; ``http``: a JSON POST to its
endpoint), what it needs (vehicle fields, the brand's extra fields, document kinds, the customer's
name, the shipping address), the turnaround it promises, and whether it ships the certificate to
the customer itself (else this company does).

It is a JSON file (``directory/suppliers.json`` in the package, or SUPPLIER_GATEWAY_DIRECTORY_PATH)
checked at start: ``DirectoryError`` names every problem. A vehicle's supplier is found by the
maker vininfo reads from its VIN, else by the brand of the order (names compared without case,
accents or punctuation); none found means the request goes to the staff's review list.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "directory" / "suppliers.json"
CHANNELS = ("amqp", "http")
VEHICLE_FIELDS = ("vin", "brand", "first_registration_date")
DOCUMENT_KINDS = ("id_card", "registration_certificate", "purchase_invoice", "other")
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class DirectoryError(ValueError):
    """The directory cannot be used (every problem is in the message)."""


@dataclass(frozen=True)
class Needs:
    vehicle: tuple[str, ...]
    extra: tuple[str, ...]
    documents: tuple[str, ...]
    customer_name: bool
    shipping_address: bool


@dataclass(frozen=True)
class Supplier:
    code: str
    name: str
    makers: tuple[str, ...]
    brands: tuple[str, ...]
    channel: str
    needs: Needs
    turnaround_hours: float
    ships_to_customer: bool
    endpoint: str | None = None
    key_version: int = 1


def fold(name: str | None) -> str:
    """A name compared without case, accents or punctuation (``Škoda`` == ``skoda``)."""
    value = unicodedata.normalize("NFKD", (name or "").casefold())
    return "".join(c for c in value if c.isalnum())


@dataclass(frozen=True)
class Directory:
    suppliers: tuple[Supplier, ...]

    def get(self, code: str | None) -> Supplier | None:
        return next((s for s in self.suppliers if s.code == code), None)

    @property
    def codes(self) -> list[str]:
        return [s.code for s in self.suppliers]

    def codes_of(self, channel: str) -> list[str]:
        return [s.code for s in self.suppliers if s.channel == channel]

    def for_vehicle(self, maker: str | None, brand: str | None) -> Supplier | None:
        """The supplier of the maker read from the VIN, else of the order's brand."""
        if maker:
            wanted = fold(maker)
            for supplier in self.suppliers:
                if any(fold(m) == wanted for m in supplier.makers):
                    return supplier
        if brand:
            wanted = fold(brand)
            for supplier in self.suppliers:
                if any(fold(b) == wanted for b in supplier.brands):
                    return supplier
        return None


def _strings(value, where: str, problems: list[str], allowed=None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{where}: expected a list of names")
        return ()
    if allowed is not None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            problems.append(f"{where}: unknown {unknown} (known: {', '.join(allowed)})")
    return tuple(v.strip() for v in value)


def _supplier(entry, i: int, problems: list[str]) -> Supplier | None:  # noqa: C901 (one check a line)
    if not isinstance(entry, dict):
        problems.append(f"suppliers[{i}]: expected an object")
        return None
    code = entry.get("code")
    where = f"supplier {code!r}" if isinstance(code, str) else f"suppliers[{i}]"
    before = len(problems)
    if not isinstance(code, str) or not CODE.match(code) or code == "gateway":
        problems.append(
            f"{where}: code must be lower-case letters, digits and - (not 'gateway'), e.g. psa-coc"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: name is missing")
    makers = _strings(entry.get("makers", []), f"{where}: makers", problems)
    brands = _strings(entry.get("brands", []), f"{where}: brands", problems)
    if not makers and not brands:
        problems.append(f"{where}: serves no maker or brand")
    channel = entry.get("channel")
    if channel not in CHANNELS:
        problems.append(f"{where}: channel must be one of {', '.join(CHANNELS)}")
    endpoint = entry.get("endpoint")
    if channel == "http" and not (
        isinstance(endpoint, str) and re.match(r"^https?://[^\s/]+", endpoint)
    ):
        problems.append(f"{where}: an http supplier needs its endpoint (an http(s) URL)")
    needs = entry.get("needs")
    if not isinstance(needs, dict):
        problems.append(f"{where}: needs is missing")
        needs = {}
    vehicle = _strings(
        needs.get("vehicle", []), f"{where}: needs.vehicle", problems, VEHICLE_FIELDS
    )
    extra = _strings(needs.get("extra", []), f"{where}: needs.extra", problems)
    documents = _strings(
        needs.get("documents", []), f"{where}: needs.documents", problems, DOCUMENT_KINDS
    )
    flags = {}
    for flag in ("customer_name", "shipping_address"):
        flags[flag] = needs.get(flag, False)
        if not isinstance(flags[flag], bool):
            problems.append(f"{where}: needs.{flag} must be true or false")
    turnaround = entry.get("turnaround_hours")
    if (
        not isinstance(turnaround, (int, float))
        or isinstance(turnaround, bool)
        or not 0 < turnaround <= 24 * 90
    ):
        problems.append(f"{where}: turnaround_hours must be a number of hours (0 to 2160)")
    ships = entry.get("ships_to_customer")
    if not isinstance(ships, bool):
        problems.append(f"{where}: ships_to_customer must be true or false")
    elif ships and not (flags["customer_name"] and flags["shipping_address"]):
        problems.append(
            f"{where}: a supplier that ships to the customer needs the customer's name and the "
            "shipping address"
        )
    key_version = entry.get("key_version", 1)
    if not isinstance(key_version, int) or isinstance(key_version, bool) or key_version < 1:
        problems.append(f"{where}: key_version must be a whole number from 1")
    if len(problems) > before:
        return None
    return Supplier(
        code=code,
        name=name.strip(),
        makers=makers,
        brands=brands,
        channel=channel,
        endpoint=endpoint if channel == "http" else None,
        needs=Needs(vehicle, extra, documents, flags["customer_name"], flags["shipping_address"]),
        turnaround_hours=float(turnaround),
        ships_to_customer=ships,
        key_version=key_version,
    )


def parse_directory(document) -> Directory:
    """The directory of ``document`` (the JSON file's content); DirectoryError names every
    problem."""
    problems: list[str] = []
    entries = document.get("suppliers") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DirectoryError('expected {"suppliers": [ … ]} with at least one supplier')
    suppliers = [_supplier(entry, i, problems) for i, entry in enumerate(entries)]
    found = [s for s in suppliers if s is not None]
    seen: dict[str, str] = {}
    for supplier in found:
        if supplier.code in seen:
            problems.append(f"supplier {supplier.code!r}: the code is used twice")
        seen[supplier.code] = supplier.code
    for kind, names in (("maker", "makers"), ("brand", "brands")):
        owner: dict[str, str] = {}
        for supplier in found:
            for value in getattr(supplier, names):
                other = owner.setdefault(fold(value), supplier.code)
                if other != supplier.code:
                    problems.append(
                        f"{kind} {value!r} is served by both {other!r} and {supplier.code!r}"
                    )
    if problems:
        raise DirectoryError("; ".join(problems))
    return Directory(tuple(found))


def load_directory(path: str | Path | None = None) -> Directory:
    try:
        with open(path or DEFAULT_PATH, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as exc:
        raise DirectoryError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise DirectoryError(f"{path} is not JSON: {exc}") from None
    return parse_directory(document)
