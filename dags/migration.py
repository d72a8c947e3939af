"""The ad-hoc migration Airflow DAG: any pipeline's datasets, triggered from the UI form (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

from bulksync.factory.migration import build_migration_dag

dag = build_migration_dag(Path(__file__).parent / "pipelines")
