"""Reading secrets (salts) from Airflow Variables and connections, masked in every log."""

from __future__ import annotations

from typing import Any

from bulksync.errors import ConfigurationError


def _mask(value: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older SDK layout
        return
    mask_secret(value)


def get_salt(salt: Any) -> str:
    """Return the salt named by a ``SaltSpec`` (a Variable or a connection's password).

    Raises:
        ConfigurationError: the variable / connection is missing or empty (its value is never shown).
    """
    if salt.variable:
        from airflow.sdk import Variable

        try:
            value = Variable.get(salt.variable)
        except Exception:  # noqa: BLE001 - KeyError / AirflowNotFoundException by backend
            raise ConfigurationError(
                f"Airflow Variable {salt.variable!r} (hash salt) is not defined: set it in the UI, as "
                f"AIRFLOW_VAR_{salt.variable.upper()}, or in your secrets backend"
            ) from None
        where = f"Variable {salt.variable!r}"
    else:
        from airflow.sdk import BaseHook

        try:
            value = BaseHook.get_connection(salt.conn_id).password
        except Exception:  # noqa: BLE001
            raise ConfigurationError(f"Airflow connection {salt.conn_id!r} (hash salt) is not defined") from None
        where = f"connection {salt.conn_id!r}"
    if not value or len(value) < 16:
        raise ConfigurationError(f"the hash salt in {where} must be at least 16 characters")
    _mask(value)
    return str(value)
