"""Paths, connection strings and the environment every benchmark subprocess runs with."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / ".data"
STAGING_ROOT = DATA_DIR / "staging"
OUTPUT_DIR = DATA_DIR / "out"
LOG_DIR = DATA_DIR / "logs"
RESULTS_DIR = DATA_DIR / "results"
AIRFLOW_HOME = DATA_DIR / "airflow_home"
DLT_DIR = DATA_DIR / "dlt"

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_DB = "bulksync_bench"
PG_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
PG_CONN_ID = "bench_pg"

TENANT = "bench"
DATASET = "accounts"
WINDOW_START = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
WINDOW_END = dt.datetime(2024, 6, 2, tzinfo=dt.UTC)


def pipeline_name(rows: int, factor: int) -> str:
    """The bench pipeline (and so the staging folder) of one input file."""
    return f"accounts_{rows}_x{factor}"


def subprocess_env() -> dict[str, str]:
    """The environment of the case subprocesses: staging root, Airflow connection, quiet dlt."""
    for folder in (STAGING_ROOT, OUTPUT_DIR, LOG_DIR, RESULTS_DIR, AIRFLOW_HOME, DLT_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "BULKSYNC_STAGING_ROOT": str(STAGING_ROOT),
            "BULKSYNC_HOME": str(REPO_DIR),
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            f"AIRFLOW_CONN_{PG_CONN_ID.upper()}": PG_URL,
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DLT_DATA_DIR": str(DLT_DIR / "data"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(BENCH_DIR), env.get("PYTHONPATH", "")) if p),
        }
    )
    return env
