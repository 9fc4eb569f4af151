"""The provider adapters of one running API, built once from the configuration (and then kept:
the PayPal token and the certificates downloaded are cached in them).

A provider left unconfigured is ``None`` here; asking for it raises ``NotConfigured`` (its checkout
answers 503, its notifications 401)."""

from __future__ import annotations

from ..config import NotConfigured, PaymentsConfig
from .hosted_page import SystempayPage
from .paypal import CertificateStore, PayPalClient, PayPalWebhooks


class Providers:
    def __init__(self, config: PaymentsConfig):
        self.config = config
        self._card_page, self._card_missing = None, self._card_page_missing(config)
        if self._card_missing is None:
            self._card_page = SystempayPage(
                config.systempay_form_url,
                config.systempay_site_id,
                config.systempay_mode,
                config.systempay_keys,
            )
        self._paypal = None
        if config.paypal_client_id and config.paypal_client_secret:
            self._paypal = PayPalClient(
                config.paypal_api_url,
                config.paypal_client_id,
                config.paypal_client_secret,
                timeout=config.provider_http_timeout,
            )
        self.certificates = CertificateStore(
            config.cert_url_allowed, timeout=config.provider_http_timeout
        )
        self.paypal_webhooks = PayPalWebhooks(config.paypal_webhook_id, self.certificates)

    @staticmethod
    def _card_page_missing(config: PaymentsConfig) -> str | None:
        if not config.systempay_site_id:
            return "SYSTEMPAY_SITE_ID"
        if not config.systempay_keys[config.systempay_mode]:
            return f"SYSTEMPAY_{config.systempay_mode}_KEY"
        return None

    def card_page(self) -> SystempayPage:
        if self._card_page is None:
            raise NotConfigured("card", self._card_missing)
        return self._card_page

    def paypal(self) -> PayPalClient:
        if self._paypal is None:
            raise NotConfigured("paypal", "PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET")
        return self._paypal
