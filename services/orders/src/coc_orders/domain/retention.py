"""How long the orders service keeps what a deactivated account leaves behind (pure rules)."""

from __future__ import annotations

from datetime import date, datetime

ORDER_EVIDENCE = "order_evidence"  # the vehicle, dates and amounts of an order, with no person
ORDER_EVIDENCE_BASIS = "Code de commerce L110-4; GDPR 17(3)(e)"
EVIDENCE_YEARS = 5


def evidence_kept_until(last_order_placed_at: datetime) -> date:
    """Five years after the account's last order (the commercial limitation period)."""
    day = last_order_placed_at.date()
    try:
        return day.replace(year=day.year + EVIDENCE_YEARS)
    except ValueError:  # 29 February
        return day.replace(year=day.year + EVIDENCE_YEARS, day=28)
