"""Links one service gives the storefront lead to a route another service serves."""

from urllib.parse import urlparse

from coc_orders.service import definition as orders_definition
from coc_payments.service import definition as payments_definition
from coc_shared.service import Runtime


def test_the_payment_link_of_a_placed_order_is_the_payments_checkout(
    settings_factory, storefront_order
):
    orders = Runtime(orders_definition, settings_factory("orders"))
    orders.migrate()
    payments = Runtime(payments_definition, settings_factory("payments"))
    try:
        answer = orders.create_app().test_client().post("/v1/orders", json=storefront_order)
        assert answer.status_code == 201, answer.get_json()
        link = urlparse(answer.get_json()["links"]["payment"])
        assert link.port == payments.settings.http_port
        endpoint, args = (
            payments.create_app().url_map.bind("localhost").match(link.path, method="POST")
        )
        assert endpoint.endswith("checkout") and args["order_id"] == answer.get_json()["id"]
    finally:
        orders.dispose()
        payments.dispose()
