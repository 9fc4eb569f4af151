"""The brands we sell a Certificate of Conformity for: price, VAT, documents, extra fields.

Read from a JSON data file (``coc_orders/brands/brands.json`` unless ORDERS_BRANDS_PATH names
another); prices are in euro cents, VAT included, and are never taken from the client.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "brands" / "brands.json"
DOCUMENT_KINDS = ("id_card", "registration_certificate", "purchase_invoice", "other")


@dataclass(frozen=True)
class ExtraField:
    name: str
    label: str
    pattern: str | None = None
    required: bool = True

    def check(self, value) -> str | None:
        """An error message for ``value``, or None when it is acceptable."""
        if not isinstance(value, str) or not value.strip():
            return "Missing data for required field." if self.required else None
        if len(value) > 200:
            return "Longer than maximum length 200."
        if self.pattern and not re.fullmatch(self.pattern, value.strip()):
            return f"Not a valid {self.label}."
        return None


@dataclass(frozen=True)
class Brand:
    brand: str
    makers: tuple[str, ...]
    price_cents: int
    vat_rate: str
    documents_required: tuple[str, ...]
    extra_fields: tuple[ExtraField, ...] = ()
    currency: str = "EUR"

    @property
    def vat_cents(self) -> int:
        """The VAT included in the price (rounded to the cent)."""
        rate = Decimal(self.vat_rate) / 100
        net = (Decimal(self.price_cents) / (1 + rate)).quantize(Decimal("1"))
        return self.price_cents - int(net)


@dataclass
class Brands:
    """The brands we sell, by name."""

    brands: dict[str, Brand] = field(default_factory=dict)

    def by_maker(self, maker: str | None) -> Brand | None:
        for brand in self.brands.values():
            if maker in brand.makers:
                return brand
        return None

    def by_name(self, name: str | None) -> Brand | None:
        if not name:
            return None
        wanted = _fold(name)
        for brand in self.brands.values():
            if _fold(brand.brand) == wanted or any(_fold(m) == wanted for m in brand.makers):
                return brand
        return None


def _fold(value: str) -> str:
    import unicodedata

    value = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in value if c.isalnum())


def parse_brands(document: dict) -> Brands:
    default_docs = tuple(
        document.get("default_documents_required") or ("id_card", "registration_certificate")
    )
    currency = document.get("currency", "EUR")
    brands = {}
    for entry in document["brands"]:
        docs = tuple(entry.get("documents_required") or default_docs)
        unknown = set(docs) - set(DOCUMENT_KINDS)
        if unknown:
            raise ValueError(f"{entry['brand']}: unknown document kinds {sorted(unknown)}")
        price = int(entry["price_cents"])
        if price < 0:
            raise ValueError(f"{entry['brand']}: negative price")
        Decimal(str(entry["vat_rate"]))
        brands[entry["brand"]] = Brand(
            brand=entry["brand"],
            makers=tuple(entry["makers"]),
            price_cents=price,
            vat_rate=str(entry["vat_rate"]),
            documents_required=docs,
            currency=currency,
            extra_fields=tuple(
                ExtraField(
                    name=f["name"],
                    label=f.get("label", f["name"]),
                    pattern=f.get("pattern"),
                    required=bool(f.get("required", True)),
                )
                for f in entry.get("extra_fields", ())
            ),
        )
    return Brands(brands)


def load_brands(path: str | Path | None = None) -> Brands:
    with open(path or DEFAULT_PATH, encoding="utf-8") as f:
        return parse_brands(json.load(f))
