"""The Salesforce hook: the provider's ``SalesforceHook`` plus OAuth 2.0 against a login URL.

simple_salesforce sends its own logins to ``https://{domain}.salesforce.com``. My Domain orgs,
sandboxes and bulksync's local sandbox need the token from another host, so when the connection has
the extra ``login_url`` this hook performs the OAuth 2.0 flow itself and hands the access token and
``instance_url`` to simple_salesforce (which then skips its own login). Supported grants, picked
from the extras present:

- ``refresh_token`` (+ ``consumer_key``, optional ``consumer_secret``): refresh token flow;
- ``private_key`` or ``private_key_file_path`` (+ ``consumer_key``, login = username): JWT bearer;
- ``consumer_key`` + ``consumer_secret``: client credentials.

The extra ``ca_bundle`` (a PEM file) is the trust store of every request (``requests.Session.verify``).
Without ``login_url`` the hook behaves like the provider's. Tokens and secrets are never logged and
never put into exception messages: the access token (session id) and any refresh token obtained at
run time are registered with the secret scrubber (:mod:`bulksync.scrub`) the moment they arrive, so a
log line, a traceback or a stored report that happens to contain one shows ``***``.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property
from typing import Any

import requests
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from simple_salesforce import Salesforce, api

from bulksync import scrub
from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.hooks.base import get_connection

log = logging.getLogger(__name__)

TOKEN_PATH = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def mask_tokens(*tokens: str | None) -> None:
    """Register tokens obtained at run time with bulksync's scrubber: every log record of the process.

    Not with Airflow's secrets masker as well (what :func:`bulksync.hooks.base.register_secrets`
    adds): it recompiles one regular expression of every secret it knows on each addition, which
    made a renewal cost seconds once a process had re-authenticated a few hundred times (short
    token lifetimes, one long write-back). The records our code, simple_salesforce and urllib3 log
    go through the scrubber all the same.
    """
    scrub.install()
    scrub.SCRUBBER.add(*tokens)


class BulksyncSalesforceHook(SalesforceHook):
    """A ``SalesforceHook`` that can log in through a connection's own OAuth 2.0 login URL.

    Args:
        salesforce_conn_id: Airflow connection id (type ``salesforce``).
        session_id: an access token to use as is (as the provider's hook; ignored with ``login_url``).
        session: a ``requests.Session`` to use instead of one built from the extras.
        timeout: seconds allowed for the token request.
    """

    def __init__(
        self,
        salesforce_conn_id: str = SalesforceHook.default_conn_name,
        session_id: str | None = None,
        session: requests.Session | None = None,
        *,
        timeout: float = 60,
    ) -> None:
        super().__init__(salesforce_conn_id=salesforce_conn_id, session_id=session_id, session=session)
        self._given_session = session
        self.timeout = timeout
        self.reauthentications = 0

    @cached_property
    def connection(self) -> Any:
        """The Airflow connection (a clear error when it is not defined)."""
        return get_connection(self.conn_id)

    @cached_property
    def extras(self) -> dict[str, Any]:
        """The connection's extras."""
        return dict(self.connection.extra_dejson or {})

    def extra(self, name: str) -> Any:
        """One extra (plain or ``extra__salesforce__`` prefixed), ``None`` when empty."""
        return self._get_field(self.extras, name)

    @property
    def login_url(self) -> str | None:
        """The OAuth 2.0 login URL of the connection, when set."""
        url = self.extra("login_url")
        return str(url).rstrip("/") if url else None

    @cached_property
    def http_session(self) -> requests.Session:
        """The ``requests.Session`` every call goes through (trusting the ``ca_bundle`` extra)."""
        if self._given_session is not None:
            return self._given_session
        session = requests.Session()
        ca = self.extra("ca_bundle")
        if ca:
            session.verify = str(ca)
            # with trust_env, requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify
            session.trust_env = False
        return session

    @cached_property
    def conn(self) -> api.Salesforce:
        """The simple_salesforce client, logged in (cached)."""
        self.session = self.http_session
        if not self.login_url:
            sf = super().conn
            mask_tokens(getattr(sf, "session_id", None))  # the provider's own login (username/password…)
            return sf
        token, instance_url = self.fetch_token()
        return Salesforce(
            session_id=token,
            instance_url=instance_url,
            session=self.http_session,
            version=self.extra("version") or api.DEFAULT_API_VERSION,
        )

    def reauthenticate(self) -> None:
        """Get a new access token (after ``INVALID_SESSION_ID``) and put it into the client."""
        sf = self.get_conn()
        self.reauthentications += 1
        if self.login_url:
            token, _ = self.fetch_token()
            sf.session_id = token
            sf._generate_headers()
        elif getattr(sf, "_salesforce_login_partial", None) is not None:
            sf._refresh_session()
            mask_tokens(sf.session_id)
        else:
            raise ConfigurationError(
                f"the Salesforce session of connection {self.conn_id!r} expired and it has no login to renew it: "
                "set login_url and OAuth credentials (or username/password) on the connection"
            )
        log.info("re-authenticated Salesforce connection %s", self.conn_id)

    # -- OAuth 2.0 --------------------------------------------------------------------------

    def grant(self) -> dict[str, str]:
        """The token request's form fields for the grant the extras describe (holds secrets)."""
        key = self.extra("consumer_key") or self.extra("client_id")
        secret = self.extra("consumer_secret") or self.extra("client_secret")
        refresh = self.extra("refresh_token")
        private_key = self.extra("private_key")
        if not private_key and self.extra("private_key_file_path"):
            with open(self.extra("private_key_file_path"), encoding="utf-8") as f:
                private_key = f.read()
        if refresh and key:
            form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": key}
            return {**form, "client_secret": secret} if secret else form
        if private_key and key and self.connection.login:
            return {"grant_type": JWT_GRANT, "assertion": self._jwt(key, self.connection.login, private_key)}
        if key and secret:
            return {"grant_type": "client_credentials", "client_id": key, "client_secret": secret}
        raise ConfigurationError(
            f"Salesforce connection {self.conn_id!r} has login_url but no OAuth credentials: set extras "
            "consumer_key + consumer_secret (client credentials), consumer_key + private_key and the login "
            "(JWT bearer), or consumer_key + refresh_token"
        )

    def _jwt(self, key: str, username: str, private_key: str) -> str:
        import jwt

        audience = self.extra("jwt_audience") or self.login_url
        claims = {"iss": key, "sub": username, "aud": audience, "exp": int(time.time()) + 180}
        try:
            return str(jwt.encode(claims, private_key, algorithm="RS256"))
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigurationError(
                f"the private key of Salesforce connection {self.conn_id!r} cannot sign a JWT "
                f"({type(exc).__name__}); give an RSA private key in PEM format"
            ) from None

    def fetch_token(self, attempts: int = 5) -> tuple[str, str]:
        """Run the OAuth 2.0 flow against ``login_url``; returns ``(access_token, instance_url)``.

        HTTP 429/5xx answers and dropped connections are retried ``attempts`` times with backoff.

        Raises:
            ConfigurationError: the login was refused (the message has Salesforce's error, no secret).
            SourceConnectionError: the login URL could not be reached or kept answering 429/5xx.
        """
        url = f"{self.login_url}{TOKEN_PATH}"
        form = self.grant()
        for attempt in range(1, attempts + 1):
            problem = None
            try:
                resp = self.http_session.post(url, data=form, timeout=self.timeout)
            except requests.exceptions.SSLError as exc:
                raise ConfigurationError(
                    f"TLS verification of {self.login_url} failed for Salesforce connection {self.conn_id!r}: set "
                    f"the extra ca_bundle to the server's CA certificate ({type(exc).__name__})"
                ) from None
            except requests.RequestException as exc:
                problem = type(exc).__name__
            else:
                if resp.status_code >= 500 or resp.status_code == 429:
                    problem = f"HTTP {resp.status_code}"
            if problem is None:
                break
            if attempt == attempts:
                raise SourceConnectionError(
                    f"the Salesforce login URL {self.login_url} of connection {self.conn_id!r} failed {attempts} "
                    f"times ({problem}); will retry"
                )
            log.warning("Salesforce login failed (%s), attempt %d of %d; retrying", problem, attempt, attempts)
            time.sleep(min(0.25 * 2**attempt, 10))
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or "access_token" not in body:
            error = body.get("error", f"HTTP {resp.status_code}")
            desc = body.get("error_description", "")
            raise ConfigurationError(
                f"Salesforce login of connection {self.conn_id!r} at {self.login_url} failed "
                f"({form['grant_type'].rsplit(':', 1)[-1]} grant): {error} {desc}".rstrip()
                + ". Check the connection's consumer key, secret, key or refresh token"
            )
        mask_tokens(str(body["access_token"]), body.get("refresh_token"))
        instance_url = body.get("instance_url") or self.extra("instance_url")
        if not instance_url:
            raise ConfigurationError(f"the Salesforce login of connection {self.conn_id!r} returned no instance_url")
        log.info("logged in to Salesforce connection %s (%s grant)", self.conn_id, form["grant_type"].split(":")[-1])
        return str(body["access_token"]), str(instance_url)
