"""account.data_export_ready: the download link is mailed to the address the event carries, for
an account or for a guest's order (no account)."""

from __future__ import annotations

import pytest

from coc_notifications.domain.model import Mail
from coc_shared.errors import InvalidEvent

PERSONAL = {"email": "emilie@example.org", "download_url": "https://coc.example/x#token=t"}


def test_a_guest_export_is_mailed_to_the_order_address():
    data = {"account_id": None, "order_id": "o-1", "expires_at": "2026-12-08T10:00:00+00:00"}
    mail = Mail.for_event("e1", "account.data_export_ready", data, PERSONAL)
    assert (mail.template, mail.recipient_key, mail.order_id, mail.account_id) == (
        "data_export_ready",
        "order:o-1",
        "o-1",
        None,
    )
    assert (mail.to_address, mail.secret_url) == (PERSONAL["email"], PERSONAL["download_url"])


def test_an_account_export_is_mailed_to_the_account_address():
    data = {"account_id": "a-1", "expires_at": "2026-12-08T10:00:00+00:00"}
    mail = Mail.for_event("e2", "account.data_export_ready", data, PERSONAL)
    assert (mail.recipient_key, mail.to_address) == ("account:a-1", PERSONAL["email"])


def test_an_export_naming_neither_is_refused():
    with pytest.raises(InvalidEvent):
        Mail.for_event(
            "e3", "account.data_export_ready", {"expires_at": "2026-12-08T10:00:00+00:00"}, PERSONAL
        )
