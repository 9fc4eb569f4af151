"""Carriers of the paper certificate, behind one interface (``Carrier``): where a parcel's tracking
is shown, and what its tracking says (``track``: the timeline events and whether, and when, it was
delivered). A carrier gets the recipient's name and shipping address only (``Recipient``: what a
label carries); nothing else of the order leaves.

The first one is La Poste (``LaPoste``: Colissimo, Lettre suivie, Chronopost), through its
tracking API, Suivi v2: ``GET {base}/suivi/v2/idships/{id}?lang=fr_FR`` with the developer key in
``X-Okapi-Key``; the answer's ``shipment`` holds ``event`` (codes such as ``PC1`` taken in charge,
``ET1`` in transit, ``DI1`` delivered, each with a label and a date), ``timeline`` (the five steps
shown to customers, ``status`` true once reached) and, once delivered, ``deliveryDate`` and
``isFinal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

DELIVERED_CODES = ("DI1", "DI3")  # delivered to the addressee (DI2 is back to the sender)
RETURNED_CODES = ("DI2", "RE1")


@dataclass(frozen=True)
class Recipient:
    """What a carrier gets: a name and a shipping address."""

    name: str
    address: dict


@dataclass(frozen=True)
class TrackingEvent:
    code: str
    label: str
    at: datetime | None


@dataclass(frozen=True)
class Tracking:
    events: tuple[TrackingEvent, ...]
    delivered_at: datetime | None = None
    returned: bool = False

    @property
    def delivered(self) -> bool:
        return self.delivered_at is not None

    @property
    def last_label(self) -> str | None:
        return self.events[0].label if self.events else None


class TrackingUnavailable(Exception):
    """The carrier's tracking could not be read now (try again at the next look)."""


class UnknownParcel(TrackingUnavailable):
    """The carrier does not know this tracking number (yet)."""


class Carrier(Protocol):
    codes: tuple[str, ...]

    def tracking_url(self, tracking_number: str) -> str: ...
    def track(self, tracking_number: str) -> Tracking: ...


def _date(text) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


class LaPoste:
    codes = ("colissimo", "lettre_suivie", "chronopost")

    def __init__(self, base_url: str, key: str | None, timeout: float = 10.0, attempts: int = 3):
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.attempts = attempts
        self.session = requests.Session()

    def tracking_url(self, tracking_number: str) -> str:
        return laposte_tracking_url(tracking_number)

    def track(self, tracking_number: str) -> Tracking:
        if not self.key:
            raise TrackingUnavailable("no La Poste key (SUPPLIER_GATEWAY_LAPOSTE_KEY)")
        fetch = retry(
            retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout)),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            reraise=True,
        )(self._get)
        try:
            answer = fetch(tracking_number)
        except requests.RequestException as exc:
            raise TrackingUnavailable(f"{type(exc).__name__}: {exc}") from None
        if answer.status_code == 404:
            raise UnknownParcel(f"La Poste does not know {tracking_number}")
        if answer.status_code != 200:
            raise TrackingUnavailable(f"La Poste answered {answer.status_code}")
        try:
            shipment = answer.json()["shipment"]
        except (ValueError, KeyError, TypeError):
            raise TrackingUnavailable("La Poste's answer has no shipment") from None
        return self.read(shipment)

    def _get(self, tracking_number: str):
        return self.session.get(
            f"{self.base_url}/suivi/v2/idships/{quote(tracking_number, safe='')}",
            params={"lang": "fr_FR"},
            headers={"X-Okapi-Key": self.key, "Accept": "application/json"},
            timeout=(min(3.05, self.timeout), self.timeout),
        )

    @staticmethod
    def read(shipment: dict) -> Tracking:
        """A Suivi v2 ``shipment``: its events, newest first, and whether it was delivered."""
        events = tuple(
            TrackingEvent(str(e.get("code", "")), str(e.get("label", "")), _date(e.get("date")))
            for e in shipment.get("event") or []
            if isinstance(e, dict)
        )
        events = tuple(sorted(events, key=lambda e: e.at or datetime.min, reverse=True))
        delivered = next((e for e in events if e.code in DELIVERED_CODES), None)
        steps = [s for s in shipment.get("timeline") or [] if isinstance(s, dict)]
        last_step = max(steps, key=lambda s: s.get("id", 0), default=None)
        delivered_at = None
        reached_last = bool(last_step and last_step.get("status") is True and len(steps) >= 5)
        if delivered is not None or reached_last:
            delivered_at = (
                _date(shipment.get("deliveryDate"))
                or (delivered.at if delivered else None)
                or _date(last_step.get("date") if last_step else None)
            )
        returned = any(e.code in RETURNED_CODES for e in events)
        return Tracking(events, delivered_at, returned and delivered is None)


def laposte_tracking_url(tracking_number: str) -> str:
    """La Poste's public tracking page of a parcel (Colissimo, Lettre suivie, Chronopost)."""
    return f"https://www.laposte.fr/outils/suivre-vos-envois?code={quote(tracking_number)}"


def tracking_url_of(carrier: str, tracking_number: str) -> str | None:
    return laposte_tracking_url(tracking_number) if carrier in LaPoste.codes else None


def carrier_for(code: str, config) -> Carrier | None:
    """The carrier adapter of carrier ``code``, or None when none speaks to it."""
    if code in LaPoste.codes:
        return LaPoste(config.laposte_url, config.laposte_key, config.http_timeout)
    return None
