"""Process-wide settings read from the environment (never secrets)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``$BULKSYNC_HOME``: the base of relative paths in specs (default: the working directory)."""
    return Path(os.environ.get("BULKSYNC_HOME") or os.getcwd()).resolve()


def resolve_path(value: str | os.PathLike[str]) -> Path:
    """Resolve a spec path: absolute stays, relative is taken from :func:`home`."""
    p = Path(os.path.expandvars(os.fspath(value))).expanduser()
    return p if p.is_absolute() else home() / p


def staging_root(spec_root: str | None = None) -> str:
    """The staging root: the spec's, else ``$BULKSYNC_STAGING_ROOT``, else ``$BULKSYNC_HOME/.local/staging``."""
    root = spec_root or os.environ.get("BULKSYNC_STAGING_ROOT") or ".local/staging"
    if "://" in root:
        return root
    return str(resolve_path(root))


def staging_conn_id(spec_conn_id: str | None = None) -> str | None:
    """The Airflow connection of an object-store staging root: the spec's, else ``$BULKSYNC_STAGING_CONN_ID``."""
    return spec_conn_id or os.environ.get("BULKSYNC_STAGING_CONN_ID") or None


def specs_dir() -> Path:
    """Folder of pipeline specs: ``$BULKSYNC_SPECS_DIR`` or ``dags/pipelines`` under :func:`home`."""
    return resolve_path(os.environ.get("BULKSYNC_SPECS_DIR") or "dags/pipelines")


def reports_root() -> Path:
    """Where quality results, Data Docs and reports go: ``$BULKSYNC_REPORTS_ROOT`` or ``.local/reports``."""
    return resolve_path(os.environ.get("BULKSYNC_REPORTS_ROOT") or ".local/reports")


def expectations_dir() -> Path:
    """Folder of GX suites: ``$BULKSYNC_EXPECTATIONS_DIR`` or ``expectations`` under :func:`home`."""
    return resolve_path(os.environ.get("BULKSYNC_EXPECTATIONS_DIR") or "expectations")
