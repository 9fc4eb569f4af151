"""Fixtures of the cross-service tests."""

import copy

import pytest

STOREFRONT_ORDER = {
    "customer": {
        "first_name": "Émilie",
        "last_name": "Dupont-Lefèvre",
        "email": "emilie@example.org",
        "phone": "06 12 34 56 78",
    },
    "shipping_address": {
        "line1": "1 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    },
    "vehicle": {"vin": "VF3ABCDEF12345678", "first_registration_date": "2019-05-14"},
    "payment_method": "transfer",
}


@pytest.fixture
def storefront_order() -> dict:
    """A valid body of POST /v1/orders, as the storefront sends it."""
    return copy.deepcopy(STOREFRONT_ORDER)
