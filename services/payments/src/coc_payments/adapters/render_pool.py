"""The process pool that renders invoices' PDFs for the ``invoices`` loop."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor

# spawn, not fork: the worker has threads (consumer, relay) whose locks a fork would copy.
SPAWN = multiprocessing.get_context("spawn")


def new_render_pool(processes: int) -> Executor:
    return ProcessPoolExecutor(processes, mp_context=SPAWN)
