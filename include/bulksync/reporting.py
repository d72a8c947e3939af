"""Summaries of what the last runs staged and loaded (for the CLI and the demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bulksync.settings import staging_root
from bulksync.spec.models import PipelineSpec
from bulksync.stages import LOAD_REPORT
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import MANIFEST, TRANSFORMED


def _latest_partition(folder: Path) -> Path | None:
    committed = [p for p in folder.glob("*") if (p / MANIFEST).is_file()] if folder.is_dir() else []
    return max(committed, key=lambda p: (p / MANIFEST).stat().st_mtime) if committed else None


def _table_rows(ds: Any) -> str:
    from bulksync.targets.registry import make_target

    target = make_target(ds.target)
    try:
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


def latest_runs(spec: PipelineSpec) -> list[dict[str, Any]]:
    """One row per dataset describing its most recently committed partition."""
    import json

    rows = []
    root = Path(staging_root(spec.staging.root))
    for ds in spec.datasets:
        part = _latest_partition(root / spec.tenant / spec.pipeline / ds.name)
        if part is None:
            rows.append(
                {
                    "dataset": ds.name,
                    "window": "-",
                    "extracted": "-",
                    "staged": "-",
                    "loaded": "-",
                    "seconds": "-",
                    "partition": "(none yet)",
                    "target": f"{ds.target.table}",
                }
            )
            continue
        ex = Manifest.model_validate_json((part / MANIFEST).read_text())
        tr_path = part / TRANSFORMED / MANIFEST
        tr = Manifest.model_validate_json(tr_path.read_text()) if tr_path.is_file() else None
        load = json.loads((part / LOAD_REPORT).read_text()) if (part / LOAD_REPORT).is_file() else None
        seconds = ex.duration_seconds + (tr.duration_seconds if tr else 0) + (load["duration_seconds"] if load else 0)
        extracted = f"{ex.rows:,}" + (f" (source {ex.source_count:,})" if ex.source_count is not None else "")
        qpath = part / "_quality.json"
        if qpath.is_file():
            quality = json.loads(qpath.read_text())
            extracted += f"  ·  quality {quality['status']}, {quality['rows_quarantined']:,} quarantined"
        rows.append(
            {
                "dataset": ds.name,
                "window": ex.interval,
                "extracted": extracted,
                "staged": f"{tr.rows:,}" if tr else "-",
                "loaded": f"{load['inserted'] + load['updated']:,} ({load['mode']})" if load else "-",
                "seconds": f"{seconds:.2f}",
                "partition": _short(part),
                "target": f"{ds.target.kind}:{ds.target.conn_id}/{ds.target.table} ({_table_rows(ds)})",
            }
        )
    return rows
