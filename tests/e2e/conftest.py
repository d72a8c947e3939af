"""End-to-end tests: register the ``scheduler`` marker (real Airflow components as processes)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker."""
    config.addinivalue_line(
        "markers", "scheduler: starts a real Airflow (api-server, scheduler, workers) as processes; part of make test"
    )
