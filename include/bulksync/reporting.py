"""Summaries of what the last runs staged and loaded (for the CLI and the demo).

The counts are those reconciliation computes (:func:`bulksync.quality.reconcile.reconcile` over the
partition's manifests and load report), shown with the labels of
:data:`bulksync.quality.model.COUNT_LABELS`: the same numbers and words as the report, the audit
tables and the asset events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bulksync.quality.model import Counts
from bulksync.settings import staging_root
from bulksync.spec.models import PipelineSpec
from bulksync.stages import LOAD_REPORT
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import MANIFEST, STAGE_FOLDERS, TRANSFORMED


def _latest_partition(folder: Path) -> Path | None:
    committed = [p for p in folder.glob("*") if (p / MANIFEST).is_file()] if folder.is_dir() else []
    return max(committed, key=lambda p: (p / MANIFEST).stat().st_mtime) if committed else None


def _table_rows(ds: Any) -> str:
    """The target's current row count: ``count(*)`` of a SQL table, a target's own ``row_count()``
    (Salesforce: the org's ``SELECT COUNT()`` of the object), or ``? (Error)`` when it cannot be had."""
    from bulksync.targets.registry import make_target

    target = make_target(ds.target)
    try:
        row_count = getattr(target, "row_count", None)
        if row_count is not None:
            return f"{row_count():,} in the org"  # a SaaS target: the object holds more than bulksync loaded
        if not hasattr(target, "table_sql"):
            return f"n/a ({ds.target.kind})"
        with target.hook.connect() as conn:  # type: ignore[attr-defined]
            n = conn.exec_driver_sql(f"SELECT count(*) FROM {target.table_sql}").scalar_one()  # type: ignore[attr-defined]
        return f"{n:,}"
    except Exception as exc:  # noqa: BLE001 - a summary shows what it can
        return f"? ({type(exc).__name__})"
    finally:
        target.close()


def _short(path: Path) -> str:
    from bulksync.settings import home

    try:
        return str(path.relative_to(home()))
    except ValueError:
        return str(path)


def _manifest(path: Path) -> Manifest | None:
    return Manifest.model_validate_json(path.read_text()) if path.is_file() else None


def partition_counts(part: Path) -> tuple[Counts, bool]:
    """The counts of a local committed partition and whether its load finished (reconciliation's arithmetic)."""
    import json

    from bulksync.quality.reconcile import reconcile

    ex = Manifest.model_validate_json((part / MANIFEST).read_text())
    quarantine = _manifest(part / STAGE_FOLDERS["quarantine"] / MANIFEST)
    tr = _manifest(part / TRANSFORMED / MANIFEST)
    load = json.loads((part / LOAD_REPORT).read_text()) if (part / LOAD_REPORT).is_file() else None
    if tr is None or load is None:
        quarantined = quarantine.rows if quarantine else 0
        return Counts(source_count=ex.source_count, staged=ex.rows, quarantined=quarantined), False
    rec = reconcile(ex, quarantine, tr, load)
    inserted, updated, deleted = int(load["inserted"]), int(load["updated"]), int(load["deleted"])
    return Counts.of(rec, inserted=inserted, updated=updated, deleted=deleted, mode=load["mode"]), True


def latest_runs(spec: PipelineSpec) -> list[dict[str, Any]]:
    """One row per dataset describing its most recently committed partition."""
    import json

    rows: list[dict[str, Any]] = []
    root = Path(staging_root(spec.staging.root))
    for ds in spec.datasets:
        part = _latest_partition(root / spec.tenant / spec.pipeline / ds.name)
        if part is None:
            rows.append(
                {
                    "dataset": ds.name,
                    "window": "-",
                    "counts": None,
                    "line": "no committed partition yet",
                    "quality": None,
                    "seconds": "-",
                    "partition": "(none yet)",
                    "target": f"{ds.target.table}",
                }
            )
            continue
        ex = Manifest.model_validate_json((part / MANIFEST).read_text())
        tr = _manifest(part / TRANSFORMED / MANIFEST)
        load = json.loads((part / LOAD_REPORT).read_text()) if (part / LOAD_REPORT).is_file() else None
        seconds = ex.duration_seconds + (tr.duration_seconds if tr else 0) + (load["duration_seconds"] if load else 0)
        counts, loaded = partition_counts(part)
        quality = None
        qpath = part / "_quality.json"
        if qpath.is_file():
            quality = json.loads(qpath.read_text())["status"]
        line = counts.line() if loaded else "  ·  ".join(f"{k} {v}" for k, v in counts.items()[:3]) + "  ·  not loaded"
        rows.append(
            {
                "dataset": ds.name,
                "window": ex.interval,
                "counts": counts,
                "line": line,
                "quality": quality,
                "seconds": f"{seconds:.2f}",
                "partition": _short(part),
                "target": f"{ds.target.kind}:{ds.target.conn_id}/{ds.target.table} ({_table_rows(ds)})",
            }
        )
    return rows
