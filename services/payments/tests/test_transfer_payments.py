"""Bank transfers: IBAN/BIC and an ISO 11649 RF reference at checkout, the bank's signed
transaction webhook (Qonto style), and camt.053 statements imported by support staff."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from payments_testkit import (
    IBAN,
    count,
    order_placed,
    outbox_events,
    qonto_body,
    qonto_headers,
    record_order,
    review_reasons,
)
from sqlalchemy import select
from stdnum import iso11649

from coc_payments.adapters import tables
from coc_shared.testing import service_env, staff_token

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"


def webhook(client, body, headers=None):
    return client.post(
        "/v1/callbacks/bank-transfer", data=body, headers=headers or qonto_headers(body)
    )


def test_transfer_end_to_end_from_order_placed_to_payment_confirmed(pipeline, client):
    order, token = pipeline.place("transfer", 24900)
    doc = client.post(
        f"/v1/payments/{order['order_id']}/checkout", headers={"X-Order-Token": token}
    ).get_json()
    assert doc["method"] == "transfer" and doc["iban"] == IBAN and doc["bic"] == "AGRIFRPP"
    assert doc["amount"] == {"amount_cents": 24900, "currency": "EUR"}
    reference = doc["reference_compact"]
    assert iso11649.is_valid(reference) and doc["reference"] == iso11649.format(reference)
    # the customer types it with other words, in lower case, grouped differently
    body = qonto_body(f"commande {reference.lower()[:6]} {reference.lower()[6:]} merci", 24900)
    response = webhook(pipeline.payments.create_app().test_client(), body)
    assert response.status_code == 200, response.get_json()
    confirmed = pipeline.observer.wait("payment.confirmed", order["order_id"])[0]
    assert (
        confirmed["data"]["method"] == "transfer"
        and confirmed["data"]["amount"]["amount_cents"] == 24900
    )
    assert (
        confirmed["data"]["provider_transaction_id"] == json.loads(body)["data"]["transaction_id"]
    )


def test_each_order_gets_its_own_reference_and_a_mistyped_one_matches_nothing(runtime, client):
    first, _ = order_placed("transfer", 1000)
    second, _ = order_placed("transfer", 1000)
    for e in (first, second):
        record_order(runtime, e)
    with runtime.engine.connect() as conn:
        refs = (
            conn.execute(
                select(tables.payments_due.c.reference).where(
                    tables.payments_due.c.order_id.in_(
                        [first.data["order_id"], second.data["order_id"]]
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(set(refs)) == 2 and all(iso11649.is_valid(r) for r in refs)
    ref = refs[0]
    typo = ref[:-1] + str(
        (int(ref[-1]) + 1) % 10
    )  # one digit mistyped (mod 97 detects every such typo)
    assert not iso11649.is_valid(typo)
    body = qonto_body(typo, 1000)
    assert webhook(client, body).status_code == 200
    with runtime.engine.connect() as conn:
        reasons = (
            conn.execute(
                select(tables.review_items.c.reason).where(
                    tables.review_items.c.provider_transaction_id
                    == json.loads(body)["data"]["transaction_id"]
                )
            )
            .scalars()
            .all()
        )
    assert reasons == ["invalid_reference"]


def test_a_partial_or_excess_transfer_goes_to_review(runtime, client):
    event, _ = order_placed("transfer", 24900)
    record_order(runtime, event)
    with runtime.engine.connect() as conn:
        ref = conn.execute(
            select(tables.payments_due.c.reference).where(
                tables.payments_due.c.order_id == event.data["order_id"]
            )
        ).scalar_one()
    assert webhook(client, qonto_body(ref, 10000)).status_code == 200
    assert webhook(client, qonto_body(ref, 30000)).status_code == 200
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    assert review_reasons(runtime, event.data["order_id"]) == [
        "partial_transfer",
        "overpaid_transfer",
    ]
    # a debit or a pending credit naming the reference changes nothing
    assert webhook(client, qonto_body(ref, 24900, side="debit")).status_code == 200
    assert webhook(client, qonto_body(ref, 24900, status="pending")).status_code == 200
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    # the full amount then confirms; the same credit delivered again does not confirm twice
    body = qonto_body(ref, 24900)
    for _ in range(3):
        assert webhook(client, body).status_code == 200
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1


@pytest.mark.parametrize(
    "case", ["stale", "future", "wrong_secret", "altered_body", "missing", "garbled"]
)
def test_a_bank_webhook_with_a_bad_or_stale_signature_is_refused(runtime, client, case):
    event, _ = order_placed("transfer", 5000)
    record_order(runtime, event)
    with runtime.engine.connect() as conn:
        ref = conn.execute(
            select(tables.payments_due.c.reference).where(
                tables.payments_due.c.order_id == event.data["order_id"]
            )
        ).scalar_one()
    body = qonto_body(ref, 5000)
    headers = {
        "stale": qonto_headers(body, t=int(time.time()) - 301),
        "future": qonto_headers(body, t=int(time.time()) + 400),
        "wrong_secret": qonto_headers(body, secret="another-secret"),
        "altered_body": qonto_headers(body.replace(b"5000", b"5001")),
        "missing": {"Content-Type": "application/json"},
        "garbled": {"X-Qonto-Signature": "v1=abc", "Content-Type": "application/json"},
    }[case]
    assert webhook(client, body, headers).status_code == 401
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    assert count(runtime, tables.callbacks, provider="qonto", verdict="rejected") >= 1
    # a timestamp 4 minutes old is still inside the window
    assert webhook(client, body, qonto_headers(body, t=int(time.time()) - 240)).status_code == 200
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1


def test_an_invalid_transfer_account_stops_the_start_and_a_missing_one_answers_503(
    settings_factory, fake_paypal
):
    from payments_testkit import payments_extra

    from coc_payments.service import definition
    from coc_shared.config import ConfigError
    from coc_shared.service import Runtime

    extra = {
        **payments_extra(fake_paypal.url),
        "TRANSFER_IBAN": "FR7630006000011234567890188",
    }  # bad check digits
    with pytest.raises(ConfigError, match="TRANSFER_IBAN") as refused:
        Runtime(definition, settings_factory("payments", extra=extra))
    assert "TRANSFER_BIC" not in str(refused.value)
    with pytest.raises(ConfigError, match="TRANSFER_BIC"):
        Runtime(
            definition,
            settings_factory(
                "payments", extra={**payments_extra(fake_paypal.url), "TRANSFER_BIC": "AGRI"}
            ),
        )
    extra = {k: v for k, v in payments_extra(fake_paypal.url).items() if k != "TRANSFER_IBAN"}
    rt = Runtime(definition, settings_factory("payments", extra=extra))
    rt.migrate()
    event, token = order_placed("transfer", 1000)
    record_order(rt, event)
    answer = (
        rt.create_app()
        .test_client()
        .post(f"/v1/payments/{event.data['order_id']}/checkout", headers={"X-Order-Token": token})
    )
    assert answer.status_code == 503
    assert answer.get_json()["error"]["message"] == "transfer payments are not available now"
    rt.dispose()


CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>STMT-{n}</MsgId><CreDtTm>2026-11-27T06:00:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>STMT-{n}-1</Id>
   <Acct><Id><IBAN>{iban}</IBAN></Id></Acct>
   {entries}
  </Stmt>
 </BkToCstmrStmt>
</Document>"""

