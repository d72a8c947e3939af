"""Spec → DAG: one DAG per pipeline spec (each in its own DAG file), a TaskGroup per dataset.

Names are imported on first use, so ``bulksync.factory.cli`` does not pull in Airflow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_dag", "build_dags", "spec_dag"]


def __getattr__(name: str) -> Any:
    if name == "spec_dag":
        from bulksync.factory.dag_files import spec_dag

        return spec_dag
    if name in ("build_dag", "build_dags"):
        from bulksync.factory import dags

        return getattr(dags, name)
    raise AttributeError(f"module 'bulksync.factory' has no attribute {name!r}")
