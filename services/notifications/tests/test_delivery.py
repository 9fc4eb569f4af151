"""Delivery on the real broker, database and SMTP server (aiosmtpd): exactly one mail per
(event, template, recipient) under redelivery, 4xx retried, 5xx failed and listed for staff
(resent with a reason, recorded), a server down then up, TLS (STARTTLS with AUTH, implicit TLS),
and no address or name in the logs."""

from __future__ import annotations

import io
import json
import threading
import uuid

import pytest
from mail_helpers import (
    Behaviour,
    SmtpTestServer,
    mail_settings,
    self_signed_certificate,
    server_tls_context,
)
from sqlalchemy import select
from test_mail_templates import ADDRESS, event, placed

from coc_notifications.adapters import tables
from coc_notifications.service import definition
from coc_notifications.service_layer.sender import Sender
from coc_orders.service import definition as orders_definition
from coc_shared.logging import configure_logging
from coc_shared.parking import support_actions
from coc_shared.testing import handle, publish, publish_again, staff_headers, wait_until


def mails_of(rt, source_id: str) -> list[dict]:
    t = tables.mails
    with rt.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).where(t.c.source_id == source_id))]


def test_the_same_event_delivered_twice_makes_one_mail(
    runtime_factory, smtp_server, start_with_producer
):
    rt = runtime_factory(definition, extra=mail_settings(smtp_server.port))
    producer = start_with_producer(rt, orders_definition)  # consumer, relay and sender loop
    first = publish(producer, placed(str(uuid.uuid4())))
    wait_until(lambda: len(smtp_server.stored) == 1, message="the first mail")
    publish_again(producer, first.id)  # the broker delivers the same event once more
    marker = publish(producer, placed(str(uuid.uuid4())))
    wait_until(lambda: len(smtp_server.stored) == 2, message="the mail of the next event")
    assert [r.message_id for r in smtp_server.deliveries].count(
        smtp_server.stored[0].message_id
    ) == 1
    assert len(mails_of(rt, first.id)) == 1 and mails_of(rt, first.id)[0]["status"] == "sent"
    assert mails_of(rt, marker.id)[0]["status"] == "sent"


def test_421_then_250_is_sent_once_after_a_retry(runtime_factory):
    behaviour = Behaviour()
    behaviour.data_answers[ADDRESS] = ["421 4.7.0 Try again later"]
    server = SmtpTestServer(behaviour).start()
    try:
        rt = runtime_factory(definition, extra=mail_settings(server.port))
        e = placed(str(uuid.uuid4()))
        handle(rt, e)
        sender = Sender(rt)
        first = sender.send_due()
        assert (first.sent, first.deferred) == (0, 1)
        (mail,) = mails_of(rt, e.id)
        assert mail["status"] == "pending" and mail["last_answer"].startswith("421 4.7.0")
        assert mail["attempts"] == 1
        assert sender.send_due().claimed == 0  # not before its delay
        wait_until(lambda: sender.send_due().sent == 1, timeout=5, message="the retry")
        (mail,) = mails_of(rt, e.id)
        assert (mail["status"], mail["attempts"]) == ("sent", 2)
        assert len(server.stored) == 1
    finally:
        server.stop()


def test_550_fails_the_mail_lists_it_for_staff_and_the_others_keep_flowing(runtime_factory):
    behaviour = Behaviour(refuse_rcpt={"nobody@example.org": "550 5.1.1 No such user here"})
    server = SmtpTestServer(behaviour).start()
    try:
        rt = runtime_factory(definition, extra=mail_settings(server.port))
        refused = placed(str(uuid.uuid4()))
        refused.personal = {**refused.personal, "email": "nobody@example.org"}
        fine = [placed(str(uuid.uuid4())) for _ in range(3)]
        for e in [refused, *fine]:
            handle(rt, e)
        result = Sender(rt).send_due()
        assert (result.sent, result.failed) == (3, 1)
        assert len(server.stored) == 3
        (mail,) = mails_of(rt, refused.id)
        assert mail["status"] == "failed" and mail["last_answer"] == "550 5.1.1 No such user here"

        client = rt.create_app().test_client()
        listed = client.get("/v1/staff/mails?status=failed", headers=staff_headers())
        assert listed.status_code == 200
        (item,) = [i for i in listed.get_json()["items"] if i["source_id"] == refused.id]
        assert item["last_answer"] == "550 5.1.1 No such user here"
        assert item["template"] == "order_confirmation"
        assert "nobody" not in json.dumps(listed.get_json())  # no address, no body
        by_order = client.get(
            f"/v1/staff/mails?order_id={fine[0].data['order_id']}", headers=staff_headers()
        ).get_json()["items"]
        assert [(i["status"], i["address_masked"]) for i in by_order] == [("sent", "e***@e***.org")]
        assert client.get("/v1/staff/mails?status=lost", headers=staff_headers()).status_code == 422

        # the address is fixed at the provider: staff resend it, with a reason
        behaviour.refuse_rcpt.clear()
        path = f"/v1/staff/mails/{item['id']}/resend"
        assert client.post(path, json={"reason": "x"}).status_code == 401
        assert client.post(path, json={}, headers=staff_headers()).status_code == 422
        answer = client.post(
            path, json={"reason": "mailbox restored by the customer"}, headers=staff_headers()
        )
        assert answer.status_code == 200 and answer.get_json()["status"] == "pending"
        assert (
            client.post(path, json={"reason": "again"}, headers=staff_headers()).status_code == 409
        )
        assert Sender(rt).send_due().sent == 1
        assert len(server.to("nobody@example.org")) == 1
        with rt.engine.connect() as conn:
            action = conn.execute(
                select(support_actions).where(
                    support_actions.c.action == "resend_mail",
                    support_actions.c.target == str(item["id"]),
                )
            ).one()
        assert (action.actor, action.reason) == ("alice", "mailbox restored by the customer")
        assert action.details["previous_answer"] == "550 5.1.1 No such user here"
    finally:
        server.stop()


