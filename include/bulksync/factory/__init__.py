"""Spec → DAG: one DAG per pipeline spec, a TaskGroup per dataset."""

from __future__ import annotations

from bulksync.factory.dags import build_dag, build_dags

__all__ = ["build_dag", "build_dags"]
