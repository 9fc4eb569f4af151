"""One backoff policy for everything that waits for the broker or the database to come back:
0.2 s, doubling, at most 5 s between attempts, until it works or the process is told to stop.
Built on tenacity; the waits are ``stop.wait`` so a shutdown interrupts them at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_exception, stop_when_event_set, wait_exponential

T = TypeVar("T")
FIRST_WAIT, LONGEST_WAIT = 0.2, 5.0


class Stopped(Exception):
    """``stop`` was set before the call succeeded."""


def call_with_backoff(
    fn: Callable[[], T],
    *,
    stop: threading.Event | None,
    retry_if: Callable[[BaseException], bool] = lambda exc: True,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """``fn()``, called again after each failure that ``retry_if`` accepts (others are raised at
    once), with the common backoff; ``on_retry(error, wait)`` is told before each wait (to log it,
    or to drop a broken connection). Raises ``Stopped`` when ``stop`` is set first."""
    stop = stop or threading.Event()

    def before_sleep(state) -> None:
        if on_retry is not None:
            on_retry(state.outcome.exception(), state.next_action.sleep)

    retrying = Retrying(
        wait=wait_exponential(multiplier=FIRST_WAIT, min=FIRST_WAIT, max=LONGEST_WAIT),
        retry=retry_if_exception(retry_if),
        stop=stop_when_event_set(stop),
        sleep=stop.wait,
        before_sleep=before_sleep,
        reraise=False,
    )
    try:
        return retrying(fn)
    except RetryError as exc:
        raise Stopped() from exc.last_attempt.exception()
