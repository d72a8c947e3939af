"""Reading committed staging outputs: only what a manifest lists counts."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from bulksync.errors import StagingError
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import Partition


def read_manifest(partition: Partition, stage: str) -> Manifest:
    """Return the committed manifest of a stage.

    Raises:
        StagingError: the stage was never committed (names the folder and the task to rerun).
    """
    path = partition.manifest_path(stage)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StagingError(
            f"no committed {stage} output at {path.parent} (no {path.name}); "
            f"the {stage} task did not finish for this interval: rerun it"
        ) from None
    try:
        return Manifest.model_validate_json(text)
    except ValidationError as exc:
        raise StagingError(f"corrupt manifest {path}: {exc.errors()[0]['msg']}; rerun the {stage} task") from None


def iter_batches(
    partition: Partition, manifest: Manifest, *, batch_size: int = 128 * 1024, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream the record batches of a committed stage, checking each file against the manifest."""
    folder = partition.stage_path(manifest.stage)
    for entry in manifest.files:
        path = (folder / entry.path).resolve()
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise StagingError(
                f"{path} listed in the {manifest.stage} manifest is missing; rerun the extract"
            ) from None
        if size != entry.bytes:
            raise StagingError(f"{path} has {size} bytes but the manifest says {entry.bytes}; rerun the extract")
        pf = pq.ParquetFile(path)
        yield from pf.iter_batches(batch_size=batch_size, columns=columns)
