"""Airflow plugin registration for bulksync (views and listeners arrive with later features).

Every Airflow process imports this file: keep it free of the engine (pandas, pyarrow, GX).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class BulksyncPlugin(AirflowPlugin):
    """Registers bulksync with Airflow."""

    name = "bulksync"
