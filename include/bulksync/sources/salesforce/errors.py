"""Errors of the Salesforce source, split like every bulksync error into terminal and transient."""

from __future__ import annotations

from typing import Any

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


class SalesforceDailyLimitError(SalesforceLimitError):
    """The org's rolling 24-hour API request limit (``TotalRequests``) is used up: not retried, it cannot
    clear for hours.

    Attributes:
        reset_at: the latest time by which the whole allocation is available again (24 hours on).
    """

    def __init__(self, message: str, *, reset_at: Any = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at
