"""The quality gate: validate a committed extract with its GX suite, then pass, warn, quarantine or fail.

Memory: only the columns the suite references are read, for the whole partition, into one pandas
frame (GX's aggregate expectations — uniqueness, row counts, means — need every value of a column
at once). The gate estimates that size from the Parquet metadata first and refuses a partition
whose referenced columns exceed ``$BULKSYNC_QUALITY_MAX_BYTES`` (default 4 GiB) with a message
saying so, instead of letting the worker run out of memory. Rows are then split in one streaming
pass into ``validated/`` and ``quarantine/``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from bulksync.errors import DataError, TerminalError
from bulksync.quality.model import ExpectationOutcome, QualityResult
from bulksync.settings import reports_root
from bulksync.spec.models import DatasetSpec, PipelineSpec
from bulksync.spec.transforms import HashStep
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import Partition
from bulksync.staging.reader import iter_batches, open_part
from bulksync.staging.writer import PartitionWriter

log = logging.getLogger(__name__)

ROW = "__bulksync_row"
FAILED_COLUMN = "_bulksync_failed_expectations"
QUALITY_FILE = "_quality.json"
DEFAULT_MAX_BYTES = 4 << 30
SAMPLES = 5


class QualityGateError(TerminalError):
    """Error-severity expectations failed: the load does not run."""


def pii_columns(ds: DatasetSpec) -> set[str]:
    """Columns whose sample values are masked: declared ones and the columns of hash steps."""
    cols = set(ds.quality.pii_columns) if ds.quality else set()
    for step in ds.transforms:
        if isinstance(step, HashStep):
            cols.update(step.hash.columns)
    return cols


def mask(value: Any) -> str | None:
    """Mask a sample value: keep the first character of long strings, hide the rest; a null stays null."""
    if _is_null(value):
        return None
    text = str(value)
    return text[:1] + "***" if len(text) > 3 else "***"


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict) else False
    except (TypeError, ValueError):
        return False


def _max_bytes() -> int:
    return int(os.environ.get("BULKSYNC_QUALITY_MAX_BYTES") or DEFAULT_MAX_BYTES)


def _estimate_bytes(partition: Partition, manifest: Manifest, columns: list[str]) -> int:
    folder = partition.stage_location(manifest.stage)
    total = 0
    for entry in manifest.files:
        pf = open_part(folder, entry, manifest.stage)
        meta = pf.metadata
        pf.close(force=True)
        names = meta.schema.to_arrow_schema().names
        idx = [names.index(c) for c in columns if c in names]
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            total += sum(group.column(i).total_uncompressed_size for i in idx)
    return total


TABLE_SHAPE = ("expect_table_column", "expect_table_columns")


def _frame(partition: Partition, manifest: Manifest, columns: list[str], *, full_layout: bool = False) -> Any:
    """The suite's columns of the partition as one Arrow-backed pandas frame, with a row number.

    With ``full_layout`` (the suite checks the table's columns) the other columns are there too, as
    Arrow null columns (no buffers, no memory); otherwise they are left out, since GX filters the
    whole frame for every expectation and each extra column costs time.
    """
    import pandas as pd

    schema = manifest.read_schema()
    tables = [pa.Table.from_batches([b]) for b in iter_batches(partition, manifest, columns=columns)]
    data = pa.concat_tables(tables) if tables else schema.empty_table().select(columns)
    names = schema.names if full_layout else [n for n in schema.names if n in columns]
    arrays = [data.column(n) if n in columns else pa.nulls(data.num_rows) for n in names]
    table = pa.table(arrays, names=names)
    table = table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    return table.to_pandas(types_mapper=pd.ArrowDtype)


SHADOW_PREFIX = "__bulksync_f64__"


def _numeric_shadows(df: Any, expectations: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Point range checks on Arrow-backed numeric columns at float64 copies of them.

    GX compares numpy int/float columns vectorised but walks Arrow-backed (and decimal) columns value
    by value in Python, several times slower. A float64 copy compares exactly for values of up to
    15 significant digits (a decimal(18,2) above 10^13 may be judged at float precision). Returns the
    rewritten expectations and ``{shadow column: real column}``.
    """
    import pandas as pd

    shadows: dict[str, str] = {}
    out = []
    for exp in expectations:
        col = exp.get("kwargs", {}).get("column")
        dtype = df[col].dtype if col in df.columns else None
        if (
            exp.get("type") == "expect_column_values_to_be_between"
            and isinstance(dtype, pd.ArrowDtype)
            and (
                pa.types.is_integer(dtype.pyarrow_dtype)
                or pa.types.is_decimal(dtype.pyarrow_dtype)
                or pa.types.is_floating(dtype.pyarrow_dtype)
            )
        ):
            shadow = SHADOW_PREFIX + col
            if shadow not in df.columns:
                df[shadow] = df[col].astype("float64")
            shadows[shadow] = col
            exp = {**exp, "kwargs": {**exp["kwargs"], "column": shadow}}
        out.append(exp)
    return out, shadows


def _validate(df: Any, suite_dict: dict[str, Any]) -> Any:
    """Run GX on a pandas frame; returns the GX suite validation result."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    from bulksync.quality.catalog import columns_in_kwargs

    # GX fingerprints every batch under 1 GB by hashing the whole frame (twice per validation):
    # about half the gate's time on 2M rows, for a marker bulksync never reads. The staging
    # manifest's sha256 already identifies the data.
    pandas_execution_engine.HASH_THRESHOLD = 0

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = (
        context.data_sources.add_pandas("bulksync")
        .add_dataframe_asset("staged")
        .add_batch_definition_whole_dataframe("partition")
    )
    fmt = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [ROW],
        "partial_unexpected_count": 20,
        "include_unexpected_rows": False,
    }
    # GX filters the whole frame for every expectation, so each group of expectations on the same
    # columns runs on a frame of just those columns (and the row number); table-level ones see all.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for exp in suite_dict["expectations"]:
        cols = tuple(columns_in_kwargs(exp.get("kwargs", {})))
        groups.setdefault(cols if cols and not str(exp.get("type")).startswith(TABLE_SHAPE) else (), []).append(exp)
    combined = None
    for cols, exps in groups.items():
        frame = df[[*cols, ROW]] if cols else df
        suite = gx.ExpectationSuite(**{**suite_dict, "expectations": exps})
        result = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=fmt)
        if combined is None:
            combined = result
        else:
            combined.results.extend(result.results)
    if combined is None:  # an empty suite
        suite = gx.ExpectationSuite(**suite_dict)
        return batch_def.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format=fmt)
    ok = sum(1 for r in combined.results if r.success)
    combined.success = ok == len(combined.results)
    combined.statistics = {
        "evaluated_expectations": len(combined.results),
        "successful_expectations": ok,
        "unsuccessful_expectations": len(combined.results) - ok,
        "success_percent": 100.0 * ok / len(combined.results) if combined.results else 100.0,
    }
    return combined


def _label(exp_type: str, column: str | None) -> str:
    return f"{exp_type}({column})" if column else exp_type


def run_gate(
    spec: PipelineSpec, ds: DatasetSpec, partition: Partition, extracted: Manifest, run_id: str
) -> tuple[QualityResult, set[int], dict[int, list[str]]]:
    """Validate a committed extract; return the verdict and the rows to quarantine.

    Returns:
        The quality result, the row numbers to quarantine, and for each of them the labels of the
        expectations it failed.
    """
    from bulksync.quality.catalog import ROW_LEVEL, columns_in_kwargs
    from bulksync.quality.suites import columns_of, load_suite_json, severity_of

    assert ds.quality is not None
    started = time.monotonic()
    suite_dict = load_suite_json(ds.quality.suite)
    staged_cols = extracted.read_schema().names
    wanted = columns_of(suite_dict)
    missing = [c for c in wanted if c not in staged_cols]
    outcomes: list[ExpectationOutcome] = []
    runnable = []
    for exp in suite_dict.get("expectations", []):
        kwargs = dict(exp.get("kwargs", {}))
        cols = columns_in_kwargs(kwargs)
        absent = [c for c in cols if c in missing]
        if absent:
            outcomes.append(
                ExpectationOutcome(
                    expectation=exp["type"],
                    column=absent[0],
                    kwargs=kwargs,
                    severity=severity_of(exp),
                    success=False,
                    row_level=False,
                    error=f"column {absent[0]!r} is not in the staged data (columns: {staged_cols})",
                )
            )
        else:
            runnable.append(exp)
    columns = [c for c in wanted if c in staged_cols]
    need = _estimate_bytes(partition, extracted, columns)
    if need > _max_bytes():
        raise TerminalError(
            f"validating {ds.name} needs about {need >> 20} MiB for columns {columns} (more than "
            f"BULKSYNC_QUALITY_MAX_BYTES = {_max_bytes() >> 20} MiB). Raise the limit on a bigger worker, "
            "or split the interval (a shorter schedule) so each partition is smaller"
        )
    full_layout = any(str(e.get("type", "")).startswith(TABLE_SHAPE) for e in runnable)
    df = _frame(partition, extracted, columns, full_layout=full_layout)
    runnable, shadows = _numeric_shadows(df, runnable)
    log.info(
        "validating %s: %d rows, %d columns, %d expectations of suite %r",
        ds.name,
        len(df),
        len(columns),
        len(runnable),
        ds.quality.suite,
    )
    result = _validate(df, {**suite_dict, "expectations": runnable})
    pii = pii_columns(ds)
    failing_rows: dict[int, list[str]] = {}
    row_failures: list[tuple[ExpectationOutcome, list[int]]] = []
    for er in result.results:
        cfg = er.expectation_config
        kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "result_format")}
        if kwargs.get("column") in shadows:
            kwargs["column"] = shadows[kwargs["column"]]
        column = kwargs.get("column")
        res = er.result or {}
        samples = [v for v in (res.get("partial_unexpected_list") or [])[:SAMPLES]]
        if cfg.kwargs.get("column") in shadows and res.get("unexpected_index_list"):
            # show the real values, not their float64 copies
            samples = [df[column].iloc[int(i[ROW])] for i in res["unexpected_index_list"][:SAMPLES]]
        if column in pii:
            samples = [mask(v) for v in samples]
        error = None
        if er.exception_info and er.exception_info.get("raised_exception"):
            error = str(er.exception_info.get("exception_message"))[:500]
        outcome = ExpectationOutcome(
            expectation=cfg.type,
            column=column,
            kwargs=_json_safe(kwargs),
            severity=severity_of(cfg.to_json_dict()),
            success=bool(er.success),
            row_level=cfg.type in ROW_LEVEL,
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=res.get("unexpected_percent"),
            observed_value=_json_safe(res.get("observed_value")),
            samples=_json_safe(samples),
            error=error,
        )
        outcomes.append(outcome)
        if not outcome.success and outcome.row_level and not error:
            index = res.get("unexpected_index_list")
            if index is None:
                # GX could not say which rows failed: it cannot quarantine, so it counts as aggregate
                outcome = outcome.model_copy(update={"row_level": False})
                outcomes[-1] = outcome
            else:
                row_failures.append((outcome, [int(i[ROW]) for i in index]))
    status, quarantined = _verdict(ds.quality.on_failure, outcomes, row_failures, failing_rows)
    quality = QualityResult(
        suite=ds.quality.suite,
        on_failure=ds.quality.on_failure,
        status=status,
        rows_checked=len(df),
        rows_quarantined=len(quarantined),
        expectations=outcomes,
        duration_seconds=time.monotonic() - started,
    )
    quality = _persist(spec, ds, partition, run_id, result, quality, suite=suite_dict, shadows=shadows, pii=pii)
    return quality, quarantined, failing_rows


def _verdict(
    on_failure: str,
    outcomes: list[ExpectationOutcome],
    row_failures: list[tuple[ExpectationOutcome, list[int]]],
    failing_rows: dict[int, list[str]],
) -> tuple[Any, set[int]]:
    errors = [o for o in outcomes if not o.success and o.severity == "error"]
    warns = [o for o in outcomes if not o.success and o.severity == "warn"]
    quarantined: set[int] = set()
    if errors and on_failure == "fail":
        return "failed", quarantined
    if errors and on_failure == "quarantine":
        if any(not o.row_level or o.error for o in errors):
            return "failed", quarantined  # aggregate failures cannot be fixed by setting rows aside
        for outcome, rows in row_failures:
            if outcome.severity != "error":
                continue
            label = _label(outcome.expectation, outcome.column)
            for r in rows:
                failing_rows.setdefault(r, []).append(label)
        quarantined = set(failing_rows)
        return ("quarantined" if quarantined else "pass"), quarantined
    if errors or warns:
        return "warn", quarantined
    return "pass", quarantined


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _persist(
    spec: PipelineSpec,
    ds: DatasetSpec,
    partition: Partition,
    run_id: str,
    result: Any,
    quality: QualityResult,
    *,
    suite: dict[str, Any],
    shadows: dict[str, str],
    pii: set[str],
) -> QualityResult:
    """Store the GX result in the pipeline's GX stores and rebuild its Data Docs (GX's site builder)."""
    from bulksync.quality.data_docs import clean_result, publish_validation

    root = reports_root()
    base = root / spec.tenant / spec.pipeline
    cleaned = clean_result(result.to_json_dict(), shadows=shadows, hidden_columns={ROW}, pii=pii, mask=mask)
    try:
        stored, page = publish_validation(
            base=base,
            suite=suite,
            result=cleaned,
            dataset=ds.name,
            window=partition.window.key,
            run_id=run_id,
            run_time=dt.datetime.now(dt.UTC),
            datasource=spec.dag_id,
        )
    except Exception as exc:  # noqa: BLE001 - Data Docs are a convenience; the verdict stands without them
        log.warning("could not build the Data Docs of %s: %s: %s", ds.name, type(exc).__name__, exc)
        return quality
    return quality.model_copy(
        update={"validation_path": str(stored.relative_to(root)), "data_docs_path": str(page.relative_to(root))}
    )


def split_partition(
    partition: Partition,
    extracted: Manifest,
    quarantined: set[int],
    failing: dict[int, list[str]],
    run_id: str,
    try_number: int | None,
) -> tuple[Manifest, Manifest | None]:
    """Commit ``validated/`` (rows that pass) and ``quarantine/`` (rows set aside, with reasons)."""
    schema = extracted.read_schema()
    partition.stage_location("quarantine").remove()  # a rerun's verdict replaces the old one
    if not quarantined:
        with PartitionWriter(partition, "validate", schema, run_id=run_id, try_number=try_number) as w:
            w.link(extracted.files, partition.stage_location("extract"))
            return w.commit(window=extracted.window, source_count=extracted.source_count), None
    qschema = schema.append(pa.field(FAILED_COLUMN, pa.list_(pa.string())))
    keep_mask_all = np.ones(extracted.rows, dtype=bool)
    idx = np.fromiter(quarantined, dtype=np.int64)
    keep_mask_all[idx] = False
    with (
        PartitionWriter(partition, "validate", schema, run_id=run_id, try_number=try_number) as ok,
        PartitionWriter(partition, "quarantine", qschema, run_id=run_id, try_number=try_number) as bad,
    ):
        offset = 0
        for batch in _batches(partition, extracted):
            keep = keep_mask_all[offset : offset + batch.num_rows]
            ok.write_batch(batch.filter(pa.array(keep)))
            drop = np.nonzero(~keep)[0]
            if len(drop):
                rows = batch.take(pa.array(drop))
                reasons = pa.array([failing[offset + int(i)] for i in drop], pa.list_(pa.string()))
                bad.write_batch(pa.RecordBatch.from_arrays([*rows.columns, reasons], schema=qschema))
            offset += batch.num_rows
        good = ok.commit(window=extracted.window, source_count=extracted.source_count)
        quarantine = bad.commit(window=extracted.window, source_count=extracted.source_count)
    if good.rows + quarantine.rows != extracted.rows:  # pragma: no cover - guarded by construction
        raise DataError(f"split lost rows: {good.rows} + {quarantine.rows} != {extracted.rows}")
    log.info(
        "quarantined %d of %d rows of %s into %s",
        quarantine.rows,
        extracted.rows,
        partition.dataset,
        partition.stage_location("quarantine").url,
    )
    return good, quarantine


def _batches(partition: Partition, manifest: Manifest) -> Iterator[pa.RecordBatch]:
    yield from iter_batches(partition, manifest)


def failure_message(ds: DatasetSpec, quality: QualityResult) -> str:
    """The task failure message: every failed expectation with column, counts and samples."""
    lines = [
        f"quality gate failed for dataset {ds.name!r} (suite {quality.suite!r}, on_failure: "
        f"{quality.on_failure}); nothing was loaded:"
    ]
    lines += [f"  - [{o.severity}] {o.describe()}" for o in quality.failed]
    if quality.data_docs_path:
        lines.append(f"  Data Docs: {reports_root() / quality.data_docs_path}")
    return "\n".join(lines)