ENTRY = """<Ntry>
    <Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{side}</CdtDbtInd><Sts><Cd>{status}</Cd></Sts>
    <BookgDt><Dt>2026-11-26</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>
    <NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
     <RmtInf>{rmt}</RmtInf></TxDtls></NtryDtls>
   </Ntry>"""


def entry(ref, amount, text, side="CRDT", status="BOOK", structured=False, ccy="EUR"):
    rmt = (
        f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{text}</Ref></CdtrRefInf></Strd>"
        if structured
        else f"<Ustrd>{text}</Ustrd>"
    )
    return ENTRY.format(ref=ref, amount=amount, side=side, status=status, rmt=rmt, ccy=ccy)


def reference_of(runtime, order_id):
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(tables.payments_due.c.reference).where(
                tables.payments_due.c.order_id == order_id
            )
        ).scalar_one()


def test_a_camt053_statement_confirms_matched_credits_and_reviews_the_rest(
    runtime, client, staff_auth
):
    orders = [order_placed("transfer", 24900)[0] for _ in range(4)]
    for e in orders:
        record_order(runtime, e)
    refs = [reference_of(runtime, e.data["order_id"]) for e in orders]
    n = time.time_ns()
    xml = CAMT.format(
        n=n,
        iban=IBAN,
        entries="".join(
            [
                entry(f"A{n}-1", "249.00", f"VIR SEPA {refs[0]}"),  # matched (unstructured)
                entry(f"A{n}-2", "249.00", refs[1], structured=True),  # matched (structured)
                entry(f"A{n}-3", "100.00", f"PAIEMENT {refs[2]}"),  # partial
                entry(f"A{n}-4", "50.00", "VIREMENT SANS REFERENCE"),  # unmatched
                entry(f"A{n}-5", "249.00", refs[3], side="DBIT"),  # a debit: ignored
                entry(f"A{n}-6", "249.00", refs[3], status="PDNG"),  # not booked: ignored
                entry(f"A{n}-7", "249.00", refs[3], ccy="USD"),  # other currency
            ]
        ),
    )
    path = "/v1/payments/statements"
    assert (
        client.post(path, data=xml, headers={"Content-Type": "application/xml"}).status_code == 401
    )
    answer = client.post(path, data=xml, headers={**staff_auth, "Content-Type": "application/xml"})
    assert answer.status_code == 200, answer.get_json()
    summary = answer.get_json()
    assert (summary["credits"], summary["confirmed"], summary["review"], summary["ignored"]) == (
        5,
        2,
        3,
        2,
    )
    assert len(outbox_events(runtime, "payment.confirmed", orders[0].data["order_id"])) == 1
    assert len(outbox_events(runtime, "payment.confirmed", orders[1].data["order_id"])) == 1
    assert review_reasons(runtime, orders[2].data["order_id"]) == ["partial_transfer"]
    assert review_reasons(runtime, orders[3].data["order_id"]) == ["currency_mismatch"]
    items = client.get(
        "/v1/payments/review?reason=unmatched_credit", headers=staff_auth
    ).get_json()["items"]
    assert any(
        i["provider_transaction_id"] == f"A{n}-4" and i["label"] == "VIREMENT SANS REFERENCE"
        for i in items
    )
    # the same statement imported again changes nothing
    again = client.post(
        path, data=xml, headers={**staff_auth, "Content-Type": "application/xml"}
    ).get_json()
    assert (again["confirmed"], again["review"], again["already_imported"]) == (0, 0, 5)
    assert len(outbox_events(runtime, "payment.confirmed", orders[0].data["order_id"])) == 1


