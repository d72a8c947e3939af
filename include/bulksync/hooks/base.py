"""What every bulksync hook shares: resolving its Airflow connection with an error that says how."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from bulksync.errors import ConfigurationError


def get_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id`` (env vars, secrets backends or the metadata DB).

    Raises:
        ConfigurationError: it is not defined anywhere; the message says where to define it.
    """
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and backend errors
        raise ConfigurationError(
            f"Airflow connection {conn_id!r} is not defined: add it in the UI (Admin > Connections), "
            f"as AIRFLOW_CONN_{conn_id.upper()}, or in your secrets backend ({type(exc).__name__})"
        ) from None
