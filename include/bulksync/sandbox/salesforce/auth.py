"""OAuth 2.0 for the sandbox: the token endpoint's grants and the access tokens it hands out.

Grants: ``client_credentials`` (client id + secret, in the body or HTTP Basic), ``password``
(client id + secret + username + password), ``refresh_token`` (client id + the sandbox's refresh
token) and ``urn:ietf:params:oauth:grant-type:jwt-bearer``: the assertion must be an RS256 JWT
signed with the connected app's private key (the sandbox writes it to ``jwt-key.pem``; the
signature is verified against its certificate), with ``iss`` = client id, ``sub`` = the sandbox
user name, ``aud`` = the login URL (or ``https://login.salesforce.com`` / ``https://test.salesforce.com``)
and an ``exp`` in the future.

The token bookkeeping (issued tokens, their expiry, ``expire_all``, the counters of
``/__admin/state``) is the stand-in framework's :class:`bulksync.sandbox.asgi.auth.Authority`; this
module adds Salesforce's wire formats: its token response (``instance_url``, ``id``, ``signature``),
its OAuth error codes and ``INVALID_SESSION_ID``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bulksync.sandbox.asgi import auth as framework
from bulksync.sandbox.salesforce import errors
from bulksync.sandbox.salesforce.store import SANDBOX_USER

ORG_ID = "00D5J0000008sbXUAQ"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class Credentials(framework.Credentials):
    """What the sandbox accepts. ``jwt_key`` is the connected app's private key file (PEM)."""

    jwt_key: Path = Path("jwt-key.pem")


class OAuthError(Exception):
    """An OAuth failure: answered 400 ``{"error": …, "error_description": …}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status


def make_credentials(folder: Path) -> Credentials:
    """Fresh random credentials and a connected-app RSA key written to ``folder/jwt-key.pem``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "jwt-key.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return Credentials(
        client_id="3MVG9sandbox" + secrets.token_hex(8),
        client_secret=secrets.token_hex(16),
        username="integration@bulksync.sandbox",
        password=secrets.token_urlsafe(12),
        refresh_token="5Aep861sandbox" + secrets.token_hex(16),
        jwt_key=path,
        private_key_file=path,
        public_key_pem=key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


class Authority(framework.Authority):
    """Issues and checks access tokens.

    Args:
        credentials: what the token endpoint accepts.
        login_url: the sandbox's login URL (a valid JWT ``aud``).
        instance_url: returned as ``instance_url``.
        token_lifetime: seconds an access token stays valid.
    """

    def __init__(
        self, credentials: Credentials, login_url: str, instance_url: str, token_lifetime: float = 7200
    ) -> None:
        super().__init__(credentials, token_lifetime, audience=login_url)
        self.credentials: Credentials = credentials
        self.login_url = login_url
        self.instance_url = instance_url
        self.token_lifetime = token_lifetime
        private = serialization.load_pem_private_key(credentials.jwt_key.read_bytes(), password=None)
        self.jwt_public = private.public_key()

    def grant(self, form: dict[str, str], basic: tuple[str, str] | None = None) -> dict[str, Any]:
        """Handle one token request; return the token response or raise :class:`OAuthError`."""
        creds = self.credentials
        grant_type = form.get("grant_type", "")
        client_id, client_secret = framework.client_of(form, basic)
        if grant_type == "client_credentials":
            self._client(client_id, client_secret)
        elif grant_type == "password":
            self._client(client_id, client_secret)
            if form.get("username") != creds.username or form.get("password") != creds.password:
                self.counts["rejected"] += 1
                raise OAuthError("invalid_grant", "authentication failure")
        elif grant_type == "refresh_token":
            if client_id != creds.client_id or (client_secret and client_secret != creds.client_secret):
                raise OAuthError("invalid_client_id", "client identifier invalid")
            if form.get("refresh_token") != creds.refresh_token:
                raise OAuthError("invalid_grant", "expired access/refresh token")
        elif grant_type == JWT_GRANT:
            self._jwt(form.get("assertion", ""))
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        return self.issue(with_refresh=grant_type == "password")

    def _client(self, client_id: str, client_secret: str) -> None:
        if client_id != self.credentials.client_id:
            self.counts["rejected"] += 1
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(client_secret.encode(), self.credentials.client_secret.encode()):
            self.counts["rejected"] += 1
            raise OAuthError("invalid_client", "invalid client credentials")

    def _jwt(self, assertion: str) -> None:
        audiences = [self.login_url, "https://login.salesforce.com", "https://test.salesforce.com"]
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_public,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=audiences,
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "audience is invalid") from None
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_grant", f"invalid assertion: {exc}") from None
        if claims["iss"] != self.credentials.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if claims["sub"] != self.credentials.username:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")

    def issue(self, with_refresh: bool = False) -> dict[str, Any]:
        """A new access token response."""
        token = f"{ORG_ID[:15]}!AQ8AQ{secrets.token_urlsafe(48)}"
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
            self.counts["issued"] += 1
        issued_at = str(int(time.time() * 1000))
        identity = f"{self.login_url}/id/{ORG_ID}/{SANDBOX_USER}"
        digest = hmac.new(self.credentials.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256)
        body: dict[str, Any] = {
            "access_token": token,
            "instance_url": self.instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(digest.digest()).decode(),
            "scope": "api",
        }
        if with_refresh:
            body["refresh_token"] = self.credentials.refresh_token
        return body

    def check(self, header: str | None) -> None:
        """Raise INVALID_SESSION_ID unless ``header`` carries a live token (``Bearer``/``OAuth``)."""
        if not header or " " not in header:
            raise errors.invalid_session()
        scheme, token = header.split(" ", 1)
        if scheme.lower() not in ("bearer", "oauth"):
            raise errors.invalid_session()
        with self.lock:
            expiry = self.tokens.get(token.strip())
        if expiry is None or expiry < time.monotonic():
            with self.lock:
                self.counts["rejected"] += 1
            raise errors.invalid_session()
