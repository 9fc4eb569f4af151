"""The summary of an erasure (``account.deactivated``) is sealed with a key of its own, which
outlives the account's key for this mail only: once the sender has sent it, the key is destroyed,
so no copy of the address left in a queue, a retry queue or a parked message can be opened."""

from __future__ import annotations

import uuid

from coc_notifications.service_layer.sender import Sender
from coc_shared.catalogue import lookup
from coc_shared.envelope import Event
from coc_shared.keystore import own_key_subject
from coc_shared.testing import handle


def summary(account_id: str) -> Event:
    spec = lookup("account.deactivated", 1)
    return Event(
        type="account.deactivated",
        version=1,
        producer=spec.producer,
        correlation_id=account_id,
        subject=account_id,
        data={**spec.example_data, "account_id": account_id},
        personal={"email": f"{account_id[:8]}@example.org", "first_name": "Émilie"},
    )


def test_the_summary_key_is_destroyed_once_the_summary_is_sent(mailer, smtp_server):
    account_id = str(uuid.uuid4())
    subject = own_key_subject("account.deactivated", account_id)
    other = own_key_subject("account.deactivated", str(uuid.uuid4()))
    mailer.keys.keys_for_sealing([subject, other])  # as gdpr made them to seal the summaries
    handle(mailer, summary(account_id))
    assert not mailer.keys.destroyed(subject)  # recorded, not sent yet: still needed

    before = len(smtp_server.stored)
    result = Sender(mailer).send_due()
    assert result.sent >= 1
    assert any(
        f"{account_id[:8]}@example.org" in m.message["To"] for m in smtp_server.stored[before:]
    )
    assert mailer.keys.destroyed(subject)
    assert not mailer.keys.destroyed(other)  # another account's summary, not sent here
