"""notifications follows the gdpr consent ledger (consent.given / consent.withdrawn): a consent
makes or completes the marketing contact, a withdrawal is final for it (the address forgotten),
and only a consent given after the withdrawal revives it; one arriving late does not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from coc_notifications.adapters import tables
from coc_notifications.domain.model import address_hash, contact_after_consent
from coc_notifications.service import definition
from coc_shared.testing import fresh_example, handle

T0 = datetime(2026, 12, 1, tzinfo=UTC)
T1 = datetime(2026, 12, 2, tzinfo=UTC)
T2 = datetime(2026, 12, 3, tzinfo=UTC)


def test_a_withdrawal_is_final_unless_a_later_consent_is_recorded():
    given = contact_after_consent(None, "A@example.org", "acc", True, "e1", T1)
    assert given.may_receive_marketing and given.email == "a@example.org"
    withdrawn = contact_after_consent(given, "a@example.org", "acc", False, "e2", T2)
    assert not withdrawn.may_receive_marketing and withdrawn.email is None
    assert contact_after_consent(withdrawn, "a@example.org", "acc", True, "e3", T0) is None
    revived = contact_after_consent(
        withdrawn, "a@example.org", "acc", True, "e4", T2.replace(day=4)
    )
    assert revived.may_receive_marketing and revived.address_hash == given.address_hash
    first_withdrawal = contact_after_consent(None, "b@example.org", None, False, "e5", T1)
    assert first_withdrawal.email is None and first_withdrawal.withdrawn_at == T1


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def contact(rt, email):
    t = tables.contacts
    with rt.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.address_hash == address_hash(email))).first()


def test_the_contact_follows_the_ledger_events(runtime):
    email = f"ledger.{uuid.uuid4().hex[:8]}@example.org"
    given = fresh_example("consent.given")
    given.personal = {"email": email}
    handle(runtime, given)
    assert contact(runtime, email).consented_at is not None
    withdrawn = fresh_example("consent.withdrawn")
    withdrawn.personal = {"email": email}
    handle(runtime, withdrawn)
    row = contact(runtime, email)
    assert (row.email, row.withdrawn_at is not None) == (None, True)
