"""Run a dataset's transform steps over a committed extract, chunk by chunk, into ``transformed/``.

Steps are row-local and run per chunk, except ``dedupe``: it needs to see every row of a key. For
each dedupe step a first pass reads only the key and ``latest_by`` columns (as produced by the
steps before it), picks the winning row of every key, and the main pass then keeps those rows.
Memory is bounded by one chunk plus the key columns, never the whole dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from bulksync.errors import ConfigurationError, DataError
from bulksync.spec import transforms as t
from bulksync.transform.steps import StepError, apply_step

log = logging.getLogger(__name__)

BatchSource = Callable[[], Iterator[pa.RecordBatch]]


def to_pandas(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """Arrow → pandas keeping exact types (decimals, tz timestamps, nullable ints) as ArrowDtype."""
    return batch.to_pandas(types_mapper=pd.ArrowDtype)


def to_arrow(df: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    """pandas → Arrow, cast to ``schema`` when given (a lossy cast is a :class:`DataError`)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if schema is None:
        return table
    if table.schema.names != schema.names:
        raise DataError(f"transform output columns changed between chunks: {table.schema.names} vs {schema.names}")
    try:
        return table.cast(schema, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"transform output does not keep the types of its first chunk: {exc}") from None


def resolve_salts(steps: list[Any], get_secret: Callable[[t.SaltSpec], str]) -> dict[int, str]:
    """Fetch the salt of every hash step (from an Airflow Variable or connection)."""
    return {i: get_secret(s.hash.salt) for i, s in enumerate(steps) if isinstance(s, t.HashStep)}


class TransformRunner:
    """Apply a list of parsed steps to a stream of batches.

    Args:
        steps: the dataset's parsed transform steps.
        salts: salts of the hash steps by step index (see :func:`resolve_salts`).
    """

    def __init__(self, steps: list[Any], salts: dict[int, str] | None = None) -> None:
        self.steps = steps
        self.salts = salts or {}
        self._keep: dict[int, np.ndarray] = {}

    def run(self, batches: BatchSource, input_schema: pa.Schema) -> Iterator[pa.Table]:
        """Yield transformed tables, one per input batch (empty ones skipped)."""
        for i, step in enumerate(self.steps):
            if isinstance(step, t.DedupeStep):
                self._keep[i] = self._dedupe_pass(batches, i, step.dedupe)
        schema: pa.Schema | None = None
        counters = [0] * len(self.steps)
        for batch in batches():
            df = self._apply(to_pandas(batch), len(self.steps), counters)
            table = to_arrow(df, schema)
            if schema is None:
                schema = self._fix_nulls(table.schema, input_schema)
                table = table.cast(schema)
            if table.num_rows:
                yield table

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        """The schema the steps produce, worked out on an empty chunk of the input schema."""
        empty = to_pandas(input_schema.empty_table())
        df = self._apply(empty, len(self.steps), [0] * len(self.steps), dry=True)
        return self._fix_nulls(pa.Table.from_pandas(df, preserve_index=False).schema, input_schema)

    @staticmethod
    def _fix_nulls(schema: pa.Schema, input_schema: pa.Schema) -> pa.Schema:
        fields = []
        for f in schema:
            if pa.types.is_null(f.type):
                f = f.with_type(input_schema.field(f.name).type if f.name in input_schema.names else pa.string())
            fields.append(f.with_nullable(True))
        return pa.schema(fields)

    def _apply(self, df: pd.DataFrame, upto: int, counters: list[int], dry: bool = False) -> pd.DataFrame:
        for i, step in enumerate(self.steps[:upto]):
            if isinstance(step, t.DedupeStep):
                if not dry:
                    start = counters[i]
                    counters[i] += len(df)
                    df = df[self._keep[i][start : start + len(df)]]
                continue
            try:
                df = apply_step(df, step, i, self.salts)
            except (StepError, ConfigurationError):
                raise
            except (KeyError, TypeError, ValueError, pa.ArrowException) as exc:
                raise StepError(f"transforms[{i}] ({type(step).__name__}): {type(exc).__name__}: {exc}") from None
        return df

    def _dedupe_pass(self, batches: BatchSource, index: int, args: t.DedupeArgs) -> np.ndarray:
        cols = list(args.keys) + ([args.latest_by] if args.latest_by else [])
        parts: list[pd.DataFrame] = []
        counters = [0] * len(self.steps)
        for batch in batches():
            df = self._apply(to_pandas(batch), index, counters)
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise StepError(
                    f"transforms[{index}] dedupe: column(s) {missing} do not exist; columns: {list(df.columns)}"
                )
            parts.append(df[cols].reset_index(drop=True))
        if not parts:
            return np.zeros(0, dtype=bool)
        keys = pd.concat(parts, ignore_index=True)
        keys["__row"] = np.arange(len(keys))
        order = ([args.latest_by] if args.latest_by else []) + ["__row"]
        winners = keys.sort_values(order, na_position="first", kind="stable").drop_duplicates(args.keys, keep="last")
        keep = np.zeros(len(keys), dtype=bool)
        keep[winners["__row"].to_numpy()] = True
        log.info("dedupe on %s: %d rows, %d kept", args.keys, len(keys), int(keep.sum()))
        return keep
