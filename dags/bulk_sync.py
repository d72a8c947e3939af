"""One Airflow DAG per pipeline spec in dags/pipelines/ (see docs/specs.md)."""

from __future__ import annotations

from pathlib import Path

from bulksync.factory import build_dags

build_dags(Path(__file__).parent / "pipelines", globals())
