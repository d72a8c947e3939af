"""Chunked extraction (plan → one extract per key range → commit) against real PostgreSQL.

The union of the chunks must equal a single full extract exactly, NULL keys included; a rerun's
new plan never mixes with an old one; a missing chunk blocks the commit and names itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.errors import ConfigurationError, StagingError
from bulksync.staging.partition import chunk_stage
from bulksync.staging.reader import iter_batches, read_manifest
from tests.helpers import DAY, pipeline

ROWS = 5_003


def spec_for(chunking: dict[str, Any] | None, name: str = "orders") -> Any:
    options: dict[str, Any] = {"table": "orders", "batch_size": 700}
    if chunking:
        options["chunking"] = chunking
    return pipeline(
        [
            {
                "name": name,
                "source": {"kind": "sql", "conn_id": "test_pg", "options": options},
                "target": {"kind": "postgres", "conn_id": "test_pg", "table": f"t_{name}"},
            }
        ]
    )


@pytest.fixture
def orders(pg_url: str, env: pytest.MonkeyPatch) -> str:
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_no integer, amount numeric(12,2), note text, "
            "code varchar(8))"
        )
        conn.exec_driver_sql(
            f"INSERT INTO orders SELECT g * 7 - 3, CASE WHEN mod(g, 11) = 0 THEN NULL ELSE mod(g, 997) END, g * 1.25, "
            f"'note ' || g, 'C' || g FROM generate_series(1, {ROWS}) g"
        )
    return pg_url


def staged_digest(spec: Any, stage: str = "extract") -> tuple[int, str]:
    ds = spec.datasets[0]
    part = stages.partition_for(spec, ds, DAY)
    manifest = read_manifest(part, stage)
    table = pa.Table.from_batches(list(iter_batches(part, manifest)), schema=manifest.read_schema())
    rows = sorted(tuple(r.values()) for r in table.to_pylist())
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def ctx(run: str = "r1") -> stages.RunContext:
    return stages.RunContext(run_id=run, window=DAY, try_number=1)


def test_chunks_union_equals_the_full_extract(orders: str) -> None:
    full = spec_for(None, "full")
    stages.extract_all(full, full.datasets[0], ctx())
    chunked = spec_for({"column": "id", "chunks": 6}, "chunked")
    manifest = stages.extract_all(chunked, chunked.datasets[0], ctx())
    assert manifest.extra["chunks"] == 6
    assert sum(manifest.extra["chunk_rows"]) == ROWS and min(manifest.extra["chunk_rows"]) > 0
    assert manifest.rows == manifest.source_count == ROWS
    assert staged_digest(chunked) == staged_digest(full)


def test_null_keys_land_in_exactly_one_chunk(orders: str) -> None:
    spec = spec_for({"column": "customer_no", "chunks": 3}, "by_customer")
    ds = spec.datasets[0]
    chunks = stages.plan_extract(spec, ds, ctx())
    assert [c["nulls"] for c in chunks] == [True, False, False]
    for i in range(len(chunks)):
        stages.extract(spec, ds, ctx(), chunk_index=i)
    manifest = stages.commit_extract(spec, ds, ctx())
    full = spec_for(None, "full2")
    stages.extract_all(full, full.datasets[0], ctx())
    assert manifest.rows == ROWS
    assert staged_digest(spec) == staged_digest(full)


def test_a_new_plan_drops_the_old_chunks_and_a_missing_chunk_blocks_the_commit(orders: str) -> None:
    spec = spec_for({"column": "id", "chunks": 4}, "replan")
    ds = spec.datasets[0]
    stages.extract_all(spec, ds, ctx("first"))
    part = stages.partition_for(spec, ds, DAY)
    assert (part.chunks_path / "00003").is_dir()
    stages.plan_extract(spec, ds, ctx("second"))
    assert not (part.chunks_path / "00003").exists()  # old chunks gone with the old plan
    stages.extract(spec, ds, ctx("second"), chunk_index=0)
    stages.extract(spec, ds, ctx("second"), chunk_index=2)
    with pytest.raises(StagingError, match=r"chunks \[1, 3\] of 4 .* rerun those mapped extract tasks"):
        stages.commit_extract(spec, ds, ctx("second"))
    # the committed extract of the first run is untouched by the failed commit
    assert read_manifest(part, "extract").run_id == "first"
    assert staged_digest(spec)[0] == ROWS


def test_commit_links_instead_of_copying(orders: str) -> None:
    spec = spec_for({"column": "id", "chunks": 2}, "links")
    ds = spec.datasets[0]
    stages.extract_all(spec, ds, ctx())
    part = stages.partition_for(spec, ds, DAY)
    committed = sorted(Path(part.path).glob("part-*.parquet"))
    chunk_files = sorted(Path(part.stage_path(chunk_stage(0))).glob("part-*.parquet"))
    assert len(committed) == 2 and committed[0].stat().st_ino == chunk_files[0].stat().st_ino


def test_chunking_on_a_text_column_is_refused(orders: str) -> None:
    spec = spec_for({"column": "code", "chunks": 2}, "bad")
    with pytest.raises(ConfigurationError, match=r"chunking column 'code' is character varying\(8\), not an integer"):
        stages.plan_extract(spec, spec.datasets[0], ctx())


def test_an_empty_window_plans_one_chunk(orders: str) -> None:
    with sa.create_engine(orders).begin() as conn:
        conn.exec_driver_sql("DELETE FROM orders")
    spec = spec_for({"column": "id", "chunks": 4}, "empty")
    manifest = stages.extract_all(spec, spec.datasets[0], ctx())
    assert manifest.rows == 0 and manifest.extra["chunks"] == 1
