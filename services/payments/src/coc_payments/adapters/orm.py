"""Former name of ``tables`` (it holds SQLAlchemy Core tables, not ORM mappings), kept only for the
code outside this service that still imports it (``tests/test_make_run.py``,
``services/orders/tests/test_cancellation.py``); delete it once they import
``coc_payments.adapters.tables``."""
from .tables import *  # noqa: F401,F403
