"""Errors every service shares.

``PermanentError`` marks a failure that retrying cannot cure: the consumer parks such a message at
once instead of retrying it. ``InvalidEvent`` is the one a domain model raises when an event's
content cannot be recorded (no order id, a malformed date...): a permanent error too.
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot succeed (e.g. an event for an unknown order): the message is parked at
    once."""


class InvalidEvent(PermanentError, ValueError):
    """The event cannot be recorded as it is: handling it again cannot succeed."""
