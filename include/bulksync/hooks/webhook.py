"""An incoming-webhook client (Slack, Microsoft Teams or any JSON endpoint) from an Airflow connection.

A webhook URL *is* a credential: whoever knows it can post to the channel. The hook keeps it to
itself: the URL, its path, each of its path segments and query values — with their URL-encoded and
base64 forms — are registered with :mod:`bulksync.scrub` (and so with Airflow's secrets masker) as
soon as it is built; they never appear in messages, exceptions or return values, a receiver that
echoes the token (``403 invalid token <token>``) is scrubbed too, and connections are described as
``conn_id (host)``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from airflow.sdk import BaseHook

from bulksync import scrub
from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.hooks.base import get_connection

log = logging.getLogger(__name__)

Flavor = Literal["slack", "teams", "generic"]
FLAVORS: tuple[Flavor, ...] = ("slack", "teams", "generic")

# extra keys the hook reads itself; any other extra of a URI-form connection is the URL's query string
RESERVED_EXTRA = frozenset({"flavor", "webhook_url"})
CONN_TYPE_FLAVORS: dict[str, Flavor] = {"slack": "slack", "slackwebhook": "slack", "msteams": "teams", "teams": "teams"}


@dataclass(frozen=True)
class WebhookResponse:
    """What a webhook answered, without the request URL.

    Attributes:
        status: the HTTP status code.
        retry_after: seconds asked for by a ``Retry-After`` header, if any.
        body: the start of the response body (Slack answers e.g. ``invalid_token``), secrets removed.
    """

    status: int
    retry_after: float | None
    body: str

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300


class WebhookHook(BaseHook):
    """Post JSON to an incoming webhook defined as an Airflow connection.

    The full webhook URL is taken from, in this order:

    1. ``extra.webhook_url``;
    2. a host holding a whole URL (JSON connections:
       ``{"conn_type": "http", "host": "https://hooks.slack.com/services/T/B/X"}``);
    3. scheme, host, port and path of a URI connection
       (``AIRFLOW_CONN_OPS_SLACK='https://hooks.slack.com/services/T/B/X'``, which Airflow parses into
       conn_type ``https``, host and schema = path; its query string lands in ``extra`` and is put back).
       An HTTP-provider style ``schema`` of ``http``/``https`` is taken as the scheme instead.

    A ``password`` is appended as the last path segment (the Slack provider's convention: host
    ``https://hooks.slack.com/services``, password ``T000/B000/XXXX``).

    The flavor (message format) is ``extra.flavor`` (``slack``, ``teams`` or ``generic``), else
    guessed from the host: ``hooks.slack.com`` is Slack, ``*.webhook.office.com`` and
    ``outlook.office(365).com`` are Teams, anything else gets the generic JSON.

    Args:
        conn_id: the Airflow connection id.
    """

    conn_name_attr = "conn_id"
    default_conn_name = "bulksync_webhook_default"
    conn_type = "http"
    hook_name = "bulksync webhook (Slack / Teams / JSON)"

    def __init__(self, conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def __repr__(self) -> str:
        return f"<WebhookHook {self.conn_id}>"

    @cached_property
    def connection(self) -> Any:
        """The Airflow connection (resolved from env vars, secrets backends or the metadata DB)."""
        return get_connection(self.conn_id)

    @cached_property
    def _url(self) -> str:
        """The full webhook URL: a secret, masked in logs; never return or print it."""
        conn = self.connection
        extra = conn.extra_dejson or {}
        host = (conn.host or "").strip()
        if extra.get("webhook_url"):
            url = str(extra["webhook_url"]).strip()
        elif host.lower().startswith(("http://", "https://")):
            url = host
        else:
            conn_type = (conn.conn_type or "").lower()
            schema = (conn.schema or "").strip()
            if schema.lower() in ("http", "https"):
                scheme, path = schema.lower(), ""
            else:
                scheme, path = (conn_type if conn_type in ("http", "https") else "https"), schema
            if not host:
                raise ConfigurationError(
                    f"connection {self.conn_id!r} has no webhook URL: set its host to the full URL "
                    "(https://hooks.slack.com/services/…) or extra.webhook_url"
                )
            url = f"{scheme}://{host}{f':{conn.port}' if conn.port else ''}"
            if path:
                url += "/" + path.lstrip("/")
            query = {k: v for k, v in extra.items() if k not in RESERVED_EXTRA and isinstance(v, str)}
            if query:
                url += "?" + urlencode(query)
        if conn.password:
            base, _, query_string = url.partition("?")
            url = base.rstrip("/") + "/" + str(conn.password).lstrip("/") + (f"?{query_string}" if query_string else "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"connection {self.conn_id!r} does not hold a usable http(s) webhook URL: set its host to the full "
                "URL or extra.webhook_url"
            )
        scrub.register(url, conn.password)
        return url

    @property
    def host(self) -> str:
        """The webhook's host name (safe to show)."""
        return urlsplit(self._url).hostname or ""

    def describe(self) -> str:
        """``conn_id (host)``, for messages: never the URL, whose path is the secret."""
        try:
            return f"{self.conn_id} ({self.host})"
        except ConfigurationError:
            return self.conn_id

    @cached_property
    def flavor(self) -> Flavor:
        """The message format the endpoint expects: ``slack``, ``teams`` or ``generic``."""
        conn = self.connection
        extra = conn.extra_dejson or {}
        if extra.get("flavor"):
            flavor = str(extra["flavor"]).strip().lower()
            if flavor not in FLAVORS:
                raise ConfigurationError(
                    f"connection {self.conn_id!r} has extra.flavor {flavor!r}; use one of {', '.join(FLAVORS)}"
                )
            return flavor  # type: ignore[return-value]
        by_type = CONN_TYPE_FLAVORS.get((conn.conn_type or "").lower())
        if by_type:
            return by_type
        return guess_flavor(self.host)

    @cached_property
    def session(self) -> Any:
        """A ``requests`` session (keeps the connection alive across retries)."""
        import requests

        session = requests.Session()
        session.headers.update({"Content-Type": "application/json", "User-Agent": "bulksync-alerts"})
        return session

    def post(self, body: dict[str, Any], *, timeout: float = 10.0) -> WebhookResponse:
        """POST ``body`` as JSON once (retries are the caller's business).

        Args:
            body: the JSON document to send.
            timeout: connect and read timeout in seconds.

        Returns:
            The status, ``Retry-After`` and the start of the body, with secrets removed.

        Raises:
            SourceConnectionError: the endpoint could not be reached or did not answer in time
                (transient; the message names the connection and host only).
            ConfigurationError: the connection is missing or holds no usable URL.
        """
        import requests

        url = self._url
        try:
            resp = self.session.post(url, json=body, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            # str(exc) holds the URL; only the exception type leaves this function
            raise SourceConnectionError(
                f"webhook {self.describe()} could not be reached ({type(exc).__name__}); check the host and network"
            ) from None
        return WebhookResponse(
            status=resp.status_code,
            retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            body=self.scrub(resp.text[:300]),
        )

    def scrub(self, text: str) -> str:
        """``text`` with the URL and its secret parts, in any of their forms, replaced by ``***``."""
        _ = self._url  # registers the URL's secrets
        return scrub.SCRUBBER.scrub(text)


def guess_flavor(host: str) -> Flavor:
    """The message format of a webhook host (``generic`` when unknown).

    Args:
        host: the host name of the webhook URL.
    """
    host = host.lower()
    if host == "hooks.slack.com" or host.endswith(".hooks.slack.com"):
        return "slack"
    if host.endswith(".webhook.office.com") or host in ("outlook.office.com", "outlook.office365.com"):
        return "teams"
    return "generic"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), or None.

    Args:
        value: the header value.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
