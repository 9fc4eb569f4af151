"""``make demo`` (``python -m coc_payments.sandbox.demo --pay card|paypal|transfer``): one company
order walked through the whole story over the services' real HTTP APIs, as a customer and the
outside parties would, while ``make run`` runs (started here, and stopped at the end, when nothing
answers on the orders port).

placed -> documents uploaded -> paid (on the sandbox bank's card page, at the PayPal sandbox, or by
a transfer at the business bank sandbox) -> sent to the supplier -> accepted -> issued -> shipped
-> delivered: each step is printed with the time since the start and the event that moved the
order (its timeline, ``GET /v1/orders/{id}``); the supplier's reference integration and La Poste's
emulator, started by ``make run``, move it after the payment. Then the mails the customer received
(the SMTP sandbox's ``.eml`` files), and last one JSON line ``{"order_id", "number",
"access_token", "status"}``. A step that does not happen within ``--timeout`` seconds ends the
demo with exit code 1, naming the step.

It lives with the payment sandboxes because paying through them is what it adds to plain API
calls; it imports nothing of the other services, which it reaches over HTTP only.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import glob
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import lxml.html
import requests
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from coc_shared.config import SERVICE_NAMES, env, port_variable

METHODS = ("card", "paypal", "transfer")
# A Renault Clio V of a garage's fleet: a Renault VIN (WMI VF1), whose supplier (Renault's
# homologation office, an http integration) ships the certificate to the customer.
VEHICLE = {"vin": "VF1RJA00066543217", "brand": "Renault", "first_registration_date": "2021-03-18"}
COMPANY = {"name": "Garage Martin SARL", "siren": "542065479", "vat_number": "FR82542065479"}
DOCUMENT_TITLES = {
    "registration_certificate": "CERTIFICAT D'IMMATRICULATION",
    "id_card": "CARTE NATIONALE D'IDENTITE",
    "purchase_invoice": "FACTURE D'ACHAT",
}
# (step, the timeline event that moves the order there)
STEPS = (
    ("placed", "order.placed"),
    ("documents uploaded", "order.documents_completed"),
    ("paid", "payment.confirmed"),
    ("sent to supplier", "documents.sent_to_supplier"),
    ("accepted", "supplier.request_accepted"),
    ("issued", "certificate.received"),
    ("shipped", "certificate.shipped"),
    ("delivered", "certificate.delivered"),
)


class StepFailed(Exception):
    """A step did not happen (in time, or at all): the demo ends with exit code 1, naming it."""

    def __init__(self, step: str, why: str):
        super().__init__(f"step {step!r} {why}")
        self.step = step


def service_url(service: str) -> str:
    return f"http://127.0.0.1:{env(port_variable(service))}"


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_for(step: str, check, timeout: float, poll: float = 0.2, detail=lambda: ""):
    """``check()``'s first true value, looked at every ``poll`` s; StepFailed after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise StepFailed(step, f"did not happen within {timeout:g} s{detail()}")
        time.sleep(poll)


NEXT_LINE = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}


def document_pdf(kind: str, vehicle: dict, holder: str) -> bytes:
    """A one-page PDF standing for the scan of document ``kind`` (orders reads it with pypdf)."""
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 12, DOCUMENT_TITLES.get(kind, kind.replace("_", " ").upper()), **NEXT_LINE)
    pdf.set_font("Helvetica", size=11)
    for line in (
        f"Titulaire : {holder}",
        f"(E) Numero d'identification du vehicule : {vehicle['vin']}",
        f"(D.1) Marque : {vehicle['brand'].upper()}",
        f"(B) Date de premiere immatriculation : {vehicle['first_registration_date']}",
        "Document de demonstration (make demo)",
    ):
        pdf.cell(0, 8, line, **NEXT_LINE)
    return bytes(pdf.output())


@dataclass
class Mail:
    path: str
    to: str
    subject: str
    template: str  # from its Message-ID: <event id>.<template>.<digest>@<domain>


