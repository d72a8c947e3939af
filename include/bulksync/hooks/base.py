"""What every bulksync hook shares: resolving its Airflow connection, with its secrets scrubbed everywhere.

:func:`get_connection` registers every secret of the connection it returns with :mod:`bulksync.scrub`
(password, ``login:password``, sensitive extras, a URL in the host; each URL-encoded and base64
too), so no log line, stored run record or alert of this process can show them — whichever hook,
provider client or library writes the line.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from bulksync import scrub
from bulksync.errors import ConfigurationError


def get_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id`` (env vars, secrets backends or the metadata DB), its secrets registered.

    Raises:
        ConfigurationError: it is not defined anywhere; the message says where to define it.
    """
    scrub.install()  # before Airflow masks the connection's password and extras: with all their forms
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and backend errors
        raise ConfigurationError(
            f"Airflow connection {conn_id!r} is not defined: add it in the UI (Admin > Connections), "
            f"as AIRFLOW_CONN_{conn_id.upper()}, or in your secrets backend ({type(exc).__name__})"
        ) from None
    scrub.register_connection(conn)
    return conn


def register_secrets(*secrets: str | None) -> None:
    """Register more secrets a hook derives (a token it obtained, a URL it built) with the scrubber."""
    scrub.register(*secrets)
