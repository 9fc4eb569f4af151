"""Fixtures of the cross-service tests."""

import copy
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"  # Debian's (installed by .ci/run); never `playwright install`

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


@pytest.fixture
def browser():
    """Headless chromium driven by Playwright, for the console's browser tests."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()
