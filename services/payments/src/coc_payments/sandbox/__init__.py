"""Stand-ins for the payment providers on a developer's machine (``make run``) and in the tests:
never started in production, where a service refuses their addresses and keys
(``config.refuse_sandbox_settings``).

- ``bank``: the bank's hosted card page speaking Systempay's form protocol (and its REST refunds);
- ``paypal``: PayPal's REST API (OAuth2, Orders v2, refunds), its buyer approval page and its
  signed webhooks;
- ``business_bank``: the company's business bank (Qonto style): signed transfer webhooks and
  camt.053 statement files;
- ``demo``: ``make demo``, one order walked through the whole story over the services' HTTP APIs.

They live in the payments distribution, not in ``coc_shared``: they speak the protocols that
payments' adapters verify and sign with the very same functions (``adapters.hosted_page``,
``adapters.bank``, ``adapters.paypal``), which the shared library must not import, and payments
already depends on what they need (requests, cryptography, lxml, fpdf2). Each is a werkzeug
application with a ``main()`` (``python -m coc_payments.sandbox.<name>``) that reads its secrets
from files, never from its command line or the environment.
"""
