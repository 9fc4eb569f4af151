"""Fixtures of the supplier gateway's tests."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # gateway_helpers
