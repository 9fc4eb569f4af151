"""The support console in a real browser: Debian's chromium (``/usr/bin/chromium``, installed by
.ci/run when missing; never ``playwright install``) driven by Playwright for Python, headless.
An admin logs in with a TOTP code, finds an order by its number and sees its timeline, reveals a
parked message's masked personal part (with a reason, recorded), discards a parked message with a
reason, and finds both in the audit log. Screenshots go to the test's tmp folder (paths printed)."""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_browser_kit import Screenshots, fill_log_in, log_in
from test_console_kit import (
    CUSTOMER_EMAIL,
    consuming,
    make_console_stack,
    new_staff,
    park_replay_group,
    serve,
)

from coc_console.domain.model import MASK


def test_support_work_in_a_browser(settings_factory, tmp_path, browser):
    cs = make_console_stack(settings_factory, tmp_path)
    shot = Screenshots(tmp_path, "console")

    try:
        servers = []
        base = serve(cs.app, servers)
        cs.servers.extend(servers)
        name, secret = new_staff(cs.console, "admin")
        page = browser.new_page()

        # log in with the password and the authenticator's code
        fill_log_in(page, base, name, secret)
        shot(page, "login")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Failed messages")
        expect(page.locator("#groups")).to_contain_text(cs.error_type)
        shot(page, "failures-grouped")

        # one order's story, found by its number
        page.click("text=Order story")
        page.fill("input[name=q]", cs.order_number)
        page.click("button:has-text('Find')")
        expect(page.locator("#order h2")).to_contain_text(cs.order_number)
        expect(page.locator("#timeline")).to_contain_text("order.placed")
        expect(page.locator("#timeline")).to_contain_text("parked order.placed")
        shot(page, "order-story")

        # a parked message: masked, then revealed with a reason
        page.click("text=Failed messages")
        page.click(f"#groups tr:has-text('{cs.error_type}') a")
        page.locator("#messages a").first.click()
        expect(page.locator("#body")).to_contain_text(MASK)
        expect(page.locator("#body")).not_to_contain_text(CUSTOMER_EMAIL)
        shot(page, "message-masked")
        page.fill("#reveal-form input[name=reason]", "customer asked which address we hold")
        page.click("#reveal-form button")
        expect(page.locator("#revealed")).to_be_visible()
        expect(page.locator("#body")).to_contain_text(CUSTOMER_EMAIL)
        shot(page, "message-revealed")

        # discard it with a reason
        page.fill("#discard-form input[name=reason]", "duplicate of an order handled by hand")
        page.click("#discard-form button")
        expect(page.locator("#done")).to_contain_text("discarded payments")
        shot(page, "after-discard")

        # the audit log: both actions, with who and why; filtered to the reveals
        page.click("text=Audit log")
        audit = page.locator("#audit")
        expect(audit).to_contain_text("customer asked which address we hold")
        expect(audit).to_contain_text("duplicate of an order handled by hand")
        page.select_option("select[name=action]", "reveal")
        page.click("button:has-text('Filter')")
        expect(page.locator("#audit")).to_contain_text("reveal")
        expect(page.locator("#audit")).not_to_contain_text("duplicate of an order")
        shot(page, "audit-log")
    finally:
        shot.print_paths()
        cs.dispose()

    discarded = [
        i
        for i in cs.stack.client("payments")
        .get("/v1/staff/parked?status=discarded&limit=1000", headers=cs.stack.staff)
        .get_json()["items"]
        if i["error_type"] == cs.error_type
    ]
    assert len(discarded) == 1  # through payments' staff API, by the admin in the browser


def test_safe_replay_in_a_browser(settings_factory, tmp_path, browser):
    """A support member dries a group of parked messages (they would fail again), replays it
    progressively anyway: the first batch fails again and the replay stops by itself; then a group
    whose fix works is replayed in full. Both runs and their outcomes are in the audit log."""
    cs = make_console_stack(settings_factory, tmp_path)
    failing_error, failing = park_replay_group(cs, 12, known_order=False)
    working_error, working = park_replay_group(cs, 15, known_order=True)
    shot = Screenshots(tmp_path, "replay")

    try:
        servers = []
        base = serve(cs.app, servers)
        cs.servers.extend(servers)
        name, secret = new_staff(cs.console, "support")
        page = browser.new_page()
        log_in(page, base, name, secret)
        expect(page.locator("h1")).to_have_text("Failed messages")

        with consuming(cs.stack.runtimes["orders"]):
            # the dry run: every message would fail again, and why
            page.click(f"#groups tr:has-text('{failing_error}') a")
            page.click("#dry-run-form button")
            expect(page.locator("#would-fail")).to_have_text("12 would fail again")
            expect(page.locator("#dry-run-errors")).to_contain_text("unknown order")
            shot(page, "dry-run-would-fail")
            # replayed anyway: the first batch (one message) fails again, the run stops by itself
            page.fill("#replay-form input[name=reason]", "supplier says the ids are fixed")
            page.click("#replay-form button")
            expect(page.locator("#run-status")).to_contain_text("stopped", timeout=60_000)
            expect(page.locator("#run-status")).to_contain_text("failed again")
            expect(page.locator("#run-replayed")).to_contain_text("1 of 12")
            expect(page.locator("#failed-again")).to_contain_text("PermanentError")
            shot(page, "replay-stopped")

            # a group whose fix works: dried, then replayed in full (1, 10, then 4)
            page.click("text=Failed messages")
            page.click(f"#groups tr:has-text('{working_error}') a")
            page.click("#dry-run-form button")
            expect(page.locator("#would-succeed")).to_have_text("15 would succeed")
            shot(page, "dry-run-would-succeed")
            page.fill("#replay-form input[name=reason]", "the order was restored")
            page.click("#replay-form button")
            expect(page.locator("#run-status")).to_contain_text("completed", timeout=60_000)
            expect(page.locator("#run-replayed")).to_contain_text("15 of 15 (15 handled)")
            expect(page.locator("#batches tbody tr")).to_have_count(3)
            shot(page, "replay-completed")

        page.click("text=Audit log")
        audit = page.locator("#audit")
        expect(audit).to_contain_text("supplier says the ids are fixed")
        expect(audit).to_contain_text("the order was restored")
        expect(audit).to_contain_text("replay_outcome")
        shot(page, "replay-audit-log")
    finally:
        shot.print_paths()
        cs.dispose()

    statuses = {
        i["id"]: i["status"]
        for status in ("parked", "replayed")
        for i in cs.stack.client("orders")
        .get(f"/v1/staff/parked?status={status}&limit=1000", headers=cs.stack.staff)
        .get_json()["items"]
    }
    assert [statuses[p] for p, _ in failing] == ["replayed"] + ["parked"] * 11
    assert {statuses[p] for p, _ in working} == {"replayed"}
