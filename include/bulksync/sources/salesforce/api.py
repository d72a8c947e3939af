"""HTTP calls to Salesforce through the hook's simple_salesforce session, with retries.

Every call goes through :meth:`SalesforceApi.request`:

- 429, 502, 503, 504, ``REQUEST_LIMIT_EXCEEDED``/``SERVER_UNAVAILABLE``, timeouts and dropped
  connections are retried with exponential backoff and jitter; a ``Retry-After`` header sets the
  wait (capped at ``retry_max_wait_seconds``);
- ``INVALID_SESSION_ID`` (401) re-authenticates once through the hook, then retries;
- any other error fails at once with Salesforce's own ``errorCode`` and message.

It counts the calls made (retries included) and keeps the last ``Sforce-Limit-Info`` usage, so the
extract can record them in the manifest.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import requests
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from bulksync.hooks.salesforce import BulksyncSalesforceHook
from bulksync.sources.salesforce.errors import SalesforceApiError, SalesforceTransientError

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
RETRY_CODES = {"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "QUERY_TIMEOUT"}


class _Retry(Exception):
    """One transient failure; carries the server's Retry-After (seconds) when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _SessionExpired(Exception):
    """INVALID_SESSION_ID: re-authenticate, then retry."""


class SalesforceApi:
    """Salesforce REST and Bulk API 2.0 calls with retries, re-authentication and call counting.

    Args:
        hook: the connection's hook (auth, session, instance URL).
        options: the source's :class:`~bulksync.spec.salesforce.SalesforceOptions` (timeouts, retries).
        sleep: the wait function (tests pass a fast one).
    """

    def __init__(
        self, hook: BulksyncSalesforceHook, options: Any, sleep: Callable[[float], None] | None = None
    ) -> None:
        self.hook = hook
        self.options = options
        self.calls = 0
        self.retries = 0
        self.reauthenticated = False
        self.api_usage: str | None = None
        self._sleep = sleep

    @property
    def sf(self) -> Any:
        """The logged-in simple_salesforce client."""
        return self.hook.get_conn()

    def url(self, path: str) -> str:
        """Absolute URL of a path under ``/services/data/vNN.N/`` (absolute URLs pass through)."""
        if path.startswith("https://"):
            return path
        if path.startswith("/services/"):
            return f"https://{self.sf.sf_instance}{path}"
        return self.sf.base_url + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        accept: str = "application/json",
        read: Callable[[requests.Response], Any] | None = None,
    ) -> Any:
        """Send one request, retrying transient failures; return ``read(response)`` (default: JSON).

        ``read`` runs inside the retried block, so a connection dropped while the body downloads is
        retried like any other transient failure.

        Raises:
            SalesforceApiError: a permanent error (the message has Salesforce's code and text).
            SalesforceTransientError: still failing after ``max_attempts``.
        """
        reader = read or _json_or_none
        opts = self.options
        sleep_kw: dict[str, Any] = {"sleep": self._sleep} if self._sleep else {}
        retrying = Retrying(
            stop=stop_after_attempt(opts.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((_Retry, _SessionExpired)),
            before_sleep=self._before_sleep,
            reraise=True,
            **sleep_kw,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, json=json, params=params, accept=accept, read=reader)
        except _Retry as exc:
            raise SalesforceTransientError(
                f"Salesforce {method} {_short(path)} still failing after {opts.max_attempts} attempts: {exc}; "
                "the task will be retried"
            ) from None
        except _SessionExpired:
            raise SalesforceApiError(
                f"Salesforce rejected the session of connection {self.hook.conn_id!r} again after re-authenticating "
                "(INVALID_SESSION_ID): check the connected app's permissions and session policies",
                code="INVALID_SESSION_ID",
                status=401,
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: dict[str, Any] | None,
        accept: str,
        read: Callable[[requests.Response], Any],
    ) -> Any:
        sf = self.sf
        headers = {**sf.headers, "Accept": accept}
        headers.pop("X-PrettyPrint", None)
        self.calls += 1
        try:
            resp = sf.session.request(
                method,
                self.url(path),
                headers=headers,
                json=json,
                params=params,
                timeout=self.options.request_timeout_seconds,
                stream=True,
            )
        except requests.exceptions.SSLError as exc:
            raise SalesforceApiError(
                f"TLS verification failed for {sf.sf_instance} (connection {self.hook.conn_id!r}): set the "
                f"connection extra ca_bundle to the server's CA certificate ({type(exc).__name__})"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(f"{type(exc).__name__} talking to {sf.sf_instance}") from None
        with resp:
            usage = resp.headers.get("Sforce-Limit-Info")
            if usage:
                self.api_usage = usage
            if resp.status_code < 300:
                try:
                    return read(resp)
                except (
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.HTTPError,
                ) as exc:
                    raise _Retry(f"connection dropped while reading the response ({type(exc).__name__})") from None
            self._raise_for(resp, method, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for(self, resp: requests.Response, method: str, path: str) -> None:
        code, message = _error_of(resp)
        status = resp.status_code
        if status == 401 or code == "INVALID_SESSION_ID":
            if self.reauthenticated:
                raise _SessionExpired(message)
            self.reauthenticated = True
            log.warning("Salesforce answered INVALID_SESSION_ID; re-authenticating once")
            self.hook.reauthenticate()
            raise _SessionExpired(message)
        if status in RETRY_STATUS or code in RETRY_CODES:
            raise _Retry(f"HTTP {status} {code}: {message}".strip(), _retry_after(resp))
        raise SalesforceApiError(
            f"Salesforce refused {method} {_short(path)}: {code or 'HTTP ' + str(status)}: {message}",
            code=code,
            status=status,
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _SessionExpired):
            return 0.0
        opts = self.options
        backoff = opts.retry_initial_wait_seconds * (2 ** (state.attempt_number - 1))
        wait = random.uniform(0.5, 1.0) * backoff
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return float(min(wait, opts.retry_max_wait_seconds))

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retry):
            self.retries += 1
            log.warning(
                "Salesforce transient failure (attempt %d of %d): %s; retrying in %.1fs",
                state.attempt_number,
                self.options.max_attempts,
                exc,
                state.upcoming_sleep,
            )

    def stats(self) -> dict[str, Any]:
        """Calls made, retries and the last usage Salesforce reported (for the manifest)."""
        return {
            "api_calls": self.calls,
            "retries": self.retries,
            "reauthenticated": self.reauthenticated,
            "api_usage": self.api_usage,
        }


def _json_or_none(resp: requests.Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        return None
    return resp.json()


def _error_of(resp: requests.Response) -> tuple[str, str]:
    """Salesforce's ``errorCode`` and ``message`` (a JSON array of errors, or an OAuth-style object)."""
    try:
        body = resp.json()
    except ValueError:
        return "", (resp.text or "")[:300].strip()
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return str(first.get("errorCode", "")), str(first.get("message", ""))
    if isinstance(body, dict):
        return str(body.get("errorCode") or body.get("error") or ""), str(
            body.get("message") or body.get("error_description") or ""
        )
    return "", str(body)[:300]


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        import email.utils

        parsed = email.utils.parsedate_to_datetime(value)
        import datetime as dt

        return max(0.0, (parsed - dt.datetime.now(dt.UTC)).total_seconds())


def _short(path: str) -> str:
    """A path for messages: without query string (it may hold SOQL) and host."""
    return path.split("?", 1)[0].split("/services/data/", 1)[-1]
