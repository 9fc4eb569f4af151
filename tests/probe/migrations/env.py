import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from coc_shared.migrate import run_env  # noqa: E402
from probe_service import metadata  # noqa: E402

run_env(metadata)
