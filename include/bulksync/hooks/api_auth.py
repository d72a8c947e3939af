"""Auth kinds of ``api`` connections (the extra ``auth_kind`` of an Airflow ``http`` connection).

Each kind turns a connection into an :class:`Authenticator` that signs outgoing ``httpx`` requests
and can be told that its credentials were refused (401), after which the next request
re-authenticates. Secrets come from the connection (``password`` and extras) and are never logged,
put into exceptions or returned by :meth:`Authenticator.describe`.

Kinds and their fields (``login``/``password`` are the connection's own fields):

- ``none``;
- ``api_key``: ``api_key`` (or password), ``api_key_header`` (default ``X-API-Key``) or ``api_key_param``;
- ``bearer``: ``token`` (or password), a static token (HubSpot private app, Okta SSWS with ``token_prefix``);
- ``basic``: login + password;
- ``oauth2_client_credentials``: ``token_url``, client id (login or ``client_id``), secret (password or
  ``client_secret``), optional ``scope``, ``audience``, ``client_auth`` (``body`` or ``basic``);
- ``oauth2_refresh_token``: as above plus ``refresh_token``; ``rotating_refresh_token: true`` persists
  each new refresh token (see :mod:`bulksync.hooks.api_tokens`);
- ``jwt_bearer`` (RFC 7523, Google service accounts): ``token_url``, issuer (login or ``client_email``),
  ``private_key`` or ``private_key_file``, ``scope``, optional ``subject``, ``audience``;
- ``msal`` (Entra ID for Graph and Dynamics): ``tenant_id``, client id, secret, ``scope``
  (default ``https://graph.microsoft.com/.default``), optional ``authority_host``;
- ``oauth1_tba`` (NetSuite token-based auth, HMAC-SHA256): ``account`` (realm), ``consumer_key``,
  ``consumer_secret``, ``token_id``, ``token_secret``.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.hooks.api_tokens import FileTokenStore, fresh

log = logging.getLogger(__name__)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUTH_KINDS = (
    "none",
    "api_key",
    "bearer",
    "basic",
    "oauth2_client_credentials",
    "oauth2_refresh_token",
    "jwt_bearer",
    "msal",
    "oauth1_tba",
)


class Authenticator:
    """Signs requests for one connection."""

    kind = "none"

    def __init__(self, conn_id: str, fields: dict[str, Any]) -> None:
        self.conn_id, self.fields = conn_id, fields
        self.lock = threading.Lock()
        self.authentications = 0

    def need(self, *names: str) -> list[Any]:
        """The given fields, or a ConfigurationError naming the missing ones (never their values)."""
        missing = [n for n in names if not self.fields.get(n)]
        if missing:
            raise ConfigurationError(
                f"connection {self.conn_id!r} (auth_kind {self.kind}) lacks {', '.join(missing)}: set "
                + ", ".join(f"the extra {n!r}" if n not in ("login", "password") else f"its {n}" for n in missing)
            )
        return [self.fields[n] for n in names]

    def apply(self, request: httpx.Request) -> None:
        """Add credentials to ``request``."""

    def refused(self) -> bool:
        """The API answered 401: forget cached credentials. True when re-authenticating may help."""
        return False

    def describe(self) -> str:
        """What a log line may say about this auth (no secrets)."""
        return self.kind

    def close(self) -> None:
        """Release sessions the auth opened."""


class ApiKeyAuth(Authenticator):
    kind = "api_key"

    def apply(self, request: httpx.Request) -> None:
        key = self.fields.get("api_key") or self.fields.get("password")
        if not key:
            self.need("api_key")
        param = self.fields.get("api_key_param")
        if param:
            request.url = request.url.copy_merge_params({param: key})
        else:
            request.headers[self.fields.get("api_key_header") or "X-API-Key"] = str(key)

    def describe(self) -> str:
        where = self.fields.get("api_key_param") or self.fields.get("api_key_header") or "X-API-Key"
        return f"api_key ({where})"


class BearerAuth(Authenticator):
    kind = "bearer"

    def apply(self, request: httpx.Request) -> None:
        token = self.fields.get("token") or self.fields.get("password")
        if not token:
            self.need("token")
        request.headers["Authorization"] = f"{self.fields.get('token_prefix') or 'Bearer'} {token}"


class BasicAuth(Authenticator):
    kind = "basic"

    def apply(self, request: httpx.Request) -> None:
        user, pw = self.need("login", "password")
        request.headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


class OAuth2Auth(Authenticator):
    """Client credentials, refresh token (optionally rotating) and JWT bearer grants."""

    def __init__(self, conn_id: str, fields: dict[str, Any], kind: str, transport: dict[str, Any]) -> None:
        super().__init__(conn_id, fields)
        self.kind = kind
        self.transport = transport
        self.token: str | None = None
        self.expires_at = 0.0
        self.store = FileTokenStore(conn_id) if fields.get("rotating_refresh_token") else None

    def apply(self, request: httpx.Request) -> None:
        with self.lock:
            if self.token is None or self.expires_at - 30 < time.time():
                self._authenticate()
            request.headers["Authorization"] = f"Bearer {self.token}"

    def refused(self) -> bool:
        with self.lock:
            self.token, self.expires_at = None, 0.0
            if self.store is not None:
                with self.store.locked() as state:
                    state.pop("access_token", None)
                    state.pop("expires_at", None)
        return True

    def describe(self) -> str:
        url = self.fields.get("token_url") or ""
        return f"{self.kind} (token endpoint {urlsplit(str(url)).netloc or '?'})"

    def _client_id(self) -> str:
        return str(self.fields.get("client_id") or self.fields.get("login") or self.need("client_id")[0])

    def _client_secret(self) -> str | None:
        value = self.fields.get("client_secret") or self.fields.get("password")
        return str(value) if value else None

    def _form(self, refresh_token: str | None) -> tuple[dict[str, str], dict[str, str]]:
        headers: dict[str, str] = {}
        form: dict[str, str] = {}
        if self.kind == "jwt_bearer":
            form = {"grant_type": JWT_GRANT, "assertion": self._assertion()}
        else:
            client_id, secret = self._client_id(), self._client_secret()
            if self.kind == "oauth2_refresh_token":
                form = {"grant_type": "refresh_token", "refresh_token": str(refresh_token)}
            else:
                form = {"grant_type": "client_credentials"}
            if self.fields.get("client_auth") == "basic" and secret:
                headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
            else:
                form["client_id"] = client_id
                if secret:
                    form["client_secret"] = secret
        for name in ("scope", "audience", "resource"):
            if self.fields.get(name) and self.kind != "jwt_bearer":
                form[name] = str(self.fields[name])
        return form, headers

    def _assertion(self) -> str:
        import jwt

        issuer = self.fields.get("client_email") or self.fields.get("login") or self.need("client_email")[0]
        key = self.fields.get("private_key")
        if not key and self.fields.get("private_key_file"):
            with open(str(self.fields["private_key_file"]), encoding="utf-8") as f:
                key = f.read()
        if not key:
            self.need("private_key")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": self.fields.get("audience") or self.need("token_url")[0],
            "iat": now,
            "exp": now + 300,
        }
        if self.fields.get("scope"):
            claims["scope"] = self.fields["scope"]
        if self.fields.get("subject"):
            claims["sub"] = self.fields["subject"]
        try:
            return str(jwt.encode(claims, str(key), algorithm="RS256"))
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigurationError(
                f"the private key of connection {self.conn_id!r} cannot sign a JWT ({type(exc).__name__}); "
                "give an RSA private key in PEM format"
            ) from None

    def _authenticate(self) -> None:
        if self.store is None:
            refresh = self.fields.get("refresh_token") if self.kind == "oauth2_refresh_token" else None
            if self.kind == "oauth2_refresh_token" and not refresh:
                self.need("refresh_token")
            body = self._request(refresh)
            self._take(body)
            return
        with self.store.locked() as state:
            cached = fresh(state)
            if cached:  # another task refreshed while we waited for the lock
                self.token, self.expires_at = cached, float(state["expires_at"])
                return
            refresh = state.get("refresh_token") or self.fields.get("refresh_token")
            if not refresh:
                self.need("refresh_token")
            body = self._request(str(refresh))
            self._take(body)
            if body.get("refresh_token"):
                state["refresh_token"] = str(body["refresh_token"])
            state["access_token"], state["expires_at"] = self.token, self.expires_at

    def _take(self, body: dict[str, Any]) -> None:
        self.token = str(body["access_token"])
        self.expires_at = time.time() + float(body.get("expires_in") or 3600)
        self.authentications += 1
        log.info("authenticated connection %s (%s), token valid %ss", self.conn_id, self.kind, body.get("expires_in"))

    def _request(self, refresh: str | None, attempts: int = 4) -> dict[str, Any]:
        url = str(self.need("token_url")[0])
        form, headers = self._form(refresh)
        resp = None
        with httpx.Client(**self.transport) as client:
            for attempt in range(1, attempts + 1):
                try:
                    resp = client.post(url, data=form, headers=headers)
                except httpx.TransportError as exc:
                    problem = type(exc).__name__
                else:
                    if resp.status_code < 500 and resp.status_code != 429:
                        break
                    problem = f"HTTP {resp.status_code}"
                if attempt == attempts:
                    raise SourceConnectionError(
                        f"the token endpoint {urlsplit(url).netloc} of connection {self.conn_id!r} failed "
                        f"{attempts} times ({problem}); will retry"
                    )
                time.sleep(min(0.2 * 2**attempt, 5))
        assert resp is not None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or "access_token" not in body:
            error = body.get("error", f"HTTP {resp.status_code}") if isinstance(body, dict) else resp.status_code
            desc = body.get("error_description", "") if isinstance(body, dict) else ""
            hint = (
                " The refresh token was already used: another process refreshed it without saving the new one; "
                "set rotating_refresh_token: true on every connection sharing it, then put a new refresh token in"
                if "already used" in str(desc)
                else ""
            )
            raise ConfigurationError(
                f"the token endpoint of connection {self.conn_id!r} refused the {self.kind} grant: {error} "
                f"{desc}".rstrip()
                + f". Check the connection's client id, secret, key or refresh token.{hint}"
            )
        return dict(body)


class MsalAuth(Authenticator):
    """Entra ID (Azure AD) client credentials through MSAL (token cache and discovery included)."""

    kind = "msal"

    def __init__(self, conn_id: str, fields: dict[str, Any], transport: dict[str, Any]) -> None:
        super().__init__(conn_id, fields)
        self.transport = transport
        self._app: Any = None
        self._session: Any = None
        self.token: str | None = None
        self.expires_at = 0.0

    def _application(self) -> Any:
        import msal
        import requests

        if self._app is None:
            tenant = self.need("tenant_id")[0]
            client_id = self.fields.get("client_id") or self.fields.get("login") or self.need("client_id")[0]
            secret = self.fields.get("client_secret") or self.fields.get("password") or self.need("client_secret")[0]
            host = str(self.fields.get("authority_host") or "https://login.microsoftonline.com").rstrip("/")
            session = requests.Session()
            verify = self.fields.get("verify", True)
            session.verify = (
                verify
                if not isinstance(verify, str) or verify.lower() not in ("true", "false")
                else (verify.lower() == "true")
            )
            session.trust_env = False
            self._session = session
            self._app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=secret,
                authority=f"{host}/{tenant}",
                http_client=session,
                instance_discovery=host == "https://login.microsoftonline.com",
                validate_authority=host == "https://login.microsoftonline.com",
            )
        return self._app

    def apply(self, request: httpx.Request) -> None:
        with self.lock:
            if self.token is None or self.expires_at - 30 < time.time():
                scope = str(self.fields.get("scope") or "https://graph.microsoft.com/.default")
                try:
                    result = self._application().acquire_token_for_client(scopes=[scope])
                except Exception as exc:  # noqa: BLE001 - requests/msal transport errors
                    raise SourceConnectionError(
                        f"Entra ID token request of connection {self.conn_id!r} failed ({type(exc).__name__}); "
                        "will retry"
                    ) from None
                if "access_token" not in result:
                    desc = str(result.get("error_description") or "").splitlines()
                    raise ConfigurationError(
                        f"Entra ID refused connection {self.conn_id!r}: {result.get('error')} {desc[0] if desc else ''}"
                        ". Check tenant_id, client id, secret and the app's API permissions"
                    )
                self.token = str(result["access_token"])
                self.expires_at = time.time() + float(result.get("expires_in") or 3600)
                self.authentications += 1
                log.info("authenticated connection %s with Entra ID (msal)", self.conn_id)
            request.headers["Authorization"] = f"Bearer {self.token}"

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def refused(self) -> bool:
        with self.lock:
            self.token, self.expires_at = None, 0.0
            if self._app is not None:  # drop MSAL's cached token too
                for acc in list(self._app.token_cache.search(self._app.token_cache.CredentialType.ACCESS_TOKEN)):
                    self._app.token_cache.remove_at(acc)
        return True


class OAuth1TbaAuth(Authenticator):
    """NetSuite token-based authentication: OAuth 1.0a HMAC-SHA256 with the account as realm."""

    kind = "oauth1_tba"

    def apply(self, request: httpx.Request) -> None:
        from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client

        account, ck, cs, tid, ts = self.need("account", "consumer_key", "consumer_secret", "token_id", "token_secret")
        client = Client(
            ck,
            client_secret=cs,
            resource_owner_key=tid,
            resource_owner_secret=ts,
            signature_method=SIGNATURE_HMAC_SHA256,
            realm=str(account),
        )
        _, headers, _ = client.sign(str(request.url), request.method)
        request.headers["Authorization"] = headers["Authorization"]

    def refused(self) -> bool:
        return True  # a fresh nonce and timestamp may pass (a clock skew), once


def make_authenticator(conn_id: str, fields: dict[str, Any], transport: dict[str, Any]) -> Authenticator:
    """The authenticator of ``fields['auth_kind']`` (default ``none``; ``bearer`` when a token is given)."""
    kind = str(fields.get("auth_kind") or ("bearer" if fields.get("token") else "none"))
    if kind not in AUTH_KINDS:
        raise ConfigurationError(
            f"connection {conn_id!r} has auth_kind {kind!r}; use one of {', '.join(AUTH_KINDS)} "
            "(docs/api.md#connections)"
        )
    if kind in ("oauth2_client_credentials", "oauth2_refresh_token", "jwt_bearer"):
        return OAuth2Auth(conn_id, fields, kind, transport)
    if kind == "msal":
        return MsalAuth(conn_id, fields, transport)
    simple: dict[str, type[Authenticator]] = {
        "none": Authenticator,
        "api_key": ApiKeyAuth,
        "bearer": BearerAuth,
        "basic": BasicAuth,
        "oauth1_tba": OAuth1TbaAuth,
    }
    return simple[kind](conn_id, fields)
