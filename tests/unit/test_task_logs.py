"""Task logs keep bulksync's INFO lines and drop third-party INFO noise (issue 14 item 4)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest


def test_great_expectations_import_and_context_log_nothing_below_warning() -> None:
    """In a fresh interpreter, as in a task process: GX's ~200 import-time INFO lines are gone."""
    code = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s %(message)s")
from bulksync.operators.task_logs import quiet_third_party_loggers
quiet_third_party_loggers()
import great_expectations as gx
gx.get_context(mode="ephemeral")
logging.getLogger("bulksync.stages").info("quality pass for orders")
logging.getLogger("great_expectations.x").warning("a real GX warning")
logging.getLogger("airflow.task").info("airflow line")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.splitlines() == [
        "INFO bulksync.stages quality pass for orders",
        "WARNING great_expectations.x a real GX warning",
        "INFO airflow.task airflow line",
    ]


def test_the_level_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from bulksync.operators.task_logs import quiet_third_party_loggers

    monkeypatch.setenv("BULKSYNC_THIRD_PARTY_LOG_LEVEL", "error")
    assert quiet_third_party_loggers() == logging.ERROR
    assert logging.getLogger("azure.core").getEffectiveLevel() == logging.ERROR
    monkeypatch.setenv("BULKSYNC_THIRD_PARTY_LOG_LEVEL", "WARNING")
    assert quiet_third_party_loggers() == logging.WARNING