def test_a_statement_that_is_not_camt053_or_is_hostile_xml_is_refused(client, staff_auth):
    headers = {**staff_auth, "Content-Type": "application/xml"}
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b '
        '"&a;&a;&a;&a;&a;&a;">]>'
        "<Document>&b;</Document>"
    )
    for body in ("not xml", "<Document><Other/></Document>", bomb):
        answer = client.post("/v1/payments/statements", data=body, headers=headers)
        assert answer.status_code == 422 and "body" in answer.get_json()["error"]["fields"]


def test_the_command_line_imports_a_statement(runtime, tmp_path):
    event, _ = order_placed("transfer", 12345)
    record_order(runtime, event)
    ref = reference_of(runtime, event.data["order_id"])
    n = time.time_ns()
    path = tmp_path / "statement.xml"
    path.write_text(CAMT.format(n=n, iban=IBAN, entries=entry(f"C{n}", "123.45", ref)))
    env = service_env(runtime.settings)
    env["STAFF_TOKEN"] = staff_token("bob", "support")
    done = subprocess.run(
        [str(VENV_BIN / "coc-payments"), "import-camt053", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["confirmed"] == 1
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1
    env["STAFF_TOKEN"] = "bad"
    refused = subprocess.run(
        [str(VENV_BIN / "coc-payments"), "import-camt053", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
