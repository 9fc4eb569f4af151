"""Customer support in the console in a real browser (Debian's chromium driven by Playwright, as
tests/test_console_browser.py): the failures page's chart of failures per hour, a support record
added from an order's story and shown in its timeline, a GDPR request opened on behalf of the
customer, and an admin's search of orders by e-mail. Screenshots in the test's tmp folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_console_kit import PASSWORD, make_console_stack, new_staff, serve

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser():
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_customer_support_in_a_browser(settings_factory, tmp_path, browser):
    cs = make_console_stack(settings_factory, tmp_path)
    shots = []

    def shot(page, name: str) -> None:
        path = tmp_path / f"support-{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    try:
        servers = []
        base = serve(cs.app, servers)
        cs.servers.extend(servers)
        name, secret = new_staff(cs.console, "admin")
        page = browser.new_page()
        page.goto(base + "/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.click("button[type=submit]")
        chart = page.locator("#failures-per-hour")
        expect(chart).to_contain_text("Messages parked per hour")
        expect(chart.locator("rect.bar")).to_have_count(24)
        shot(page, "failures-chart")

        page.goto(base + f"/orders?q={cs.order_number}")
        page.select_option("#support-record-form select[name=channel]", "phone")
        page.fill("#support-record-form textarea[name=summary]", "asked for the tracking number")
        page.click("#support-record-form button")
        expect(page.locator("#done")).to_contain_text("support record added")
        expect(page.locator("#timeline")).to_contain_text(f"{name}: asked for the tracking number")
        shot(page, "support-record")

        page.select_option("#gdpr-request-form select[name=kind]", "export")
        page.select_option("#gdpr-request-form select[name=channel]", "email")
        page.fill("#gdpr-request-form input[name=verification]", "wrote from the order's address")
        page.click("#gdpr-request-form button")
        expect(page.locator("#done")).to_contain_text("export request")
        shot(page, "gdpr-request")

        page.click("#by-email")
        page.fill("#email-search input[name=email]", "emilie@example.org")
        page.click("#email-search button")
        expect(page.locator("#found-orders")).to_contain_text(cs.order_number)
        shot(page, "orders-by-email")
    finally:
        for path in shots:
            print(f"screenshot: {path}")
        cs.dispose()
