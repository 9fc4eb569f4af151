"""The sender: the worker loop (``ServiceDefinition.loops``) that delivers what handlers recorded.

One pass is one unit of work: claim up to ``NOTIFICATIONS_SEND_BATCH_SIZE`` due mails (``FOR UPDATE
SKIP LOCKED``: several senders share the work, none sends a mail another holds), find each one's
recipient (the account event's own, the order's from ``order.placed``, the contact's for
marketing), render it, send it on the one SMTP connection, and register the outcome; the commit
marks them all (one UPDATE for the batch, through the unit of work). Each mail is composed while
the server takes in the one before it (between that one's data and its answer). A crash after the
server accepted a mail and before that commit leaves the mail pending: it is sent again, as the
same message (its Message-ID comes from the event), which the server or the mail client
de-duplicates.

A 4xx answer defers that mail alone (``NOTIFICATIONS_SMTP_RETRY_DELAYS``), a 5xx fails it with the
server's answer (listed for staff): the other mails of the batch go on. While the server cannot be
reached, the batch waits and the loop backs off; nothing fails for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from coc_shared.db import is_infrastructure_error
from coc_shared.envelope import utcnow
from coc_shared.keystore import own_key_subject
from coc_shared.logging import bound_log_fields, get_logger
from coc_shared.transfer import creditor_reference, format_iban, format_reference

from ..adapters.rendering import Renderer, build_message
from ..adapters.repository import ContactRepository, MailRepository, RecipientRepository
from ..adapters.smtp import PERMANENT, SENT, TEMPORARY, UNREACHABLE, SendResult, SmtpTransport
from ..domain.formatting import tracking_url
from ..domain.model import DROPPED, FAILED, Mail, OrderRecipient
from ..domain.model import SENT as MAIL_SENT
from ..domain.unsubscribe import unsubscribe_token

log = get_logger(__name__)


class NotReady(Exception):
    """A mail cannot be rendered yet (its recipient is not known, a setting is missing)."""


class Drop(Exception):
    """A mail must not be sent (consent withdrawn, recipient erased)."""


@dataclass(frozen=True)
class _Composed:
    """A mail ready to send (its message), or why it is not sent now, or the error composing it."""

    address: str | None = None
    message_id: str | None = None
    message: bytes | None = None
    why: Exception | None = None
    error: Exception | None = None


@dataclass
class PassResult:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    dropped: int = 0
    unreachable: bool = False


SUMMARY = "account.deactivated"  # the summary of an erasure, sealed with a key of its own
FINAL = (MAIL_SENT, FAILED, DROPPED)


class Sender:
    def __init__(self, runtime, transport: SmtpTransport | None = None, renderer=None):
        self.runtime = runtime
        self.config = runtime.config
        self.transport = transport or SmtpTransport.from_config(self.config)
        self.renderer = renderer or Renderer()
        self._warned_no_sender = False

    # the loop
    def run(self, stop: threading.Event) -> None:
        """Send until ``stop``: at once again after a full batch, else after the poll interval;
        backing off (up to the last retry delay, 60 s at most) while the server or the database
        cannot be reached."""
        wait_unreachable = 0.5
        log.info("sender.started", batch_size=self.config.batch_size)
        try:
            while not stop.is_set():
                try:
                    result = self.send_due()
                    self.erase_expired_recipients()
                except Exception as exc:
                    if not is_infrastructure_error(exc):
                        log.exception("sender.pass_failed", error_type=type(exc).__name__)
                    else:
                        log.warning("sender.database_unavailable", error_type=type(exc).__name__)
                    self.transport.close()
                    stop.wait(1.0)
                    continue
                if result.unreachable:
                    stop.wait(wait_unreachable)
                    wait_unreachable = min(
                        wait_unreachable * 2, 60.0, max(self.config.retry_delays)
                    )
                    continue
                wait_unreachable = 0.5
                if result.claimed < self.config.batch_size:
                    if result.claimed == 0:
                        self.transport.close()  # idle: no connection held open
                    stop.wait(self.config.poll_seconds)
        finally:
            self.transport.close()
            log.info("sender.stopped")

    # one pass
    def send_due(self, now: datetime | None = None) -> PassResult:
        result = PassResult()
        sender = self.config.sender
        if sender is None:
            if not self._warned_no_sender:
                log.error("sender.not_configured", missing="NOTIFICATIONS_MAIL_FROM")
                self._warned_no_sender = True
            return result
        now = now or utcnow()
        summaries_done: list[str] = []
        with self.runtime.unit_of_work() as uow:
            mails = MailRepository(uow)
            batch = mails.claim_due(now, self.config.batch_size)
            result.claimed = len(batch)
            contacts = ContactRepository(uow)
            # the recipients of the batch's order mails, in one query
            recipients = RecipientRepository(uow).get_many(
                sorted({m.order_id for m in batch if m.order_id and not m.marketing})
            )
            # each mail is composed (recipient, templates, message) while the server takes in
            # the one before it (SmtpTransport.send's ``meanwhile``)
            composed = self._compose(batch[0], recipients, contacts, sender) if batch else None
            for i, mail in enumerate(batch):
                following = batch[i + 1] if i + 1 < len(batch) else None
                if result.unreachable:
                    # the server is down: the rest of the batch waits without being tried
                    mails.save(
                        mail.deferred(
                            "SMTP server unreachable", now, self.config.retry_delays, counts=False
                        )
                    )
                    result.deferred += 1
                    continue
                ahead: list[_Composed] = []

                def compose_following(following=following, ahead=ahead):
                    if following is not None:
                        ahead.append(self._compose(following, recipients, contacts, sender))

                outcome, unreachable = self._one(mail, composed, sender, now, compose_following)
                composed = ahead[0] if ahead else None
                if composed is None and following is not None and not unreachable:
                    composed = self._compose(following, recipients, contacts, sender)
                mails.save(outcome, now)
                if outcome.event_type == SUMMARY and outcome.status in FINAL:
                    summaries_done.append(outcome.account_id)
                result.unreachable = unreachable
                if outcome.status == "sent":
                    result.sent += 1
                elif outcome.status == "failed":
                    result.failed += 1
                elif outcome.status == "dropped":
                    result.dropped += 1
                else:
                    result.deferred += 1
            uow.commit()
        self._shred_summaries(summaries_done)
        return result

    def _shred_summaries(self, account_ids: list[str]) -> None:
        """The summary of an erasure is sealed with a key of its own, which outlived the
        account's for this mail only: once it is sent (or will never be), the key is destroyed,
        so no copy of the address left in a queue or a parked message can be read again (the
        gdpr purge run destroys it at the latest after the schedule's days, whatever happens
        here)."""
        keys = self.runtime.keys
        if keys is None:
            return
        for account_id in account_ids:
            if account_id:
                keys.destroy(own_key_subject(SUMMARY, account_id))

    def _compose(self, mail: Mail, recipients, contacts, sender) -> _Composed:
        """What ``mail`` is to send, or why it is not sent now; never raises (an error is kept
        and raised when the mail's turn comes)."""
        try:
            address, name, context, headers = self._prepare(mail, recipients, contacts)
        except (Drop, NotReady) as why:
            return _Composed(why=why)
        except Exception as exc:
            return _Composed(error=exc)
        try:
            message_id = mail.message_id_for(sender.domain)  # the From address's domain
            rendered = self.renderer.render(mail.template, mail.locale, context)
            message = build_message(
                rendered,
                sender=sender,
                to_address=address,
                to_name=name,
                message_id=message_id,
                headers=headers,
            )
        except Exception as exc:
            return _Composed(error=exc)
        return _Composed(address=address, message_id=message_id, message=message)

    def _one(self, mail: Mail, composed: _Composed, sender, now, meanwhile) -> tuple[Mail, bool]:
        """The mail after this attempt, and whether the server could not be reached."""
        delays = self.config.retry_delays
        with bound_log_fields(event_id=mail.source_id, order_id=mail.order_id):
            if composed.error is not None:
                raise composed.error
            if isinstance(composed.why, Drop):
                why = str(composed.why)
                log.info("mail.dropped", mail_id=mail.id, template=mail.template, reason=why)
                return mail.dropped(why), False
            if isinstance(composed.why, NotReady):
                why = str(composed.why)
                log.warning("mail.waiting", mail_id=mail.id, template=mail.template, reason=why)
                return mail.deferred(why, now, delays), False
            sent = self.transport.send(
                composed.message, sender.addr_spec, composed.address, meanwhile=meanwhile
            )
            outcome = self._after(mail, sent, composed.message_id, composed.address, now)
            return outcome, sent.outcome == UNREACHABLE

    def _after(self, mail: Mail, sent: SendResult, message_id: str, address: str, now) -> Mail:
        delays = self.config.retry_delays
        fields = dict(mail_id=mail.id, template=mail.template, message_id=message_id)
        if sent.outcome == SENT:
            log.info("mail.sent", **fields, answer=sent.answer[:200])
            return mail.sent(sent.answer[:1000], message_id, address)
        if sent.outcome == TEMPORARY:
            log.warning("mail.deferred", **fields, answer=sent.answer[:200])
            return mail.deferred(sent.answer[:1000], now, delays)
        if sent.outcome == PERMANENT:
            log.error("mail.failed", **fields, answer=sent.answer[:200])
            return mail.failed(sent.answer[:1000])
        assert sent.outcome == UNREACHABLE
        log.warning("smtp.unreachable", error=sent.answer[:200])
        return mail.deferred(f"unreachable: {sent.answer}"[:1000], now, delays, counts=False)

    # what a mail says, and to whom
    def _prepare(self, mail: Mail, recipients, contacts):
        cfg = self.config
        data = dict(mail.data or {})
        links = {"storefront": cfg.storefront_url, "login": f"{cfg.storefront_url}/login"}
        context = {"data": data, "links": links, "order": None, "transfer": None}
        headers: dict[str, str] = {}
        if mail.marketing:
            contact = contacts.get(mail.contact_id) if mail.contact_id else None
            if contact is None or not contact.may_receive_marketing:
                raise Drop("no marketing consent (withdrawn, never given or erased)")
            if not cfg.unsubscribe_secret:
                raise NotReady("NOTIFICATIONS_UNSUBSCRIBE_SECRET is not set")
            link = (
                f"{cfg.public_url}/v1/unsubscribe/"
                f"{unsubscribe_token(cfg.unsubscribe_secret, contact.id)}"
            )
            links["unsubscribe"] = link
            headers = {
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Precedence": "bulk",
            }
            context["first_name"] = None
            return contact.email, None, context, headers
        headers["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to these
        if mail.order_id is not None:
            recipient = recipients.get(mail.order_id)  # the batch's, read at once
            if recipient is None:
                raise NotReady("the order's recipient is not known yet (order.placed)")
            if recipient.erased or recipient.email is None:
                raise Drop("the order's recipient was erased")
            context["order"] = recipient
            order_url = f"{cfg.storefront_url}/orders/{mail.order_id}"
            links.update(
                order=order_url,
                documents=f"{order_url}/documents",
                payment=f"{order_url}/payment",
            )
            if mail.template == "order_confirmation" and recipient.payment_method == "transfer":
                context["transfer"] = self._transfer(recipient)
            if data.get("carrier"):
                links["tracking"] = tracking_url(data.get("carrier"), data.get("tracking_number"))
            address, name = recipient.email, recipient.first_name
        else:
            if not mail.to_address:
                raise Drop("no recipient address is known for this account")
            address, name = mail.to_address, mail.to_name
            if mail.secret_url:
                links["action"] = mail.secret_url
        context["first_name"] = name
        return address, name, context, headers

    def _transfer(self, order: OrderRecipient) -> dict:
        cfg = self.config
        if not (cfg.transfer_iban and cfg.transfer_bic):
            raise NotReady("NOTIFICATIONS_TRANSFER_IBAN or NOTIFICATIONS_TRANSFER_BIC is not set")
        if not order.order_number:
            raise NotReady("the order's number is not known (its RF reference derives from it)")
        return {
            "iban": format_iban(cfg.transfer_iban),
            "bic": cfg.transfer_bic,
            "beneficiary": cfg.transfer_beneficiary,
            "reference": format_reference(creditor_reference(order.order_number)),
            "amount_cents": order.total_cents,
            "currency": order.currency or "EUR",
        }

    # housekeeping
    def erase_expired_recipients(self, now: datetime | None = None) -> int:
        with self.runtime.unit_of_work() as uow:
            erased = RecipientRepository(uow).erase_due(now or utcnow())
            uow.commit()
        if erased:
            log.info("recipients.erased", count=erased)
        return erased


def sender_loops(runtime) -> dict:
    """``ServiceDefinition.loops``: the sender, run by ``coc-notifications worker``."""
    sender = Sender(runtime)
    return {"sender": sender.run}
