"""Case 1: CSV -> staged Parquet (bulksync extract, raw pyarrow streaming, plain pandas).

Each function runs inside a fresh :mod:`worker` process; it does its imports first, then times
only the work itself, and returns rows, seconds and sizes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import datagen
from benchcfg import DATASET, TENANT, WINDOW_END, WINDOW_START

if TYPE_CHECKING:
    from bulksync.spec.models import PipelineSpec
    from bulksync.stages import RunContext

log = logging.getLogger(__name__)


def default_block_size_mb() -> int:
    """bulksync's default ``block_size_mb`` of ``csv_files`` (the raw case reads with the same blocks)."""
    from bulksync.spec.sources import CsvOptions

    return int(CsvOptions.model_fields["block_size_mb"].default)


def bench_spec(
    pipeline: str, csv_folder: str, target: dict[str, Any] | None = None, block_size_mb: int | None = None
) -> PipelineSpec:
    """A one-dataset pipeline spec reading ``accounts.csv`` from ``csv_folder`` (default options)."""
    from bulksync.spec.loader import parse_spec

    columns = [{"name": name, "type": typ} for name, typ in datagen.COLUMNS]
    options: dict[str, Any] = {"path": csv_folder, "pattern": "accounts.csv", "columns": columns}
    if block_size_mb:
        options["block_size_mb"] = block_size_mb
    data = {
        "tenant": TENANT,
        "pipeline": pipeline,
        "start_date": "2024-01-01",
        "schedule": None,
        "datasets": [
            {
                "name": DATASET,
                "source": {"kind": "csv_files", "options": options},
                "target": target or {"kind": "postgres", "conn_id": "bench_pg", "table": "accounts"},
            }
        ],
    }
    return parse_spec(data, "bench")


def run_context() -> RunContext:
    """The fixed run context of every bench stage call."""
    from bulksync.stages import RunContext
    from bulksync.staging.partition import Window

    return RunContext(run_id="bench", window=Window(WINDOW_START, WINDOW_END), try_number=1)


def csv_bulksync(params: dict[str, Any]) -> dict[str, Any]:
    """``bulksync.stages.extract`` of the CSV into a staging partition."""
    import bulksync.sources.csv_files  # noqa: F401 - imported before the clock starts
    from bulksync.stages import extract, partition_for

    from worker import Clock, current_rss_mib

    spec = bench_spec(params["pipeline"], str(Path(params["csv"]).parent), block_size_mb=params.get("block_size_mb"))
    ds, ctx = spec.datasets[0], run_context()
    rss_before = current_rss_mib()
    with Clock() as clock:
        manifest = extract(spec, ds, ctx)
    folder = partition_for(spec, ds, ctx.window).path
    return {
        "rows": manifest.rows,
        **clock.figures(),
        "rss_before_mib": rss_before,
        "output_bytes": sum(f.bytes for f in manifest.files),
        "files": len(manifest.files),
        "staging": str(folder),
        "block_size_mb": ds.source.options.block_size_mb,
    }


def csv_arrow(params: dict[str, Any]) -> dict[str, Any]:
    """The raw limit: ``pyarrow.csv.open_csv`` streamed into one ``ParquetWriter`` (zstd)."""
    from worker import Clock, current_rss_mib

    out = Path(params["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    schema = datagen.arrow_schema()
    block_size_mb = default_block_size_mb()
    read = pacsv.ReadOptions(block_size=block_size_mb << 20)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False)
    rss_before = current_rss_mib()
    rows = 0
    with Clock() as clock:
        reader = pacsv.open_csv(params["csv"], read_options=read, parse_options=parse, convert_options=convert)
        with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    return {
        "rows": rows,
        **clock.figures(),
        "rss_before_mib": rss_before,
        "output_bytes": out.stat().st_size,
        "files": 1,
        "block_size_mb": block_size_mb,
    }


def csv_pandas(params: dict[str, Any]) -> dict[str, Any]:
    """What a user would otherwise write: ``pandas.read_csv(...).to_parquet(...)``."""
    import pandas as pd

    from worker import Clock, current_rss_mib

    out = Path(params["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    rss_before = current_rss_mib()
    with Clock() as clock:
        df = pd.read_csv(params["csv"], parse_dates=datagen.TIMESTAMP_COLUMNS)
        df.to_parquet(out, index=False)
    return {
        "rows": len(df),
        **clock.figures(),
        "rss_before_mib": rss_before,
        "output_bytes": out.stat().st_size,
        "files": 1,
        "dtypes": {k: str(v) for k, v in df.dtypes.items()},
    }


def generate(params: dict[str, Any]) -> dict[str, Any]:
    """Generate the input CSV (1x, or the repeated file) outside of any measured case."""
    started = time.perf_counter()
    rows, factor = int(params["rows"]), int(params.get("factor", 1))
    path = datagen.ensure_csv(rows) if factor == 1 else datagen.ensure_repeated(rows, factor)
    return {
        "rows": rows * factor,
        "seconds": time.perf_counter() - started,
        "csv": str(path),
        "output_bytes": path.stat().st_size,
    }


CASES = {
    "csv_bulksync": csv_bulksync,
    "csv_arrow": csv_arrow,
    "csv_pandas": csv_pandas,
    "generate": generate,
}