def test_smtp_down_then_up_sends_each_mail_once(runtime_factory):
    server = SmtpTestServer()  # not started: nothing listens on its port
    rt = runtime_factory(definition, extra=mail_settings(server.port))
    events = [placed(str(uuid.uuid4())) for _ in range(3)]
    for e in events:
        handle(rt, e)
    stop = threading.Event()
    sender = Sender(rt)
    thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: all(
                "unreachable" in (mails_of(rt, e.id)[0]["last_answer"] or "") for e in events
            ),
            message="the mails waiting for the server",
        )
        assert all(mails_of(rt, e.id)[0]["status"] == "pending" for e in events)
        assert all(mails_of(rt, e.id)[0]["attempts"] == 0 for e in events)  # nothing counted
        server.start()
        wait_until(lambda: len(server.stored) == 3, timeout=30, message="the mails once up")
        wait_until(lambda: all(mails_of(rt, e.id)[0]["status"] == "sent" for e in events))
    finally:
        stop.set()
        thread.join(timeout=10)
        if server.controller._thread is not None:
            server.stop()
    assert sorted(r.message_id for r in server.deliveries) == sorted(
        {r.message_id for r in server.deliveries}
    )


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls-auth", "implicit-tls"])
def test_tls_and_authentication(runtime_factory, tmp_path, implicit):
    cert, key = self_signed_certificate(tmp_path)
    server = SmtpTestServer(
        tls_context=server_tls_context(cert, key),
        implicit_tls=implicit,
        credentials=None if implicit else ("coc", "s3cret-password"),
    ).start()
    try:
        extra = mail_settings(
            server.port,
            NOTIFICATIONS_SMTP_SECURITY="tls" if implicit else "starttls",
            NOTIFICATIONS_SMTP_CA_FILE=str(cert),
        )
        if not implicit:
            extra.update(
                NOTIFICATIONS_SMTP_USERNAME="coc", NOTIFICATIONS_SMTP_PASSWORD="s3cret-password"
            )
        rt = runtime_factory(definition, extra=extra)
        for _ in range(2):
            handle(rt, placed(str(uuid.uuid4())))
        sender = Sender(rt)
        assert sender.send_due().sent == 2
        assert sender.transport.connections == 1  # one connection for the batch
        assert len(server.stored) == 2
        assert server.logins == ([] if implicit else ["coc"])

        # a server whose certificate we do not trust is never sent to
        untrusted = runtime_factory(definition, extra={**extra, "NOTIFICATIONS_SMTP_CA_FILE": ""})
        e = placed(str(uuid.uuid4()))
        handle(untrusted, e)
        result = Sender(untrusted).send_due()
        assert result.unreachable and result.sent == 0
        assert "CERTIFICATE_VERIFY_FAILED" in mails_of(untrusted, e.id)[0]["last_answer"]
        assert len(server.stored) == 2
    finally:
        server.stop()


def test_no_address_or_name_in_the_logs(runtime_factory, smtp_server):
    stream = io.StringIO()
    configure_logging("notifications", "DEBUG", stream=stream)
    try:
        rt = runtime_factory(definition, extra=mail_settings(smtp_server.port))
        account = str(uuid.uuid4())
        events = [
            placed(str(uuid.uuid4())),
            event(
                "account.email_change_requested",
                {"account_id": account},
                {"email": "nouvelle.adresse@example.org", "confirmation_url": "https://x/#token=t"},
            ),
            event("account.sign_up_attempted", {"account_id": account}, {"email": ADDRESS}),
        ]
        for e in events:
            handle(rt, e)
        bad = placed(str(uuid.uuid4()))
        bad.personal = {**bad.personal, "email": "refused@example.org"}
        handle(rt, bad)
        smtp_server.behaviour.refuse_rcpt["refused@example.org"] = (
            "550 5.1.1 <refused@example.org>: Recipient address rejected"
        )
        assert Sender(rt).send_due().sent == 3
    finally:
        configure_logging("notifications", "INFO", stream=io.StringIO())
    logged = stream.getvalue()
    assert "mail.sent" in logged and "mail.failed" in logged
    for secret in ("emilie", "Émilie", "nouvelle.adresse", "refused@", "Dupont", "#token=t"):
        assert secret not in logged, secret


def test_the_next_mail_is_composed_while_the_server_takes_in_the_one_before(mailer, smtp_server):
    """Each mail after the first is rendered while the mail before it is in the server's hands
    (its data written, its answer not read yet); every mail is still sent once and marked sent."""
    from coc_notifications.adapters.rendering import Renderer

    steps: list[str] = []

    class Watching(Renderer):
        def render(self, template, locale, context):
            steps.append("render")
            return super().render(template, locale, context)

    events = [placed(str(uuid.uuid4())) for _ in range(3)]
    for e in events:
        handle(mailer, e)
    sender = Sender(mailer, renderer=Watching())
    send = sender.transport.send

    def answered(*args, **kwargs):
        result = send(*args, **kwargs)
        steps.append("answered")
        return result

    sender.transport.send = answered
    result = sender.send_due()
    assert result.sent == 3 and len(smtp_server.stored) == 3
    assert steps == ["render", "render", "answered", "render", "answered", "answered"]
    assert all(mails_of(mailer, e.id)[0]["status"] == "sent" for e in events)
