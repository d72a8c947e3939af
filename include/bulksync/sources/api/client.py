"""The engine's HTTP client: one request with auth, limits, retries, re-authentication and parsing.

Transient failures (429, 500/502/503/504, 408, resets, timeouts, truncated JSON) are retried with
tenacity: exponential backoff with jitter, or the server's ``Retry-After`` / rate-limit reset when it
sent one, capped by ``limits.max_wait_seconds``. A 401 drops the cached token and re-authenticates
(at once, and as often as tokens expire; two 401s in a row on one request are terminal). Every failed
attempt counts toward the circuit breaker. Terminal answers (other 4xx, an HTML page with status 200,
a non-JSON body) raise at once with the endpoint and page named, quoting the vendor's error text. A 429
naming a daily quota (HubSpot ``policyName: DAILY``) is terminal too: no retry can pass before it resets.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import tenacity

from bulksync.errors import ConfigurationError
from bulksync.hooks.api import ApiHook
from bulksync.sources.api.errors import (
    ApiDataError,
    ApiQuotaExhausted,
    ApiRequestError,
    ApiRetriesExhausted,
    ApiTransientError,
    where,
)
from bulksync.sources.api.limits import CircuitBreaker, exhausted_wait, limiter_for, retry_after
from bulksync.spec.api import Limits

log = logging.getLogger(__name__)
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Reauthenticate(Exception):
    pass


@dataclass
class Call:
    """One request: ``url`` is a path under the base URL or an absolute URL of the same host."""

    method: str
    url: str
    label: str
    page: int
    params: dict[str, Any] | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    rate: float | None = None
    """A tighter client-side budget for this kind of request (windowed search), shared per connection."""


@dataclass
class Page:
    """A parsed answer."""

    body: Any
    headers: httpx.Headers
    status: int
    url: str
    number: int
    label: str


class ApiClient:
    """Requests of one extract through one connection (thread-safe: fan-out workers share it)."""

    def __init__(self, hook: ApiHook, limits: Limits, conn_id: str) -> None:
        self.hook, self.limits, self.conn_id = hook, limits, conn_id
        self.http = hook.client()
        self.auth = hook.authenticator
        rate = limits.requests_per_second or _float(hook.extras.get("requests_per_second"))
        self.limiter = limiter_for(conn_id, rate)
        self.breaker = CircuitBreaker(conn_id, limits.breaker_failures)
        self.base = urlsplit(hook.api_base_url)
        self.counts: Counter[str] = Counter()
        self.sign: Any = None
        self._merged: dict[str, httpx.URL] = {}
        self._retrying = self._retry_policy()

    def stats(self) -> dict[str, Any]:
        """Counters for the manifest (requests, retries, re-authentications, statuses, waits)."""
        return {
            **{k: v for k, v in sorted(self.counts.items())},
            "rate_limit_wait_seconds": round(self.limiter.waited, 3),
        }

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    # -- one request --------------------------------------------------------------------------

    def fetch(self, call: Call) -> Page:
        """Send ``call`` until it succeeds, fails for good, or the attempts run out."""
        return self._retrying(self._attempt, call, {"in_a_row": 0}, {"n": 0})

    def _retry_policy(self) -> tenacity.Retrying:
        """The retry policy, one per client (its state is per thread and per call: fan-out workers share it)."""
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.limits.max_attempts + 4),  # re-authentications are free
            wait=self._wait,
            retry=tenacity.retry_if_exception_type((ApiTransientError, _Reauthenticate)),
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Reauthenticate):
            return 0.0
        n = state.attempt_number
        backoff = self.limits.initial_wait_seconds * 2 ** (n - 1) * (0.5 + random.random())
        hinted = exc.retry_after if isinstance(exc, ApiTransientError) else None
        chosen = hinted + random.random() * 0.05 if hinted is not None else backoff
        return float(min(self.limits.max_wait_seconds, chosen))

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, _Reauthenticate):
            call: Call = state.args[0]
            self.counts["retries"] += 1
            log.warning(
                "%s: %s; attempt %d of %d, retrying in %.2fs",
                where(call.label, call.page),
                exc,
                state.attempt_number,
                self.limits.max_attempts,
                state.next_action.sleep if state.next_action else 0,
            )

    def _attempt(self, call: Call, reauths: dict[str, int], failures: dict[str, int]) -> Page:
        """One try of ``call``; the last transient failure allowed becomes :class:`ApiRetriesExhausted`."""
        try:
            return self._once(call, reauths)
        except ApiTransientError as exc:
            failures["n"] += 1
            if failures["n"] >= self.limits.max_attempts:
                last = str(exc).removeprefix(f"{where(call.label, call.page)}: ")  # with the vendor's message
                raise ApiRetriesExhausted(
                    f"{where(call.label, call.page)} failed {failures['n']} times; the last: {last}. The task "
                    "will be retried"
                ) from None
            raise

    def _url(self, call: Call) -> str | httpx.URL:
        if "://" not in call.url:
            return self._under_base(call.url)
        target = urlsplit(call.url)
        if (target.scheme, target.netloc) != (self.base.scheme, self.base.netloc):
            raise ApiDataError(
                f"{where(call.label, call.page)}: the API sent a next link to another host ({target.netloc}); "
                f"bulksync only follows links to {self.base.netloc}, so that the credentials stay there"
            )
        return call.url

    def _under_base(self, path: str) -> httpx.URL:
        """``path`` joined to the base URL as the client joins it, once per path (every page of a cursor or offset
        query asks for the same path: parsing and joining it again is a good part of building a request)."""
        url = self._merged.get(path)
        if url is None:
            if len(self._merged) >= 1024:  # fan-out paths carry the parent id: keep the cache bounded
                self._merged.clear()
            url = self._merged[path] = self.http.build_request("GET", path).url
        return url

    def _once(self, call: Call, reauths: dict[str, int]) -> Page:
        self.breaker.check()
        (limiter_for(f"{self.conn_id}#window", call.rate) if call.rate else self.limiter).acquire()
        request = self.http.build_request(
            call.method, self._url(call), params=call.params or None, json=call.body, headers=call.headers or None
        )
        self.auth.apply(request)
        if self.sign is not None:
            self.sign(request)
        self.counts["requests"] += 1
        label = where(call.label, call.page)
        try:
            resp = self.http.send(request)
        except httpx.TimeoutException as exc:
            self._failed(f"timeout ({type(exc).__name__})")
            raise ApiTransientError(f"{label}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            self._failed(f"connection error ({type(exc).__name__})")
            raise ApiTransientError(f"{label}: connection failed or was reset ({type(exc).__name__})") from None
        status = resp.status_code
        self.counts[f"http_{status}"] += 1
        if status == 401:
            reauths["in_a_row"] += 1
            self._failed("HTTP 401")
            if reauths["in_a_row"] > 2 or not self.auth.refused():
                raise ConfigurationError(
                    f"{label}: the API refused the credentials of connection {self.conn_id!r} (HTTP 401: "
                    f"{_error_text(resp)}); check the connection's secrets and the app's permissions"
                )
            self.counts["reauthentications"] += 1
            log.info("%s: HTTP 401, re-authenticating connection %s", label, self.conn_id)
            raise _Reauthenticate()
        reauths["in_a_row"] = 0
        if status == 429 and (quota := _quota_exhausted(resp)):
            self._failed("HTTP 429 (quota used up)")
            self.counts["throttled"] += 1
            raise ApiQuotaExhausted(
                f"{label}: HTTP 429: {quota}; retrying before the quota resets cannot succeed, so the extract "
                "stopped. Rerun after the reset, or ask the vendor for a higher quota",
                429,
            )
        if status in TRANSIENT_STATUS:
            hint = retry_after(resp.headers)
            if hint is None and status == 429:
                hint = exhausted_wait(resp.headers)
            self._failed(f"HTTP {status}")
            if status == 429:
                self.counts["throttled"] += 1
            raise ApiTransientError(
                f"{label}: HTTP {status} ({_error_text(resp)})"
                + (f", Retry-After {hint:g}s" if hint is not None else ""),
                hint,
            )
        if status >= 400:
            self.breaker.success()
            raise ApiRequestError(f"{label}: HTTP {status}: {_error_text(resp)}", status)
        body = self._parse(resp, label)
        self.breaker.success()
        pause = exhausted_wait(resp.headers)
        if pause:
            self.counts["budget_pauses"] += 1
            self.limiter.pause(min(pause, self.limits.max_wait_seconds))
        return Page(body, resp.headers, status, str(resp.url), call.page, call.label)

    def _failed(self, what: str) -> None:
        self.breaker.failure(what)

    def _parse(self, resp: httpx.Response, label: str) -> Any:
        raw = resp.content
        ctype = resp.headers.get("content-type", "")
        head = raw[:64].lstrip()
        if "html" in ctype or head[:1] == b"<":
            raise ApiDataError(
                f"{label}: the API answered HTTP {resp.status_code} with an HTML page instead of JSON "
                f"({_snippet(raw)!r}); a login page, a proxy or a maintenance page is in the way: check the "
                "connection's host and credentials"
            )
        if not raw or raw.isspace():  # not raw.strip(): that copies the body
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if head[:1] in (b"{", b"[") and ("unexpected end" in str(exc).lower() or "eof" in str(exc).lower()):
                self._failed("truncated JSON")
                raise ApiTransientError(f"{label}: the JSON body was cut short ({len(raw)} bytes)") from None
            raise ApiDataError(
                f"{label}: the body is not JSON ({exc}; content type {ctype or 'none'}, starts {_snippet(raw)!r})"
            ) from None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _snippet(raw: bytes, n: int = 80) -> str:
    return raw[:n].decode("utf-8", "replace").replace("\n", " ")


# 429 bodies that mean a quota for the day (not a burst limit) is used up: retrying within the task cannot pass.
# HubSpot: {"errorType": "RATE_LIMIT", "policyName": "DAILY"} (tests/fixtures/api_recordings/hubspot/
# handwritten_429_and_401_shapes.json; the usage guidelines: the daily limit resets at midnight in the
# account's time zone).
_DAILY_POLICIES = {"DAILY"}


def _quota_exhausted(resp: httpx.Response) -> str | None:
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict) and str(body.get("policyName", "")).upper() in _DAILY_POLICIES:
        return (
            f"{body.get('message') or 'daily limit reached'} (policy {body['policyName']}: the daily request quota "
            "is used up until midnight in the account's time zone)"
        )
    return None


def _error_text(resp: httpx.Response) -> str:
    """The vendor's error message (HubSpot message, Graph error.message, OData error.message.value …)."""
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return _snippet(resp.content, 200) or resp.reason_phrase
    candidates: list[Any] = []
    details: list[str] = []
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            msg = err.get("message")
            candidates += [msg.get("value") if isinstance(msg, dict) else msg, err.get("code")]
            inner = err.get("innererror")  # SAP Gateway: innererror.errordetails[].message
            rows = inner.get("errordetails") if isinstance(inner, dict) else None
            details += [str(d["message"]) for d in rows or () if isinstance(d, dict) and d.get("message")]
        if body.get("errorCode") and body.get("errorSummary"):  # Okta: the code is what is stable
            details.append(str(body["errorCode"]))
        causes = body.get("errorCauses")  # Okta: errorCauses[].errorSummary
        if isinstance(causes, list):
            details += [str(c["errorSummary"]) for c in causes if isinstance(c, dict) and c.get("errorSummary")]
        candidates += [body.get("message"), body.get("errorSummary"), body.get("detail"), body.get("title")]
        candidates += [err if isinstance(err, str) else None]
        if isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0]
            candidates.append(first.get("message") if isinstance(first, dict) else first)
        ns_details = body.get("o:errorDetails")
        if isinstance(ns_details, list) and ns_details:
            candidates.insert(0, ns_details[0].get("detail"))
    text = next((str(c) for c in candidates if c), "") or _snippet(resp.content, 200)
    extra = [d for d in details if d != text]
    return (text + (f" ({'; '.join(extra)})" if extra else ""))[:300]
