"""The hook of the ``api`` source: an Airflow ``http`` connection in, an ``httpx`` client out.

It is the HTTP provider's :class:`~airflow.providers.http.hooks.http.HttpHook` (same connection
type, the same base URL from host/schema/port, the provider's transport extras ``verify``, ``cert``,
``timeout``, ``proxies``, ``trust_env``, and extras that are not options become default headers as
with the provider) plus an ``httpx`` client and the auth kind of the extra ``auth_kind``
(:mod:`bulksync.hooks.api_auth`). Mutual TLS: the extra ``cert`` (a PEM path, or ``[cert, key]``)
with ``client_key``. Nothing secret is logged.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from typing import Any

import httpx
from airflow.providers.http.hooks.http import HttpHook

from bulksync.hooks.api_auth import Authenticator, make_authenticator
from bulksync.hooks.base import get_connection

log = logging.getLogger(__name__)

# extras that configure the client or the auth: never sent as headers
OPTION_EXTRAS = {
    # the provider's transport options
    "stream",
    "cert",
    "proxies",
    "proxy",
    "timeout",
    "verify",
    "verify_ssl",
    "allow_redirects",
    "max_redirects",
    "trust_env",
    "check_response",
    "srv_lookup",
    # bulksync's
    "headers",
    "client_key",
    "auth_kind",
    "api_key",
    "api_key_header",
    "api_key_param",
    "token",
    "token_prefix",
    "token_url",
    "client_id",
    "client_secret",
    "client_auth",
    "scope",
    "audience",
    "resource",
    "refresh_token",
    "rotating_refresh_token",
    "client_email",
    "private_key",
    "private_key_file",
    "subject",
    "tenant_id",
    "authority_host",
    "account",
    "consumer_key",
    "consumer_secret",
    "token_id",
    "token_secret",
    "requests_per_second",
}


class _Cookies(httpx.Cookies):
    """A client's cookie jar that skips the jar's round trip for answers that set no cookie (most API pages).

    ``httpx`` hands every response to :meth:`http.cookiejar.CookieJar.extract_cookies`, through a
    ``urllib`` request and an ``email`` message built from all the headers, even when there is no
    ``Set-Cookie``; that copying was a fair part of the client's own time per page. Answers that do set
    cookies (session cookies of SAP Gateway's CSRF handshake, load balancers) go through the jar as before.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        """Store the cookies ``response`` sets (``Set-Cookie``, ``Set-Cookie2``), if any."""
        if "set-cookie" in response.headers or "set-cookie2" in response.headers:
            super().extract_cookies(response)


class ApiClientSession(httpx.Client):
    """An ``httpx.Client`` whose cookie jar is a :class:`_Cookies` (same cookies, less work per answer)."""

    def __init__(self, **kwargs: Any) -> None:
        cookies = kwargs.pop("cookies", None)
        super().__init__(**kwargs)
        self._jar = _Cookies(cookies)

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        """The cookies the client sends (and stores from answers)."""
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _Cookies(cookies)


class ApiHook(HttpHook):
    """An ``http`` connection for the ``api`` source.

    Args:
        http_conn_id: the Airflow connection id.
        timeout: default seconds per request (the extra ``timeout`` wins).
        max_connections: size of the client's connection pool (parent fan-out concurrency).
    """

    hook_name = "HTTP API (bulksync api source)"

    def __init__(self, http_conn_id: str, timeout: float = 60.0, max_connections: int = 8) -> None:
        super().__init__(method="GET", http_conn_id=http_conn_id)
        self.timeout = timeout
        self.max_connections = max_connections

    @cached_property
    def connection(self) -> Any:
        """The Airflow connection (a clear error when it is not defined)."""
        return get_connection(self.http_conn_id)

    @cached_property
    def extras(self) -> dict[str, Any]:
        """The connection's extras."""
        return dict(self.connection.extra_dejson or {})

    @cached_property
    def api_base_url(self) -> str:
        """The base URL, built as the provider does (host, schema, port)."""
        self._set_base_url(self.connection)
        return self.base_url.rstrip("/")

    @cached_property
    def transport(self) -> dict[str, Any]:
        """``httpx`` keyword arguments: one TLS context (CA bundle, client certificate), proxy, timeout."""
        import ssl

        e = self.extras
        verify: Any = e.get("verify", e.get("verify_ssl", True))
        if isinstance(verify, str) and verify.lower() in ("true", "false"):
            verify = verify.lower() == "true"
        if verify is False:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        elif isinstance(verify, str):  # a CA bundle file or folder
            is_dir = os.path.isdir(verify)
            ctx = ssl.create_default_context(cafile=None if is_dir else verify, capath=verify if is_dir else None)
        else:
            ctx = None  # httpx's default: certifi, or SSL_CERT_FILE / SSL_CERT_DIR with trust_env
        cert = e.get("cert")
        if cert:  # mutual TLS
            ctx = ctx or ssl.create_default_context()
            if isinstance(cert, list | tuple):
                ctx.load_cert_chain(*cert)
            else:
                ctx.load_cert_chain(cert, e.get("client_key") or None)
        kwargs: dict[str, Any] = {"timeout": float(e.get("timeout") or self.timeout)}
        if ctx is not None:
            kwargs["verify"] = ctx
        proxy = e.get("proxy") or e.get("proxies")
        if isinstance(proxy, dict):
            proxy = proxy.get("https") or proxy.get("http")
        if proxy:
            kwargs["proxy"] = proxy
        if "trust_env" in e:
            kwargs["trust_env"] = str(e["trust_env"]).lower() not in ("false", "0")
        return kwargs

    @cached_property
    def default_headers_of_connection(self) -> dict[str, str]:
        """Headers from the extra ``headers`` and, as with the provider, from extras that are not options."""
        headers = {str(k): str(v) for k, v in dict(self.extras.get("headers") or {}).items()}
        loose = {k: str(v) for k, v in self.extras.items() if k not in OPTION_EXTRAS and isinstance(v, str | int)}
        if loose:
            log.info(
                "connection %s: extras sent as headers (as the HTTP provider does): %s",
                self.http_conn_id,
                sorted(loose),
            )
        return {**loose, **headers}

    @cached_property
    def authenticator(self) -> Authenticator:
        """The auth of the connection's ``auth_kind``."""
        fields = {**self.extras, "login": self.connection.login, "password": self.connection.password}
        return make_authenticator(self.http_conn_id, fields, self.transport)

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> Any:
        """An ``httpx.Client`` on the base URL (the provider's hook returns a requests Session here)."""
        return self.client(headers)

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """A new ``httpx.Client`` (close it, or use it as a context manager)."""
        return ApiClientSession(
            base_url=self.api_base_url,
            headers={"Accept": "application/json", **self.default_headers_of_connection, **(headers or {})},
            limits=httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections),
            **self.transport,
        )

    def describe(self) -> str:
        """``conn_id (host, auth kind)`` for log lines and errors (no secrets)."""
        return f"{self.http_conn_id} ({self.api_base_url}, {self.authenticator.describe()})"

    def test_connection(self) -> tuple[bool, str]:
        """The provider's connection test, through httpx."""
        try:
            with self.client() as client:
                request = client.build_request("GET", "/")
                self.authenticator.apply(request)
                resp = client.send(request)
            return True, f"HTTP {resp.status_code}"
        except Exception as exc:  # noqa: BLE001 - report any failure to the UI
            return False, type(exc).__name__
