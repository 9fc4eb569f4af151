"""How values are written in mails, per locale (French only for now: ``fr``; a new locale adds its
words here and its templates under ``templates/<locale>/``). Amounts the French way (``249,00 €``,
with a no-break space before the sign and a narrow no-break space between thousands), dates and
times in Europe/Paris."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
NBSP, NNBSP = "\u00a0", "\u202f"
CURRENCY_SIGNS = {"EUR": "€"}

_MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    )
}
_DOCUMENTS = {
    "fr": {
        "id_card": "votre pièce d'identité (carte d'identité ou passeport)",
        "registration_certificate": "le certificat d'immatriculation (carte grise) du véhicule",
        "purchase_invoice": "la facture d'achat du véhicule",
        "other": "un autre justificatif",
    }
}
_PAYMENT_METHODS = {"fr": {"card": "carte bancaire", "paypal": "PayPal", "transfer": "virement"}}
CARRIERS = {
    "colissimo": ("Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code={number}"),
    "chronopost": (
        "Chronopost",
        "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={number}",
    ),
    "lettre_suivie": ("La Poste", "https://www.laposte.fr/outils/suivre-vos-envois?code={number}"),
    "dhl": ("DHL", "https://www.dhl.com/fr-fr/home/suivi.html?tracking-id={number}"),
    "ups": ("UPS", "https://www.ups.com/track?loc=fr_FR&tracknum={number}"),
}


def format_amount(cents: int | None, currency: str | None = "EUR", locale: str = "fr") -> str:
    """``24900, "EUR"`` -> ``249,00 €``; ``124900`` -> ``1 249,00 €``."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(int(cents)), 100)
    grouped = f"{units:,}".replace(",", NNBSP)
    symbol = CURRENCY_SIGNS.get(currency or "EUR", currency or "")
    return f"{sign}{grouped},{rest:02d}{NBSP}{symbol}"


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def format_datetime(value, locale: str = "fr") -> str:
    """An aware time, as a French reader of Paris reads it: ``4 décembre 2026 à 12 h 20``."""
    moment = _as_datetime(value)
    if moment is None:
        return ""
    if moment.tzinfo is None:
        raise ValueError("a naive time cannot be shown in Europe/Paris")
    local = moment.astimezone(PARIS)
    month = _MONTHS[locale][local.month - 1]
    day = "1er" if local.day == 1 else str(local.day)
    return f"{day}{NBSP}{month} {local.year} à {local.hour}{NBSP}h{NBSP}{local.minute:02d}"


def format_date(value, locale: str = "fr") -> str:
    """A day: ``31 décembre 2036`` (an aware time is taken in Europe/Paris)."""
    if isinstance(value, str):
        moment = _as_datetime(value)
        if moment is None:
            return value
        value = moment
    if isinstance(value, datetime):
        value = value.astimezone(PARIS).date() if value.tzinfo else value.date()
    if not isinstance(value, date):
        return ""
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day}{NBSP}{_MONTHS[locale][value.month - 1]} {value.year}"


def document_label(kind: str, locale: str = "fr") -> str:
    return _DOCUMENTS[locale].get(kind, kind.replace("_", " "))


def payment_method_label(method: str | None, locale: str = "fr") -> str:
    return _PAYMENT_METHODS[locale].get(method or "", method or "")


def carrier_name(carrier: str | None) -> str:
    return CARRIERS.get((carrier or "").lower(), (carrier or "", None))[0]


def tracking_url(carrier: str | None, number: str | None) -> str | None:
    """The carrier's tracking page of a parcel, when the carrier is known."""
    from urllib.parse import quote

    known = CARRIERS.get((carrier or "").lower())
    if known is None or not number:
        return None
    return known[1].format(number=quote(number, safe=""))


_RETAINED = {
    "fr": {
        "invoices": "Vos factures",
        "payments": "Les justificatifs de vos paiements",
        "accounting_records": "Les pièces comptables de vos commandes",
        "certificates": "Les certificats délivrés",
        # orders and the supplier gateway: the order as evidence, no longer linked to the person
        "order_evidence": "Le dossier de vos commandes (véhicule, dates, suivi), sans votre nom",
    }
}


def retained_label(category: str, locale: str = "fr") -> str:
    """What the gdpr service says it keeps (``account.deactivated``'s ``retained``), in words."""
    return _RETAINED[locale].get(category, category.replace("_", " "))
