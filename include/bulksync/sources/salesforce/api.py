"""HTTP calls to Salesforce through the hook's simple_salesforce session, with retries.

Every call goes through :meth:`SalesforceApi.request`:

- 429, 502, 503, 504, ``REQUEST_LIMIT_EXCEEDED``/``SERVER_UNAVAILABLE``, timeouts and dropped
  connections are retried with exponential backoff and jitter; a ``Retry-After`` header sets the
  wait (capped at ``retry_max_wait_seconds``);
- ``INVALID_SESSION_ID`` (401) re-authenticates through the hook and retries — every time a 401
  follows a successful call (a long run outlives several token lifetimes); only
  ``MAX_CONSECUTIVE_REAUTH`` rejections in a row, with a fresh token each time, fail the task.
  Threads sharing the client re-authenticate once per expired token, not once each;
- ``REQUEST_LIMIT_EXCEEDED`` with ``TotalRequests Limit exceeded`` (the org's rolling 24-hour API
  request allocation is used up) is not retried: it cannot clear for hours, so it fails at once
  (:class:`SalesforceDailyLimitError`) saying when capacity returns and what to do;
- any other error fails at once with Salesforce's own ``errorCode`` and message.

It counts the calls made (retries included) and keeps the last ``Sforce-Limit-Info`` usage, so the
extract can record them in the manifest.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import requests
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from bulksync.hooks.salesforce import BulksyncSalesforceHook
from bulksync.sources.salesforce.errors import (
    SalesforceApiError,
    SalesforceDailyLimitError,
    SalesforceTransientError,
)

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
RETRY_CODES = {"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "QUERY_TIMEOUT"}
MAX_CONSECUTIVE_REAUTH = 2
"""401s in a row (each after a fresh token) before the session is declared unusable."""
DAILY_LIMIT_MARK = "TotalRequests"


class _Retry(Exception):
    """One transient failure; carries the server's Retry-After (seconds) when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _SessionExpired(Exception):
    """INVALID_SESSION_ID: re-authenticate, then retry. Carries the token the refused request used."""

    def __init__(self, message: str, token: str | None) -> None:
        super().__init__(message)
        self.token = token


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
        self.reauthentications = 0
        self.api_usage: str | None = None
        self._sleep = sleep
        self._auth_lock = threading.Lock()
        self._count_lock = threading.Lock()

    @property
    def reauthenticated(self) -> bool:
        """True once the run had to renew its token."""
        return self.reauthentications > 0

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
        data: bytes | None = None,
        content_type: str | None = None,
        attempts: int | None = None,
    ) -> Any:
        """Send one request, retrying transient failures; return ``read(response)`` (default: JSON).

        ``read`` runs inside the retried block, so a connection dropped while the body downloads is
        retried like any other transient failure. ``data`` is sent as the raw body (with
        ``content_type``), e.g. the CSV of an ingest job.

        Raises:
            SalesforceApiError: a permanent error (the message has Salesforce's code and text).
            SalesforceDailyLimitError: the org's 24-hour API request limit is used up.
            SalesforceTransientError: still failing after ``max_attempts``.
        """
        reader = read or _json_or_none
        opts = self.options
        sleep_kw: dict[str, Any] = {"sleep": self._sleep} if self._sleep else {}
        rejected = 0
        while True:
            retrying = Retrying(
                stop=stop_after_attempt(attempts or opts.max_attempts),
                wait=self._wait,
                retry=retry_if_exception_type(_Retry),
                before_sleep=self._before_sleep,
                reraise=True,
                **sleep_kw,
            )
            try:
                for attempt in retrying:
                    with attempt:
                        return self._once(
                            method,
                            path,
                            json=json,
                            params=params,
                            accept=accept,
                            read=reader,
                            data=data,
                            content_type=content_type,
                        )
            except _Retry as exc:
                raise SalesforceTransientError(
                    f"Salesforce {method} {_short(path)} still failing after {attempts or opts.max_attempts} attempts: "
                    f"{exc}; "
                    "the task will be retried"
                ) from None
            except _SessionExpired as exc:
                rejected += 1
                if rejected > MAX_CONSECUTIVE_REAUTH:
                    raise SalesforceApiError(
                        f"Salesforce rejected the session of connection {self.hook.conn_id!r} {rejected} times in a "
                        "row, each time with a fresh token (INVALID_SESSION_ID): check the connected app's "
                        "permissions, IP restrictions and session policies",
                        code="INVALID_SESSION_ID",
                        status=401,
                    ) from None
                self._renew(exc.token)

    def _renew(self, refused: str | None) -> None:
        """Get a new token unless another thread already replaced the refused one."""
        with self._auth_lock:
            if refused is not None and self.sf.session_id != refused:
                return  # renewed meanwhile by another call: just retry with the current token
            log.warning(
                "Salesforce answered INVALID_SESSION_ID (token expired); re-authenticating connection %s "
                "(renewal %d of this run)",
                self.hook.conn_id,
                self.reauthentications + 1,
            )
            self.hook.reauthenticate()
            self.reauthentications += 1

    def _once(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: dict[str, Any] | None,
        accept: str,
        read: Callable[[requests.Response], Any],
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        sf = self.sf
        token = sf.session_id
        headers = {**sf.headers, "Accept": accept}
        headers.pop("X-PrettyPrint", None)
        if content_type:
            headers["Content-Type"] = content_type
        with self._count_lock:
            self.calls += 1
        try:
            resp = sf.session.request(
                method,
                self.url(path),
                headers=headers,
                json=json,
                data=data,
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
            self._raise_for(resp, method, path, token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for(self, resp: requests.Response, method: str, path: str, token: str | None = None) -> None:
        code, message = _error_of(resp)
        status = resp.status_code
        if status == 401 or code == "INVALID_SESSION_ID":
            raise _SessionExpired(message, token)
        if code == "REQUEST_LIMIT_EXCEEDED" and DAILY_LIMIT_MARK in message:
            raise self._daily_limit(message)
        if status in RETRY_STATUS or code in RETRY_CODES:
            raise _Retry(f"HTTP {status} {code}: {message}".strip(), _retry_after(resp))
        raise SalesforceApiError(
            f"Salesforce refused {method} {_short(path)}: {code or 'HTTP ' + str(status)}: {message}",
            code=code,
            status=status,
        )

    def _daily_limit(self, message: str) -> SalesforceDailyLimitError:
        now = dt.datetime.now(dt.UTC)
        usage = f" (last Sforce-Limit-Info: {self.api_usage})" if self.api_usage else ""
        return SalesforceDailyLimitError(
            f"the Salesforce org of connection {self.hook.conn_id!r} has used up its 24-hour API request limit "
            f"(REQUEST_LIMIT_EXCEEDED: {message}){usage}; nothing more is sent and retrying now cannot help. "
            "The limit is a rolling 24-hour window: requests stop counting 24 hours after they were made, so "
            f"capacity comes back gradually and fully by {now + dt.timedelta(hours=24):%Y-%m-%d %H:%M} UTC at the "
            "latest. Rerun the task later (check /limits DailyApiRequests.Remaining first), stop other "
            "integrations using this org, or ask Salesforce for a higher limit",
            reset_at=now + dt.timedelta(hours=24),
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
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
            with self._count_lock:
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
            "reauthentications": self.reauthentications,
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
