"""Customer support in the console in a real browser (Debian's chromium driven by Playwright, as
tests/test_console_browser.py): the failures page's chart of failures per hour, a support record
added from an order's story and shown in its timeline, a GDPR request opened on behalf of the
customer, and an admin's search of orders by e-mail. Screenshots in the test's tmp folder."""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_browser_kit import Screenshots, log_in
from test_console_kit import make_console_stack, new_staff, serve


def test_customer_support_in_a_browser(settings_factory, tmp_path, browser):
    cs = make_console_stack(settings_factory, tmp_path)
    shot = Screenshots(tmp_path, "support")

    try:
        servers = []
        base = serve(cs.app, servers)
        cs.servers.extend(servers)
        name, secret = new_staff(cs.console, "admin")
        page = browser.new_page()
        log_in(page, base, name, secret)
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
        shot.print_paths()
        cs.dispose()
