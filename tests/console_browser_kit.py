"""What the console's browser tests share (the ``browser`` fixture is in tests/conftest.py): a
staff member's log-in with the TOTP code, and numbered screenshots in the test's tmp folder,
their paths printed at the end."""

from __future__ import annotations

from pathlib import Path

import pyotp
from test_console_kit import PASSWORD


class Screenshots:
    """``shot(page, name)`` saves ``<prefix>-01-<name>.png``, ``-02-`` … under ``folder``."""

    def __init__(self, folder: Path, prefix: str):
        self.folder, self.prefix, self.paths = folder, prefix, []

    def __call__(self, page, name: str) -> None:
        path = self.folder / f"{self.prefix}-{len(self.paths) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.paths.append(path)

    def print_paths(self) -> None:
        for path in self.paths:
            print(f"screenshot: {path}")


def fill_log_in(page, base: str, name: str, secret: str) -> None:
    """The log-in form filled with the password and the authenticator's code, not sent yet."""
    page.goto(base + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", pyotp.TOTP(secret).now())


def log_in(page, base: str, name: str, secret: str) -> None:
    fill_log_in(page, base, name, secret)
    page.click("button[type=submit]")
