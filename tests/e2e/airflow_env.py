"""The environment of a standalone Airflow (SQLite metadata) running the project's dags folder.

Shared by the `airflow dags test` end-to-end tests: one temporary home holds AIRFLOW_HOME, the
staging and reports roots and the demo databases under ``<home>/.local``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import ROOT


def airflow_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """Return the environment for Airflow and bulksync rooted at ``home``, plus ``extra``.

    Inherited ``AIRFLOW*``/``BULKSYNC*`` variables are dropped; ``<home>/.local/airflow`` is created.
    """
    local = home / ".local"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BULKSYNC"))}
    env.update(
        {
            "AIRFLOW_HOME": str(local / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{local}/airflow/airflow.db",
            "BULKSYNC_HOME": str(home),
            "BULKSYNC_SPECS_DIR": str(ROOT / "dags" / "pipelines"),
            "BULKSYNC_EXPECTATIONS_DIR": str(ROOT / "expectations"),
            "BULKSYNC_REPORTS_ROOT": str(local / "reports"),
            "BULKSYNC_STAGING_ROOT": str(local / "staging"),
            **extra,
        }
    )
    (local / "airflow").mkdir(parents=True)
    return env
