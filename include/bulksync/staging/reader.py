"""Reading committed staging outputs: only what a manifest lists counts.

The same on a local folder and on an Azure container: a stage exists once its ``_manifest.json``
does; the files it lists are read through the partition's filesystem, checked against their sizes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from bulksync.errors import StagingError
from bulksync.staging.manifest import FileEntry, Manifest
from bulksync.staging.partition import MANIFEST, Partition
from bulksync.storage.location import Location

READ_BLOCK = 8 << 20  # bytes read ahead per open remote file


def read_manifest(partition: Partition, stage: str) -> Manifest:
    """Return the committed manifest of a stage.

    Raises:
        StagingError: the stage was never committed (names the folder and the task to rerun).
    """
    folder = partition.stage_location(stage)
    path = folder.child(MANIFEST)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StagingError(
            f"no committed {stage} output at {folder.url} (no {MANIFEST}); "
            f"the {stage} task did not finish for this interval: rerun it"
        ) from None
    try:
        return Manifest.model_validate_json(text)
    except ValidationError as exc:
        raise StagingError(f"corrupt manifest {path.url}: {exc.errors()[0]['msg']}; rerun the {stage} task") from None


def open_part(folder: Location, entry: FileEntry, stage: str) -> pq.ParquetFile:
    """Open one Parquet part a manifest lists (relative to the manifest's folder), checking its size.

    Raises:
        StagingError: the file is missing or its size differs from the manifest's.
    """
    loc = folder.child(entry.path)
    try:
        size = loc.size()
    except FileNotFoundError:
        raise StagingError(f"{loc.url} listed in the {stage} manifest is missing; rerun the extract") from None
    if size != entry.bytes:
        raise StagingError(f"{loc.url} has {size} bytes but the manifest says {entry.bytes}; rerun the extract")
    if loc.is_local:
        return pq.ParquetFile(loc.path)
    with loc._errors():  # a refused key while reading the footer: StorageAccessError, not the SDK's error
        return pq.ParquetFile(loc.fs.open(loc.path, "rb", block_size=READ_BLOCK))


def iter_batches(
    partition: Partition, manifest: Manifest, *, batch_size: int = 128 * 1024, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream the record batches of a committed stage, checking each file against the manifest.

    Raises:
        StorageAccessError: the account refused the credentials while a part was read (names account,
            container and connection, as every stage's storage access does).
    """
    folder = partition.stage_location(manifest.stage)
    for entry in manifest.files:
        pf = open_part(folder, entry, manifest.stage)
        try:
            with folder._errors():  # the rows are read lazily, by pyarrow, through the SDK
                yield from pf.iter_batches(batch_size=batch_size, columns=columns)
        finally:
            pf.close(force=True)
