"""Authentication every stand-in shares: an OAuth 2.0 token endpoint, bearer checks, API keys, Basic,
JWT bearer assertions, OAuth 1.0a (HMAC-SHA256) signatures.

The grants follow RFC 6749 (client credentials §4.4, refresh token §6) and RFC 7523 (JWT bearer);
refresh tokens can rotate on every use, as Okta, Salesforce and others allow ("refresh token
rotation": the old token is revoked once used, and re-using it is refused with ``invalid_grant``).
OAuth 1.0a signatures follow RFC 5849 §3.4 (NetSuite token-based authentication signs with
HMAC-SHA256 and puts the account id in ``realm``).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class Unauthorized(Exception):
    """A request's credentials are missing, wrong or expired (``reason``: missing/invalid/expired)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OAuthError(Exception):
    """A token request refused (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class Credentials:
    """The secrets one stand-in accepts (random per start; printed in its connection lines only)."""

    client_id: str = field(default_factory=lambda: "client-" + secrets.token_hex(6))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    api_key: str = field(default_factory=lambda: "key-" + secrets.token_urlsafe(18))
    username: str = "integration@bulksync.test"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    refresh_token: str = field(default_factory=lambda: "rt-" + secrets.token_urlsafe(24))
    consumer_key: str = field(default_factory=lambda: secrets.token_hex(16))
    consumer_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    token_id: str = field(default_factory=lambda: secrets.token_hex(16))
    token_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    private_key_file: Path | None = None
    public_key_pem: bytes = b""


def make_credentials(workdir: Path) -> Credentials:
    """Fresh credentials with an RSA key pair for JWT bearer assertions (the private key in ``workdir``)."""
    creds = Credentials()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = workdir / "jwt-private-key.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    creds.private_key_file = path
    creds.public_key_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return creds


class Authority:
    """Issues and checks the access tokens of one stand-in.

    Args:
        credentials: what clients must present.
        lifetime: seconds an access token stays valid.
        rotate_refresh: every refresh returns a new refresh token and revokes the one used.
        audience: the ``aud`` a JWT bearer assertion must carry (the token URL).
    """

    def __init__(
        self, credentials: Credentials, lifetime: float = 3600.0, rotate_refresh: bool = False, audience: str = ""
    ) -> None:
        self.credentials = credentials
        self.lifetime = lifetime
        self.rotate_refresh = rotate_refresh
        self.audience = audience
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = {credentials.refresh_token}
        self.revoked_refresh: set[str] = set()
        self.counts = {"issued": 0, "refreshed": 0, "rejected": 0, "reused_refresh_token": 0}

    # -- issuing ------------------------------------------------------------------------------

    def issue(self, with_refresh: bool = False) -> dict[str, Any]:
        """A new access token response body."""
        token = "at-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.lifetime
            self.counts["issued"] += 1
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": int(self.lifetime)}
        if with_refresh:
            body["refresh_token"] = self._rotate(None)
        return body

    def _rotate(self, used: str | None) -> str:
        with self.lock:
            if used is None or not self.rotate_refresh:
                return used or next(iter(self.refresh_tokens))
            self.refresh_tokens.discard(used)
            self.revoked_refresh.add(used)
            new = "rt-" + secrets.token_urlsafe(24)
            self.refresh_tokens.add(new)
            return new

    def grant(self, form: dict[str, str], basic: tuple[str, str] | None = None) -> dict[str, Any]:
        """Answer a token request (form fields, optional HTTP Basic client authentication)."""
        c = self.credentials
        grant = form.get("grant_type", "")
        client_id, client_secret = client_of(form, basic)
        if grant == "client_credentials":
            self._client(client_id, client_secret)
            return self.issue()
        if grant == "refresh_token":
            self._client(client_id, client_secret)
            used = form.get("refresh_token", "")
            with self.lock:
                valid = used in self.refresh_tokens
                reused = used in self.revoked_refresh
                if reused:
                    self.counts["reused_refresh_token"] += 1
            if not valid:
                self.counts["rejected"] += 1
                detail = "was already used (rotated)" if reused else "is not valid"
                raise OAuthError("invalid_grant", f"The refresh token {detail}.")
            body = self.issue()
            body["refresh_token"] = self._rotate(used)
            with self.lock:
                self.counts["refreshed"] += 1
            return body
        if grant == JWT_GRANT:
            self._check_assertion(form.get("assertion", ""))
            return self.issue()
        if grant == "password":
            if not (
                secrets.compare_digest(form.get("username", ""), c.username)
                and secrets.compare_digest(form.get("password", ""), c.password)
            ):
                raise OAuthError("invalid_grant", "The user name or password is incorrect.")
            return self.issue(with_refresh=True)
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _client(self, client_id: str, client_secret: str) -> None:
        c = self.credentials
        if not (
            secrets.compare_digest(client_id, c.client_id) and secrets.compare_digest(client_secret, c.client_secret)
        ):
            self.counts["rejected"] += 1
            raise OAuthError("invalid_client", "Client authentication failed.", 401)

    def _check_assertion(self, assertion: str) -> None:
        import jwt

        try:
            claims = jwt.decode(
                assertion,
                self.credentials.public_key_pem,
                algorithms=["RS256"],
                audience=self.audience or None,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            self.counts["rejected"] += 1
            raise OAuthError("invalid_grant", f"Invalid JWT assertion: {type(exc).__name__}") from None
        if claims.get("iss") != self.credentials.client_id:
            raise OAuthError("invalid_grant", "Invalid JWT assertion: unknown issuer")

    # -- checking -----------------------------------------------------------------------------

    def check_bearer(self, authorization: str | None) -> None:
        """Raise :class:`Unauthorized` unless the header holds a live token."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("missing")
        token = authorization[7:].strip()
        with self.lock:
            expiry = self.tokens.get(token)
        if expiry is None:
            raise Unauthorized("invalid")
        if expiry <= time.monotonic():
            raise Unauthorized("expired")

    def check_static(self, value: str | None, expected: str) -> None:
        """An API key or static token compared in constant time."""
        if not value:
            raise Unauthorized("missing")
        if not secrets.compare_digest(value, expected):
            raise Unauthorized("invalid")

    def check_basic(self, authorization: str | None, user: str, password: str) -> None:
        """HTTP Basic (RFC 7617)."""
        if not authorization or not authorization.lower().startswith("basic "):
            raise Unauthorized("missing")
        try:
            got_user, _, got_pw = base64.b64decode(authorization[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("invalid") from None
        if not (secrets.compare_digest(got_user, user) and secrets.compare_digest(got_pw, password)):
            raise Unauthorized("invalid")

    def check_oauth1(self, method: str, url: str, authorization: str | None, realm: str) -> None:
        """An OAuth 1.0a HMAC-SHA256 signature over method, URL and query (RFC 5849 §3.4)."""
        from oauthlib.common import Request
        from oauthlib.oauth1.rfc5849 import signature, utils

        if not authorization or not authorization.startswith("OAuth "):
            raise Unauthorized("missing")
        c = self.credentials
        try:
            oauth = dict(utils.parse_authorization_header(authorization))
        except (ValueError, TypeError):
            raise Unauthorized("invalid") from None
        if oauth.get("realm") != realm or oauth.get("oauth_signature_method") != "HMAC-SHA256":
            raise Unauthorized("invalid")
        if oauth.get("oauth_consumer_key") != c.consumer_key or oauth.get("oauth_token") != c.token_id:
            raise Unauthorized("invalid")
        if abs(time.time() - int(oauth.get("oauth_timestamp", "0") or 0)) > 300:
            raise Unauthorized("expired")
        req = Request(url, method, headers={"Authorization": authorization})
        query = url.partition("?")[2]
        req.params = signature.collect_parameters(
            uri_query=query, headers={"Authorization": authorization}, exclude_oauth_signature=True, with_realm=False
        )
        req.signature = utils.unescape(oauth.get("oauth_signature", ""))
        if not signature.verify_hmac_sha256(req, c.consumer_secret, c.token_secret):
            raise Unauthorized("invalid")

    def expire_all(self) -> int:
        """Expire every access token issued so far (the next request gets a 401); returns how many."""
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = 0.0
            return len(self.tokens)


def client_of(form: dict[str, str], basic: tuple[str, str] | None) -> tuple[str, str]:
    """The client id and secret of a token request: its form fields, else its HTTP Basic credentials.

    Args:
        form: the request's form fields.
        basic: the request's HTTP Basic user and password, if any.

    Returns:
        ``(client_id, client_secret)``, each ``""`` when the request has none.
    """
    client_id = form.get("client_id") or (basic[0] if basic else "")
    client_secret = form.get("client_secret") or (basic[1] if basic else "")
    return client_id, client_secret
