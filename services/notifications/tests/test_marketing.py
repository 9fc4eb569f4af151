"""Marketing only with consent: the contacts fed by order.placed's marketing_consent, a campaign
to the consenting ones at a limited rate with List-Unsubscribe and List-Unsubscribe-Post
(RFC 8058), the signed one-click unsubscribe (immediate, permanent, emits marketing.unsubscribed,
which the gdpr service records), a tampered token refused."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from mail_helpers import PUBLIC, CheckedRenderer, mail_settings, parts
from sqlalchemy import select
from test_mail_templates import placed

from coc_gdpr.adapters import tables as gdpr_tables
from coc_gdpr.service import definition as gdpr_definition
from coc_notifications.adapters import tables
from coc_notifications.service import definition
from coc_notifications.service_layer import marketing
from coc_notifications.service_layer.sender import Sender
from coc_shared.envelope import Event
from coc_shared.parking import support_actions
from coc_shared.testing import handle, staff_token, wait_until


def customer(rt, consent: bool, email: str | None = None, account_id: str | None = None) -> str:
    email = email or f"client.{uuid.uuid4().hex[:8]}@example.org"
    e = placed(str(uuid.uuid4()), marketing_consent=consent, account_id=account_id)
    e.personal = {**e.personal, "email": email}
    handle(rt, e)
    return email


def contact(rt, email: str):
    t = tables.contacts
    from coc_notifications.domain.model import address_hash

    with rt.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.address_hash == address_hash(email))).first()


def newsletters(server, email: str) -> list:
    return [r for r in server.to(email) if "Immatriculer" in r.message["Subject"]]


def send_all(rt) -> None:
    sender = Sender(rt, renderer=CheckedRenderer())
    while sender.send_due().claimed:
        pass


@pytest.fixture
def rt(mailer):
    return mailer


def test_a_campaign_goes_only_to_consenting_contacts_with_one_click_unsubscribe(rt, smtp_server):
    yes, no = customer(rt, True), customer(rt, False)
    assert contact(rt, yes).consented_at is not None and contact(rt, no) is None
    campaign = marketing.start_campaign(rt, "newsletter", per_second=50, staff="alice")
    assert campaign.recipients >= 1
    t = tables.mails
    with rt.engine.connect() as conn:
        slots = (
            conn.execute(
                select(t.c.next_attempt_at)
                .where(t.c.campaign_id == campaign.id)
                .order_by(t.c.next_attempt_at)
            )
            .scalars()
            .all()
        )
    gaps = {round((b - a).total_seconds(), 3) for a, b in zip(slots, slots[1:])}
    assert all(gap >= 0.02 for gap in gaps)  # 50 per second at most
    wait_until(lambda: send_all(rt) or newsletters(smtp_server, yes), timeout=10)
    assert newsletters(smtp_server, no) == []
    (mail,) = newsletters(smtp_server, yes)
    message = mail.message
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{PUBLIC}/v1/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] is None
    plain, html = parts(message)
    assert link in plain and f'href="{link}"' in html
    assert "commande COC-" not in plain  # nothing of an order in a marketing mail

    client = rt.create_app().test_client()
    path = link[len(PUBLIC) :]
    token = path.rsplit("/", 1)[1]
    page = client.get(path)  # a person (or a link scanner) opening it withdraws nothing
    assert page.status_code == 200 and '<form method="post">' in page.get_data(as_text=True)
    assert contact(rt, yes).withdrawn_at is None
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "x" + token, "nonsense"):
        refused = client.post(
            f"/v1/unsubscribe/{bad}",
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert refused.status_code == 400, bad
    assert contact(rt, yes).withdrawn_at is None

    one_click = client.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert one_click.status_code == 200
    withdrawn = contact(rt, yes)
    assert withdrawn.withdrawn_at is not None and withdrawn.email is None  # immediate
    with rt.engine.connect() as conn:
        (body,) = conn.execute(
            select(rt.outbox.c.body).where(
                rt.outbox.c.event_type == "marketing.unsubscribed",
                rt.outbox.c.subject == withdrawn.id,
            )
        ).scalars()
    emitted = Event.from_json(body)
    assert emitted.personal is None and bytes(yes, "utf-8") not in bytes(body)  # sealed
    rt.keys.unseal_event(emitted)
    assert emitted.personal == {"email": yes} and emitted.data["purpose"] == "marketing_email"
    assert (
        client.post(
            path,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        ).status_code
        == 200
    )

    # permanent: a later order ticking the box again does not bring the address back, and the
    # next campaign does not write to it
    customer(rt, True, email=yes)
    assert contact(rt, yes).withdrawn_at is not None
    marketing.start_campaign(rt, "newsletter", per_second=50, staff="alice")
    send_all(rt)
    assert len(newsletters(smtp_server, yes)) == 1


def test_a_consent_withdrawn_after_the_campaign_started_gets_no_mail(rt, smtp_server):
    from mail_helpers import UNSUBSCRIBE_SECRET

    from coc_notifications.domain.unsubscribe import unsubscribe_token

    email = customer(rt, True)
    marketing.start_campaign(rt, "newsletter", per_second=50, staff="alice")
    assert marketing.unsubscribe(rt, unsubscribe_token(UNSUBSCRIBE_SECRET, contact(rt, email).id))
    send_all(rt)
    assert newsletters(smtp_server, email) == []


def test_the_campaign_command_needs_an_admin_and_is_recorded(rt, monkeypatch, capsys):
    customer(rt, True)
    command = definition.commands["campaign"]
    args = ["--template", "newsletter", "--rate", "10", "--reason", "December news"]
    monkeypatch.setenv("STAFF_TOKEN", staff_token("bob", "support"))
    assert command(rt, args) == 2
    monkeypatch.setenv("STAFF_TOKEN", staff_token("carol", "admin"))
    assert command(rt, args) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{\n") :])
    assert summary["recipients"] >= 1 and summary["per_second"] == 10
    with rt.engine.connect() as conn:
        action = conn.execute(
            select(support_actions).where(support_actions.c.target == summary["campaign_id"])
        ).one()
    assert (action.actor, action.action, action.reason) == (
        "carol",
        "start_campaign",
        "December news",
    )
    with pytest.raises(marketing.CampaignRefused):
        marketing.start_campaign(rt, "order_confirmation", 10, "carol")


def test_the_gdpr_service_records_the_withdrawal_from_the_broker(runtime_factory, smtp_server):
    from mail_helpers import UNSUBSCRIBE_SECRET

    from coc_notifications.domain.unsubscribe import unsubscribe_token

    notifications = runtime_factory(definition, extra=mail_settings(smtp_server.port))
    gdpr = runtime_factory(gdpr_definition)
    account = str(uuid.uuid4())
    email = customer(notifications, True, account_id=account)
    gdpr.declare_topology()
    stop = threading.Event()
    threads = gdpr.start_worker_threads(stop) + notifications.start_worker_threads(
        stop, consume=False, loops=False
    )
    try:
        token = unsubscribe_token(UNSUBSCRIBE_SECRET, contact(notifications, email).id)
        assert marketing.unsubscribe(notifications, token)
        t = gdpr_tables.marketing_consents

        def recorded():
            with gdpr.engine.connect() as conn:
                return conn.execute(select(t).where(t.c.account_id == account)).first()

        row = wait_until(recorded, message="the withdrawal recorded by gdpr")
        assert (row.status, row.purpose, row.source) == (
            "withdrawn",
            "marketing_email",
            "one_click",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
