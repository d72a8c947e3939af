"""The plan of a chunked extract: which chunks make up a partition's extract.

``plan_extract`` writes ``{dataset}/.chunks/{interval}/_plan.json`` (a fresh plan id and the chunk
descriptors) after removing the chunks of any earlier plan; each mapped extract task commits chunk
``NNNNN`` beside it, tagged with the plan id; ``commit_extract`` accepts only a complete set of
chunks of the current plan and hard-links their parts into the partition's extract.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from bulksync.errors import StagingError
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import Partition, chunk_stage
from bulksync.staging.reader import read_manifest

PLAN_FILE = "_plan.json"


def write_plan(partition: Partition, chunks: list[dict[str, Any]], run_id: str) -> str:
    """Replace the partition's chunk plan (and drop the chunks of the old one); return the plan id."""
    folder = partition.chunks_location()
    folder.remove()
    plan_id = uuid.uuid4().hex
    folder.child(PLAN_FILE).write_text(
        json.dumps({"plan_id": plan_id, "run_id": run_id, "chunks": chunks}, default=str)
    )
    return plan_id


def read_plan(partition: Partition) -> dict[str, Any]:
    """The current chunk plan of a partition.

    Raises:
        StagingError: no plan exists (the plan_extract task did not run for this interval).
    """
    path = partition.chunks_location().child(PLAN_FILE)
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise StagingError(
            f"no chunk plan at {path.url}: the plan_extract task did not finish for this interval; rerun it"
        ) from None


def planned_chunk(partition: Partition, index: int) -> tuple[str, dict[str, Any]]:
    """The plan id and the descriptor of chunk ``index`` of the current plan."""
    plan = read_plan(partition)
    chunks = plan["chunks"]
    if not 0 <= index < len(chunks):
        raise StagingError(f"chunk {index} is not in the current plan of {partition.url} ({len(chunks)} chunks)")
    return str(plan["plan_id"]), dict(chunks[index])


def committed_chunks(partition: Partition) -> tuple[dict[str, Any], list[Manifest]]:
    """The plan and the committed manifests of all its chunks, in order.

    Raises:
        StagingError: a chunk is missing or belongs to another plan (names which ones to rerun).
    """
    plan = read_plan(partition)
    manifests: list[Manifest] = []
    missing: list[int] = []
    for i in range(len(plan["chunks"])):
        try:
            m = read_manifest(partition, chunk_stage(i))
        except StagingError:
            missing.append(i)
            continue
        if m.extra.get("plan_id") != plan["plan_id"]:
            missing.append(i)
            continue
        manifests.append(m)
    if missing:
        raise StagingError(
            f"chunks {missing} of {len(plan['chunks'])} of {partition.url} are not committed for the current plan; "
            "rerun those mapped extract tasks (or the plan_extract task and all its chunks)"
        )
    return plan, manifests
