"""Azure Blob Storage / ADLS Gen2 through an Airflow connection of the Azure provider (``wasb``).

The connection fields are the provider's (the same ones ``WasbHook`` reads), in its order of
precedence: ``connection_string`` (extra); service principal (``tenant_id`` extra, client id as
login, client secret as password); ``shared_access_key`` (extra); ``sas_token`` (extra, a token or
a full account URL with the token); account key (password, or ``account_key`` extra) with the
account name as login and, optionally, the account URL as host; nothing → managed identity /
``DefaultAzureCredential`` (``managed_identity_client_id`` extra picks a user-assigned identity).

The data path is ``adlfs`` (fsspec); :func:`check_container` uses the provider's ``WasbHook`` to
turn refused credentials and missing containers into errors that name the account, the container
and the connection id, never the secret.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from bulksync.errors import SourceConnectionError, StorageAccessError
from bulksync.hooks.base import get_connection

log = logging.getLogger(__name__)
# the SDK logs every request and response at INFO: keep task logs to bulksync's own lines
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

_FIELDS = (
    "connection_string",
    "tenant_id",
    "shared_access_key",
    "sas_token",
    "account_key",
    "managed_identity_client_id",
)


def _extra(conn: Any, name: str) -> Any:
    extra = conn.extra_dejson or {}
    return extra.get(name) or extra.get(f"extra__wasb__{name}") or None


def _account_url(conn: Any) -> str:
    host = (conn.host or "").strip()
    if not host:
        return f"https://{conn.login}.blob.core.windows.net"
    if "://" not in host:
        host = "https://" + host
    return host.rstrip("/")


def account_name_of(conn: Any) -> str:
    """The storage account a connection points at (for messages), or ``?`` when it cannot be told."""
    cs = _extra(conn, "connection_string")
    if cs:
        parts = dict(p.split("=", 1) for p in cs.split(";") if "=" in p)
        if parts.get("AccountName"):
            return str(parts["AccountName"])
        endpoint = parts.get("BlobEndpoint")
        return _account_from_url(endpoint) if endpoint else "?"
    sas = _extra(conn, "sas_token")
    if sas and str(sas).startswith("http"):
        return _account_from_url(str(sas))
    if conn.host:
        return _account_from_url(_account_url(conn))
    return str(conn.login or "?")


def _account_from_url(url: str) -> str:
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if host and not host.replace(".", "").isdigit() and host != "localhost" and "." in host:
        return host.split(".")[0]
    # path-style (Azurite, IP endpoints): http://127.0.0.1:10000/devstoreaccount1
    return parsed.path.strip("/").split("/")[0] or host or "?"


def filesystem_options(conn: Any) -> dict[str, Any]:
    """``AzureBlobFileSystem`` keyword arguments for an Airflow ``wasb`` / ``adls`` connection.

    Account keys and SAS tokens become a connection string with the account's blob endpoint, so
    that any endpoint works (also path-style ones such as Azurite's, which ``account_name`` +
    ``account_host`` cannot express).
    """
    cs = _extra(conn, "connection_string")
    if cs:
        return {"connection_string": cs}
    url = _account_url(conn)
    scheme = urlparse(url).scheme or "https"
    account = account_name_of(conn)
    tenant = _extra(conn, "tenant_id")
    if tenant:
        return {
            "account_name": account,
            "account_host": urlparse(url).netloc,
            "tenant_id": tenant,
            "client_id": conn.login,
            "client_secret": conn.password,
        }
    key = _extra(conn, "shared_access_key")
    sas = _extra(conn, "sas_token")
    if not key and sas:
        sas = str(sas)
        if sas.startswith("http"):
            endpoint, _, token = sas.partition("?")
        else:
            endpoint, token = url, sas.lstrip("?")
        return {"connection_string": f"BlobEndpoint={endpoint.rstrip('/')};SharedAccessSignature={token}"}
    key = key or conn.password or _extra(conn, "account_key")
    if key:
        return {
            "connection_string": (
                f"DefaultEndpointsProtocol={scheme};AccountName={account};AccountKey={key};BlobEndpoint={url}"
            )
        }
    # managed identity / workload identity / environment: adlfs falls back to DefaultAzureCredential
    options: dict[str, Any] = {"account_name": account, "account_host": urlparse(url).netloc, "anon": False}
    mi = _extra(conn, "managed_identity_client_id")
    if mi:
        options["managed_identity_client_id"] = mi
    return options


def azure_filesystem(conn_id: str) -> Any:
    """An ``adlfs.AzureBlobFileSystem`` authenticated by the Airflow connection ``conn_id``."""
    from adlfs import AzureBlobFileSystem

    conn = get_connection(conn_id)
    # fsspec caches instances by their arguments: a changed connection gives a new one
    return AzureBlobFileSystem(**filesystem_options(conn))


def access_error(
    exc: BaseException, conn_id: str, container: str, account: str | None = None
) -> StorageAccessError | None:
    """The :class:`StorageAccessError` of an SDK error that is a refusal of the credentials (HTTP 401 / 403),
    naming account, container and connection, never the secret; ``None`` for any other error."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    if not isinstance(exc, HttpResponseError):
        return None
    if not isinstance(exc, ClientAuthenticationError) and exc.status_code not in (401, 403):
        return None
    if account is None:
        try:
            account = account_name_of(get_connection(conn_id))
        except Exception:  # noqa: BLE001 - the message still names the connection
            account = "?"
    code = getattr(getattr(exc, "error_code", None), "value", None) or getattr(exc, "error_code", None)
    return StorageAccessError(
        f"storage account {account!r} refused the credentials of Airflow connection {conn_id!r} for container "
        f"{container!r} (HTTP {exc.status_code} {code or 'authentication failed'}); check the connection's key, "
        "SAS token or service principal and that it may read, write and list blobs in the container"
    )


_checked: set[tuple[str, str]] = set()


def check_container_once(conn_id: str, container: str) -> None:
    """:func:`check_container`, once per process for each (connection, container) that passed."""
    if (conn_id, container) not in _checked:
        check_container(conn_id, container)
        _checked.add((conn_id, container))


def check_container(conn_id: str, container: str) -> None:
    """Check through the provider's ``WasbHook`` that the credentials work and ``container`` exists.

    Raises:
        StorageAccessError: credentials refused (names account and connection id) or the
            container is missing (names it); terminal.
        SourceConnectionError: the account endpoint cannot be reached; transient.
    """
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    conn = get_connection(conn_id)
    account = account_name_of(conn)
    try:
        client = WasbHook(wasb_conn_id=conn_id).get_conn().get_container_client(container)
        client.get_container_properties()
    except ResourceNotFoundError:
        raise StorageAccessError(
            f"container {container!r} does not exist in storage account {account!r} (connection {conn_id!r}); "
            "create it or fix the container in the spec's path"
        ) from None
    except (ClientAuthenticationError, HttpResponseError) as exc:
        refused = access_error(exc, conn_id, container, account)
        if refused is None:
            raise
        raise refused from None
    except (ServiceRequestError, ValueError) as exc:
        raise SourceConnectionError(
            f"cannot reach storage account {account!r} of Airflow connection {conn_id!r} ({type(exc).__name__})"
        ) from None
    log.debug("container %s of account %s reachable through %s", container, account, conn_id)
