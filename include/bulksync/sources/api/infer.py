"""``records.columns: infer``: profile the first pages, propose declared columns, and freeze them.

The first extract of a dataset with ``columns: infer`` reads up to three pages, infers a column per
leaf path of the records (bool, int64, float64, timestamptz for ISO 8601 text, string otherwise;
lists as JSON text), writes the fragment to
``$BULKSYNC_HOME/.local/api-columns/<conn>__<path>__<digest>.yaml`` (the digest of the endpoint's
method, params, body and record path) and logs it; later extracts use that frozen file, so the
schema does not drift from run to run. Paste the fragment into the spec to make it explicit
(``bulksync api try`` prints it too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import yaml

from bulksync.spec.api import ApiColumn

log = logging.getLogger(__name__)
_IDENT = re.compile(r"[^A-Za-z0-9_]")


def _leaves(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in obj.items():
        p = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v and not str(k).startswith("@"):
            out.extend(_leaves(v, p))
        else:
            out.append((p, v))
    return out


def _kind(values: list[Any]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "string"
    if all(isinstance(v, bool) for v in seen):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
        return "int64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen):
        return "float64"
    if all(isinstance(v, str) for v in seen):
        try:
            for v in seen:
                d = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
                if d.tzinfo is None or len(v) < 19:
                    raise ValueError
            return "timestamptz"
        except ValueError:
            return "string"
    return "string"


def infer_columns(source: Any, pages: int = 3) -> tuple[list[ApiColumn], str]:
    """Columns inferred from the first ``pages`` pages of the source's first query, and the YAML fragment."""
    q = source._main(source._slice())
    values: dict[str, list[Any]] = {}
    for n, (_, records) in enumerate(source._pages(q), 1):
        for r in records:
            if isinstance(r, dict):
                for path, v in _leaves(r):
                    values.setdefault(path, []).append(v)
        if n >= pages:
            break
    cols = []
    names: set[str] = set()
    for path, vals in values.items():
        name = _IDENT.sub("_", path.replace("@", "")).strip("_") or "value"
        if name[0].isdigit():
            name = "c_" + name
        while name in names:
            name += "_"
        names.add(name)
        kind = _kind(vals)
        cols.append(
            ApiColumn(
                name=name,
                type=kind,
                path=None if path == name else path,
                nullable=name not in source.options.primary_key,
            )
        )
    fragment = yaml.safe_dump(
        {"columns": [c.model_dump(exclude_none=True, exclude_defaults=True) | {"name": c.name} for c in cols]},
        sort_keys=False,
    )
    return cols, fragment


def frozen_key(source: Any) -> str:
    """The frozen file's name: connection, path and a digest of what selects the records.

    Two datasets of one connection and path (two GraphQL queries on ``POST /graphql``, two SuiteQL
    queries, two search bodies) select different records: the digest of method, params, body and record
    path keeps each its own columns.
    """
    e = source.options.endpoint
    what = json.dumps(
        [e.method, e.params, e.body, source.options.records.path], sort_keys=True, default=str, ensure_ascii=False
    )
    digest = hashlib.sha256(what.encode()).hexdigest()[:10]
    return _IDENT.sub("_", f"{source.spec.conn_id}__{e.path}").strip("_") + f"__{digest}"


def frozen_columns(source: Any) -> list[ApiColumn]:
    """The frozen inferred columns of this source (inferring and freezing them on first use)."""
    key = frozen_key(source)
    folder = Path(os.environ.get("BULKSYNC_HOME", ".")) / ".local" / "api-columns"
    path = folder / f"{key}.yaml"
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return [ApiColumn(**c) for c in data["columns"]]
    cols, fragment = infer_columns(source)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(fragment, encoding="utf-8")
    log.warning("columns: infer: froze %d columns in %s; paste them into the spec:\n%s", len(cols), path, fragment)
    return cols
