"""Preflight: everything a run of a dataset will need, checked before anything is extracted.

A run that extracts and validates for a minute and then fails at load because the target's
connection is not defined wastes the night. :func:`preflight` checks, without connecting to
anything, that every Airflow connection the dataset names is defined (source, target, staging,
alert webhooks), that its quality suite is valid, that the salts of its hash steps are set, that
its named transforms are registered and that its local folders exist; each problem names what is
missing and how to define it. ``bulksync run`` checks before its first dataset; in Airflow the
first task of each dataset's group (``extract`` or ``plan_extract``) checks before it reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from bulksync.errors import BulksyncError, ConfigurationError
from bulksync.spec.models import DatasetSpec, PipelineSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One thing a run needs that is missing."""

    dataset: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.dataset}: {self.what}: {self.fix}"


class PreflightError(ConfigurationError):
    """A run would fail for want of a connection, variable, suite, transform or folder (lists them all).

    Attributes:
        problems: every problem found.
    """

    def __init__(self, pipeline: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(
            f"{pipeline}: {len(problems)} thing(s) the run needs are missing; nothing was extracted:\n  {lines}"
        )


def _connection(conn_id: str) -> str | None:
    from bulksync.hooks.base import get_connection

    try:
        get_connection(conn_id)
    except ConfigurationError as exc:
        return str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
    return None


def _connections(spec: PipelineSpec, ds: DatasetSpec) -> Iterable[tuple[str, str]]:
    """``(role, conn_id)`` of every connection the dataset's run opens."""
    from bulksync.settings import staging_conn_id, staging_root

    source_conn = getattr(ds.source, "conn_id", None)
    if source_conn:
        yield f"source ({ds.source.kind}) connection {source_conn!r}", source_conn
    target_conn = getattr(ds.target, "conn_id", None)
    if target_conn:
        yield f"target ({ds.target.kind}) connection {target_conn!r}", target_conn
    if "://" in staging_root(spec.staging.root):
        conn = staging_conn_id(spec.staging.conn_id)
        if conn:
            yield f"staging connection {conn!r}", conn
    for hook in spec.alerts.webhooks:
        yield f"alert webhook connection {hook!r}", hook


def _folders(ds: DatasetSpec) -> Iterable[tuple[str, str]]:
    """``(option, value)`` of the local folders the source reads."""
    options = ds.source.options
    for name in ("path", "landing"):
        value = getattr(options, name, None)
        if isinstance(value, str) and "://" not in value:
            yield name, value


def check_dataset(spec: PipelineSpec, ds: DatasetSpec) -> list[Problem]:
    """Every problem of one dataset's run (empty when it has what it needs)."""
    from bulksync.settings import resolve_path
    from bulksync.spec.transforms import HashStep, PythonStep

    problems: list[Problem] = []
    seen: set[str] = set()
    for role, conn_id in _connections(spec, ds):
        if conn_id in seen:
            continue
        seen.add(conn_id)
        missing = _connection(conn_id)
        if missing:
            problems.append(
                Problem(
                    ds.name,
                    role,
                    f"not defined; add it in the UI (Admin > Connections), as AIRFLOW_CONN_{conn_id.upper()}, "
                    "or in your secrets backend",
                )
            )
    if ds.quality is not None:
        from bulksync.quality.suites import check_suite

        for line in check_suite(ds.quality.suite):
            problems.append(Problem(ds.name, f"quality suite {ds.quality.suite!r}", line))
    named = [s.python.name for s in ds.transforms if isinstance(s, PythonStep)]
    if named:
        from bulksync.transform.registry import load_transforms

        registry = load_transforms()
        for name in named:
            if name not in registry:
                problems.append(
                    Problem(
                        ds.name,
                        f"transform {name!r}",
                        "not registered; define it with @transform in include/transforms/",
                    )
                )
    for step in ds.transforms:
        if isinstance(step, HashStep):
            from bulksync.salts import get_salt

            try:
                get_salt(step.hash.salt)
            except BulksyncError as exc:
                problems.append(Problem(ds.name, "hash salt", str(exc)))
    for option, value in _folders(ds):
        folder = resolve_path(value)
        if not folder.is_dir():
            problems.append(
                Problem(
                    ds.name,
                    f"source folder {folder}",
                    f"does not exist (source.options.{option}); create it or fix the path "
                    "(relative paths start at $BULKSYNC_HOME)",
                )
            )
    return problems


def preflight(spec: PipelineSpec, datasets: Iterable[DatasetSpec] | None = None) -> list[Problem]:
    """Every problem of the datasets' runs (all of the pipeline's by default)."""
    problems = [p for ds in (spec.datasets if datasets is None else datasets) for p in check_dataset(spec, ds)]
    return problems


def require(spec: PipelineSpec, datasets: Iterable[DatasetSpec] | None = None) -> None:
    """Raise :class:`PreflightError` listing every problem; log that all is there otherwise.

    Raises:
        PreflightError: something the run needs is missing.
    """
    chosen = list(spec.datasets if datasets is None else datasets)
    problems = preflight(spec, chosen)
    if problems:
        raise PreflightError(spec.dag_id, problems)
    log.info(
        "preflight %s: connections, suites, salts, transforms and folders of %s are there",
        spec.dag_id,
        ", ".join(ds.name for ds in chosen),
    )
