"""Fixtures of the supplier gateway's tests."""

import os
import sys

# gateway_helpers; appended, so that another folder's `from conftest import …` still finds its own
sys.path.append(os.path.dirname(__file__))
