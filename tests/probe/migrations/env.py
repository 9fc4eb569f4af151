import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from probe_service import metadata

from coc_shared.migrate import run_env

run_env(metadata)
