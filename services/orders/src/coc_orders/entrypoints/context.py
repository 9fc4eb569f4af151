"""What the views need besides the request, built once per application by ``register_api`` and
fetched in a view with ``orders_app()``: the runtime, the configuration, the brands sold, the
documents' cipher and store, the allocator of order numbers and the VIES client (the rate limiter
is the application's own: ``limits.install_rate_limits``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from coc_shared.documents import Cipher, DocumentStorage, open_store
from coc_shared.ids import BlockAllocator
from coc_shared.vies import ViesClient

from ..adapters.repository import order_numbers
from ..config import OrdersConfig
from ..domain.brands import Brands, load_brands
from ..domain.errors import NotConfigured

EXTENSION = "coc_orders"


@dataclass
class OrdersApp:
    runtime: object
    config: OrdersConfig
    brands: Brands
    cipher: Cipher | None  # None: ORDERS_DOCUMENT_KEY is not set, uploads answer 503
    numbers: BlockAllocator
    vies: ViesClient  # EU businesses' VAT numbers, checked when an order is placed
    _storage: DocumentStorage | None = field(default=None, repr=False)

    @classmethod
    def build(cls, runtime) -> OrdersApp:
        config: OrdersConfig = runtime.config
        return cls(
            runtime=runtime,
            config=config,
            brands=load_brands(config.brands_path),
            cipher=Cipher(config.document_key) if config.document_key else None,
            numbers=order_numbers(runtime.engine),
            vies=ViesClient(config.vies_url, config.vies_timeout),
        )

    def document_cipher(self) -> Cipher:
        if self.cipher is None:
            raise NotConfigured("document encryption is not configured (ORDERS_DOCUMENT_KEY)")
        return self.cipher

    @property
    def storage(self) -> DocumentStorage:
        """Built at the first upload (an S3 client is not needed before)."""
        if self._storage is None:
            self._storage = open_store(self.config.store, self.runtime.settings.embedded)
        return self._storage


def orders_app() -> OrdersApp:
    return current_app.extensions[EXTENSION]
