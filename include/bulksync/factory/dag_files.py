"""One Airflow DAG file per pipeline spec, so that a broken spec is an import error of its own file only.

Airflow records import errors per DAG file: when one file builds the DAGs of every spec, one
invalid spec is an import error of that file and every client's DAG disappears with it. bulksync
therefore gives each spec ``dags/pipelines/<name>.yaml`` a DAG file of its own beside it,
``dags/pipelines/<name>.py``, of a few lines calling :func:`spec_dag`. A broken spec is then the
import error of ``pipelines/<name>.py``, whose message names ``<name>.yaml``, the field and the
problem, while every other DAG keeps loading and running.

``bulksync dags sync`` writes the missing DAG files and removes the ones it wrote for specs that
no longer exist; ``bulksync validate`` says when a spec has none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bulksync.errors import SpecError
from bulksync.spec.loader import SPEC_SUFFIXES, spec_files

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from bulksync.spec.models import PipelineSpec

log = logging.getLogger(__name__)

MARKER = "written by `bulksync dags sync`"
TEMPLATE = '''"""The airflow DAG of the pipeline spec {spec} beside this file.

One DAG file per spec, {marker} (do not edit): a broken spec is an import error of this
file only, and every other DAG keeps loading (docs/operations.md).
"""

from bulksync.factory import spec_dag

dag = spec_dag(__file__)
'''


def dag_file_text(spec_file: Path) -> str:
    """The content of the DAG file of ``spec_file``."""
    return TEMPLATE.format(spec=spec_file.name, marker=MARKER)


def dag_file_of(spec_file: Path) -> Path:
    """``pipelines/acme__nightly.yaml`` → ``pipelines/acme__nightly.py``."""
    return spec_file.with_suffix(".py")


def spec_file_of(dag_file: str | Path) -> Path:
    """The spec beside a DAG file (``<stem>.yaml`` or ``<stem>.yml``).

    Raises:
        SpecError: there is none (the spec was removed or renamed).
    """
    path = Path(dag_file)
    for suffix in SPEC_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise SpecError(
        [
            (
                str(path.with_suffix(SPEC_SUFFIXES[0])),
                "",
                f"no pipeline spec beside the DAG file {path.name}: restore the spec, or delete the DAG file "
                "(`bulksync dags sync` removes the DAG files it wrote for specs that are gone)",
            )
        ]
    )


def spec_dag(dag_file: str | Path) -> DAG:
    """Build the DAG of the spec beside ``dag_file`` (the body of every generated DAG file).

    Raises:
        SpecError: the spec or one of its quality suites is invalid: the import error of this DAG
            file names the spec (or suite) file, the field and the problem.
    """
    from bulksync.factory.dags import build_dag, check_suites
    from bulksync.spec.loader import load_spec

    spec = load_spec(spec_file_of(dag_file))
    check_suites([spec])
    return build_dag(spec)


@dataclass
class SyncResult:
    """What :func:`sync_dag_files` did (paths of DAG files)."""

    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    foreign: list[Path] = field(default_factory=list)
    """DAG files beside a spec that bulksync did not write (left alone)."""


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8")
    except OSError:
        return False


def missing_dag_files(folder: str | Path) -> list[Path]:
    """Spec files of ``folder`` that have no DAG file beside them (their DAG does not exist in Airflow)."""
    return [p for p in spec_files(folder) if not dag_file_of(p).is_file()]


def sync_dag_files(folder: str | Path, *, check: bool = False) -> SyncResult:
    """Write the DAG file of every spec of ``folder``; remove ours whose spec is gone.

    Args:
        folder: the spec folder (``dags/pipelines``).
        check: report what would change without writing or removing anything.
    """
    root = Path(folder)
    result = SyncResult()
    specs = spec_files(root)
    wanted = {dag_file_of(p): p for p in specs}
    for dag_file, spec in wanted.items():
        text = dag_file_text(spec)
        if dag_file.is_file():
            current = dag_file.read_text(encoding="utf-8")
            if current == text:
                result.unchanged.append(dag_file)
                continue
            if MARKER not in current:
                result.foreign.append(dag_file)
                continue
        if not check:
            dag_file.write_text(text, encoding="utf-8")
        result.written.append(dag_file)
    for dag_file in sorted(root.glob("*.py")):
        if dag_file not in wanted and _ours(dag_file):
            if not check:
                dag_file.unlink()
            result.removed.append(dag_file)
    return result


def load_valid_specs(folder: str | Path) -> tuple[list[PipelineSpec], list[tuple[str, str, str]]]:
    """Every valid spec of ``folder`` and the problems of the others (the migration DAG offers the valid ones).

    One broken spec must not take the DAGs built from the other specs with it.
    """
    from bulksync.spec.loader import load_spec

    specs: list[PipelineSpec] = []
    problems: list[tuple[str, str, str]] = []
    seen: dict[str, Path] = {}
    for path in spec_files(folder):
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        if spec.dag_id in seen:
            problems.append((str(path), "pipeline", f"{spec.dag_id!r} is already defined in {seen[spec.dag_id]}"))
            continue
        seen[spec.dag_id] = path
        specs.append(spec)
    return specs, problems
