"""Errors of the Salesforce source, split like every bulksync error into terminal and transient."""

from __future__ import annotations

from bulksync.errors import TerminalError, TransientError


class SalesforceApiError(TerminalError):
    """Salesforce refused a request for a reason retrying cannot fix (INVALID_FIELD, unknown object …).

    Attributes:
        code: Salesforce's ``errorCode`` (e.g. ``INVALID_FIELD``).
        status: the HTTP status.
    """

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class SalesforceTransientError(TransientError):
    """Salesforce was busy or unreachable after every retry (429, 503, timeouts, resets)."""


class SalesforceLimitError(TerminalError):
    """The org's remaining daily API requests are below the spec's floor: the extract did not start."""


class SalesforceJobError(TransientError):
    """A Bulk API 2.0 query job failed, was aborted or timed out (a rerun creates a new job)."""
