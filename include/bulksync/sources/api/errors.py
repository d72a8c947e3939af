"""Errors of the ``api`` source. Every message names the endpoint (method and path, never a query string
that could hold a key), the page, and where it applies the record index and the field."""

from __future__ import annotations

from bulksync.errors import DataError, TerminalError, TransientError


def where(endpoint: str, page: int | None = None, record: int | None = None, field: str | None = None) -> str:
    """``GET /v1/customers, page 3, record 17, field 'amount'``."""
    parts = [endpoint]
    if page is not None:
        parts.append(f"page {page}")
    if record is not None:
        parts.append(f"record {record}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ", ".join(parts)


class ApiTransientError(TransientError):
    """A request failed in a way that may pass (429, 5xx, reset, truncated body); retried with backoff.

    Attributes:
        retry_after: seconds the server asked to wait (``Retry-After`` or rate-limit headers), if any.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiRetriesExhausted(TransientError):
    """A request kept failing transiently for all its attempts: the task fails and Airflow retries it."""


class ApiRequestError(TerminalError):
    """The API refused a request for good (400, 403, 404 …): the message has its status and error text."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiQuotaExhausted(ApiRequestError):
    """A 429 that names a daily (or longer) quota: retrying before it resets cannot pass, so it is terminal."""


class ApiDataError(DataError):
    """A page or a record does not match what the spec declares (non-JSON, HTML, a bad value, a repeated token)."""


class CircuitOpenError(TerminalError):
    """The API kept failing: the circuit breaker stopped the extract instead of burning the retry budget."""