def read_mails(folder: str, address: str) -> list[Mail]:
    mails = []
    for path in sorted(glob.glob(os.path.join(folder, "*.eml"))):
        with open(path, "rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
        if address.lower() not in str(message.get("To", "")).lower():
            continue
        message_id = str(message.get("Message-ID", "")).strip("<>")
        parts = message_id.split("@", 1)[0].split(".")
        template = parts[-2] if len(parts) >= 3 else ""
        mails.append(Mail(path, str(message["To"]), str(message.get("Subject", "")), template))
    return mails


class Demo:
    def __init__(self, method: str, data_dir: str, timeout: float, out: TextIO):
        self.method = method
        self.data_dir = os.path.abspath(data_dir)
        self.timeout = timeout
        self.out = out
        self.http = requests.Session()  # the customer's browser
        self.orders = service_url("orders")
        self.payments = service_url("payments")
        self.started = 0.0  # when the story started (run)
        self.order: dict = {}
        self.email = f"claire.martin+demo-{secrets.token_hex(3)}@garage-martin.example"
        self.step = ""  # the step under way

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def view(self) -> dict:
        answer = self.http.get(
            f"{self.orders}/v1/orders/{self.order['id']}",
            headers={"X-Order-Token": self.order["access_token"]},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()

    def reached(self, step: str, event: str, note: str = "") -> dict:
        """Waits for ``event`` in the order's timeline; prints the step."""
        last = {}

        def seen():
            last["view"] = view = self.view()
            return next((e for e in view["timeline"] if e["event"] == event), None)

        entry = wait_for(
            step,
            seen,
            self.timeout,
            detail=lambda: f" (order status {last.get('view', {}).get('status')!r})",
        )
        elapsed = time.monotonic() - self.started
        status = entry.get("status") or last["view"]["status"]  # where the event moved it
        self.say(f"  {step:<19}{elapsed:7.1f} s  {event:<28}{status:<21}{note}")
        return last["view"]

    # ------------------------------------------------------------------ the story
    def run(self) -> dict:
        self.started = time.monotonic()
        self.say(
            f"COC demo: a company order for a {VEHICLE['brand']} ({VEHICLE['vin']}), paid by "
            f"{self.method}, on {self.orders}"
        )
        self.say(f"  {'step':<19}{'elapsed':>9}  {'event':<28}{'status':<21}")
        actions = {
            "placed": self.place,
            "documents uploaded": self.upload_documents,
            "paid": self.pay,
        }
        for step, event in STEPS:
            self.step = step
            if step in actions:
                actions[step]()
            else:  # the supplier's integration and La Poste move the order on
                self.reached(step, event)
        self.step = "mails"
        self.show_mails()
        return {
            "order_id": self.order["id"],
            "number": self.order["number"],
            "access_token": self.order["access_token"],
            "status": self.view()["status"],
        }

    def place(self) -> None:
        body = {
            "customer": {
                "first_name": "Claire",
                "last_name": "Martin",
                "email": self.email,
                "phone": "04 78 00 00 00",
            },
            "company": COMPANY,
            "billing_address": {
                "line1": "12 rue de la République",
                "postal_code": "69002",
                "city": "Lyon",
                "country": "FR",
            },
            "shipping_address": {
                "line1": "3 avenue Foch",
                "postal_code": "69006",
                "city": "Lyon",
                "country": "FR",
            },
            "vehicle": VEHICLE,
            "payment_method": self.method,
        }
        answer = self.http.post(
            f"{self.orders}/v1/orders",
            json=body,
            headers={"Idempotency-Key": secrets.token_hex(16)},
            timeout=10,
        )
        if answer.status_code != 201:
            raise StepFailed(
                "placed",
                f"failed: POST /v1/orders answered {answer.status_code} {answer.text[:300]}",
            )
        self.order = answer.json()
        total = self.order["total"]
        self.reached(
            "placed",
            "order.placed",
            f"{self.order['number']}, {total['amount_cents'] / 100:.2f} {total['currency']}, "
            f"{COMPANY['name']}",
        )

    def upload_documents(self) -> None:
        kinds = list(self.order.get("documents_required") or [])
        for kind in kinds:
            answer = self.http.post(
                f"{self.orders}/v1/orders/{self.order['id']}/documents",
                headers={"X-Order-Token": self.order["access_token"]},
                data={"kind": kind},
                files={
                    "file": (
                        f"{kind}.pdf",
                        document_pdf(kind, VEHICLE, COMPANY["name"]),
                        "application/pdf",
                    )
                },
                timeout=30,
            )
            if answer.status_code != 201:
                raise StepFailed(
                    "documents uploaded",
                    f"failed: {kind} answered {answer.status_code} {answer.text[:300]}",
                )
        self.reached("documents uploaded", "order.documents_completed", ", ".join(kinds))

    def checkout(self) -> dict:
        """The payment's checkout, once payments has recorded the order (order.placed)."""
        last = {}

        def ready():
            answer = self.http.post(
                f"{self.payments}/v1/payments/{self.order['id']}/checkout",
                headers={"X-Order-Token": self.order["access_token"]},
                timeout=20,
            )
            last["answer"] = f"{answer.status_code} {answer.text[:200]}"
            return answer.json() if answer.status_code == 200 else None

        return wait_for(
            "paid", ready, self.timeout, detail=lambda: f": checkout answered {last.get('answer')}"
        )

    def pay(self) -> None:
        checkout = self.checkout()
        note = getattr(self, f"pay_by_{self.method}")(checkout)
        self.reached("paid", "payment.confirmed", note)

    def pay_by_card(self, checkout: dict) -> str:
        """The browser posts the signed form to the bank's page and picks the accepted test card;
        the bank notifies payments (IPN) and sends the browser back to the shop."""
        form = checkout["form"]
        page = self.http.post(form["url"], data=form["fields"], timeout=20)
        if page.status_code != 200:
            raise StepFailed("paid", f"failed: the bank's page answered {page.status_code}")
        card = next(
            f for f in lxml.html.fromstring(page.text).forms if f.fields.get("card") == "accepted"
        )
        paid = self.http.post(
            requests.compat.urljoin(form["url"], card.action),
            data=dict(card.form_values()),
            allow_redirects=False,
            timeout=30,
        )
        return (
            f"accepted test card on {form['url']} (IPN answered "
            f"{paid.headers.get('X-Sandbox-IPN-Status')}; back to {paid.headers.get('Location')})"
        )

    def pay_by_paypal(self, checkout: dict) -> str:
        """The buyer approves on PayPal's page; PayPal's webhook makes payments capture, and the
        capture's webhook confirms."""
        page = self.http.get(checkout["approval_url"], timeout=20)
        approve = next(f for f in lxml.html.fromstring(page.text).forms if "approve" in f.action)
        approved = self.http.post(
            requests.compat.urljoin(checkout["approval_url"], approve.action),
            data=dict(approve.form_values()),
            allow_redirects=False,
            timeout=20,
        )
        return f"PayPal order {checkout['paypal_order_id']} approved (HTTP {approved.status_code})"

    def pay_by_transfer(self, checkout: dict) -> str:
        """The company's transfer with the order's RF reference arrives at the business bank."""
        ports = os.path.join(self.data_dir, "payments-sandbox-ports.json")
        try:
            with open(ports) as f:
                bank = f"http://127.0.0.1:{json.load(f)['business_bank']}"
        except (OSError, ValueError, KeyError):
            raise StepFailed(
                "paid", f"failed: no business bank sandbox in {ports} (make run's RUN_DATA_DIR?)"
            ) from None
        answer = self.http.post(
            f"{bank}/sandbox/transfers",
            json={
                "reference": checkout["reference_compact"],
                "amount_cents": checkout["amount"]["amount_cents"],
                "currency": checkout["amount"]["currency"],
                "debtor_name": COMPANY["name"],
            },
            timeout=30,
        ).json()
        return (
            f"transfer to {checkout['iban']} ref {checkout['reference']} (bank webhook answered "
            f"{answer['webhook_status']}; statement {answer['statement']})"
        )

    def show_mails(self) -> None:
        folder = os.path.join(self.data_dir, "mail")
        wait_for(
            "mails",
            lambda: any(
                m.template == "certificate_delivered" for m in read_mails(folder, self.email)
            ),
            self.timeout,
            detail=lambda: f" (no delivery mail to {self.email} in {folder})",
        )
        mails = read_mails(folder, self.email)
        self.say(f"Mails to {self.email} ({folder}):")
        for mail in mails:
            self.say(f"  {os.path.basename(mail.path)}  {mail.subject}")


# --------------------------------------------------------------------------- make run, if needed
def start_pipeline(data_dir: str, out: TextIO, timeout: float) -> subprocess.Popen:
    """``coc-run`` in the background, its output in ``<data dir>/demo-coc-run.log``, until every
    service answers ``/readyz``."""
    os.makedirs(data_dir, exist_ok=True)
    log_path = os.path.join(data_dir, "demo-coc-run.log")
    bindir = os.path.dirname(sys.executable)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [os.path.join(bindir, "coc-run")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "RUN_DATA_DIR": data_dir},
        )
    print(f"Nothing answers on {service_url('orders')}: started make run ({log_path})", file=out)
    try:
        wait_for(
            "make run",
            lambda: (
                process.poll() is not None
                or all(answers(f"{service_url(s)}/readyz") for s in SERVICE_NAMES)
            ),
            timeout,
            poll=0.5,
        )
    except StepFailed:
        stop_pipeline(process)
        raise
    if process.poll() is not None:
        raise StepFailed("make run", f"failed: coc-run exited, see {log_path}")
    return process


def stop_pipeline(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument("--pay", choices=METHODS, default="card")
    parser.add_argument("--data-dir", default=env("RUN_DATA_DIR"), help="make run's data folder")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a step may take")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    errors = sys.stderr if out is sys.stdout else out
    pipeline = None
    demo = Demo(args.pay, args.data_dir, args.timeout, out)
    try:
        if not answers(f"{service_url('orders')}/healthz"):
            pipeline = start_pipeline(args.data_dir, out, max(args.timeout, 180))
        result = demo.run()
    except StepFailed as exc:
        print(f"make demo: {exc}", file=errors, flush=True)
        return 1
    except requests.RequestException as exc:  # a service stopped answering
        print(f"make demo: step {demo.step!r} failed: {exc}", file=errors, flush=True)
        return 1
    finally:
        if pipeline is not None:
            stop_pipeline(pipeline)
    print(json.dumps(result), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
