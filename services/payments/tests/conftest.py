"""The payments tests' fixtures live in ``payments_testkit`` (importable by the test modules too,
which pytest's importlib mode does not allow for a conftest)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payments_testkit import (  # noqa: F401
    any_runtime,
    client,
    fake_orders,
    fake_paypal,
    fake_systempay_api,
    pipeline,
    runtime,
    staff_auth,
)
