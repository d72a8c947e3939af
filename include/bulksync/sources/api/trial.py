"""``bulksync api try``: the first pages of an ``api`` source, its requests and record paths, typed rows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from bulksync.sources.api import paths
from bulksync.sources.api.source import ApiSource
from bulksync.staging.partition import Window


def _walk(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            out.extend(
                _walk(v, p) if isinstance(v, dict) and v else [(p, type(v).__name__ if v is not None else "null")]
            )
    return out


def trial(spec: Any, window: Window, pages: int) -> dict[str, Any]:
    """Read up to ``pages`` pages of each query; returns requests, record paths, inferred columns, rows."""
    source = ApiSource(spec, window)
    requests: list[str] = []
    first_record: Any = None
    batches: list[pa.RecordBatch] = []
    inferred = None
    try:
        orig = source.client.fetch

        def logged(call: Any) -> Any:
            page = orig(call)
            shown = {k: v for k, v in (call.params or {}).items()}
            requests.append(
                f"{call.method} {call.url.split('?')[0]} {shown or ''} -> HTTP {page.status}, page {page.number}"
            )
            return page

        source.client.fetch = logged  # type: ignore[method-assign]
        if source.options.records.columns == "infer":
            from bulksync.sources.api.infer import infer_columns

            cols, fragment = infer_columns(source, pages)
            inferred = fragment
            source.__dict__["columns"] = cols
        queries = source.plan() if source.options.parent is None else []
        for q in queries:
            for n, (page, records) in enumerate(source._pages(q), 1):
                if first_record is None and records:
                    first_record = records[0]
                from bulksync.sources.api.records import Origin

                batches.append(
                    source.converter.convert(
                        records, [Origin(page.label, page.number, len(records))], source._flags(records, q)
                    )
                )
                if n >= pages:
                    break
    finally:
        source.close()
    table = pa.Table.from_batches(batches, schema=source.schema()) if batches else source.schema().empty_table()
    return {
        "requests": requests,
        "paths": _walk(first_record),
        "inferred": inferred,
        "table": table,
        "column_paths": {c.name: c.path or c.name for c in source.columns},
        "first": paths.get(first_record, ""),
    }
