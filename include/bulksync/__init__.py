"""bulksync: nightly bulk syncs from enterprise systems, as Airflow 3 DAGs built from YAML specs."""

from __future__ import annotations

__version__ = "0.1.0"
