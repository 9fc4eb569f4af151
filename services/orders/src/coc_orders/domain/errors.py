"""What a use case of the orders service refuses, as exceptions (no HTTP here: the entrypoints map
each one to its answer). The message is the one shown to the customer."""

from __future__ import annotations


class OrdersError(Exception):
    """Base of the refusals below."""

    default_message = "refused"

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)


class ValidationFailed(OrdersError):
    """What was sent is not valid: messages by field (nested like the request)."""

    def __init__(self, fields: dict, message: str = "the request is not valid"):
        super().__init__(message)
        self.fields = fields
        self.message = message


class NotFound(OrdersError):
    """No such order or account, or not one the caller may see."""

    default_message = "not found"


class AccountGone(OrdersError):
    """The account of a valid customer token no longer exists."""

    default_message = "the account of this token no longer exists"


class InvalidCredentials(OrdersError):
    default_message = "wrong e-mail address or password"


class Conflict(OrdersError):
    """The request contradicts what is stored (an e-mail address in use, an Idempotency-Key used
    for another request)."""


class NotAllowedNow(Conflict):
    """The order's state does not allow it, e.g. cancelling an order sent to the supplier."""

    def __init__(self, message: str, status: str):
        super().__init__(message)
        self.status = status


class TooManyDocuments(Conflict):
    """The order has as many documents as it takes (in all, or of the upload's kind)."""


class UnsupportedMedia(OrdersError):
    """Not a PDF, JPEG or PNG, or one that its parser refuses; the message says why."""

    default_message = "only PDF, JPEG and PNG files are accepted (recognised by their content)"


class TooLarge(OrdersError):
    default_message = "a document is at most 10 MB"


class NotConfigured(OrdersError):
    """Something this request needs is not configured (e.g. the documents' encryption key)."""


class LinkNotValid(OrdersError):
    """A supplier's document link that was not signed for this supplier and document, or expired
    (403)."""

    default_message = "this link is not valid"
