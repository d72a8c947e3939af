"""Fixtures of the ``api`` source tests: vendor stand-ins started in-process over real HTTPS.

``standin(name, conn_id=..., **config)`` starts a stand-in of :mod:`bulksync.sandbox.apis` on a free
port, sets ``AIRFLOW_CONN_<CONN_ID>`` to reach it and stops it after the test. Tokens persist under the
test's own folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from bulksync.sandbox.apis import standin_class
from bulksync.sandbox.asgi import FaultSettings, StandIn, StandInConfig
from bulksync.staging.partition import Window
from tests.helpers import pipeline

UTC = dt.UTC


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., StandIn]]:
    """Factory: ``standin("hubspot", conn_id="hs", counts={"contacts": 500}, options={...}, faults=...)``."""
    started: list[StandIn] = []
    monkeypatch.setenv("BULKSYNC_TOKEN_DIR", str(tmp_path / "tokens"))

    def start(name: str, conn_id: str | None = None, faults: dict[str, Any] | None = None, **config: Any) -> StandIn:
        cfg = StandInConfig(
            workdir=tmp_path / f"standin-{name}-{len(started)}", faults=FaultSettings(**(faults or {})), **config
        )
        s = standin_class(name)(cfg).start()
        started.append(s)
        monkeypatch.setenv(f"AIRFLOW_CONN_{(conn_id or name).upper()}", s.connection_json())
        return s

    yield start
    for s in started:
        s.stop()


def api_dataset(
    name: str, conn_id: str, options: dict[str, Any], target: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A dataset spec with an ``api`` source (and a SQLite-free default target to satisfy the model)."""
    return {
        "name": name,
        "source": {"kind": "api", "conn_id": conn_id, "options": options},
        "target": target or {"kind": "postgres", "conn_id": "test_pg", "table": name},
    }


def api_pipeline(*datasets: dict[str, Any]) -> Any:
    return pipeline(list(datasets))


def window(start: str | None, end: str | None) -> Window:
    parse = lambda v: dt.datetime.fromisoformat(v).replace(tzinfo=UTC) if v else None  # noqa: E731
    return Window(parse(start), parse(end))


def extract(spec: Any, ds_name: str, win: Window, run_id: str = "t1") -> tuple[Any, pa.Table]:
    """Run the extract stage; returns the manifest and the committed rows (sorted by the first column)."""
    from bulksync import stages
    from bulksync.staging.reader import iter_batches

    ds = spec.dataset(ds_name)
    manifest = stages.extract(spec, ds, stages.RunContext(run_id=run_id, window=win, try_number=1))
    part = stages.partition_for(spec, ds, win)
    table = pa.Table.from_batches(list(iter_batches(part, manifest)), schema=manifest.read_schema())
    return manifest, table.sort_by(table.column_names[0])


def rows_by(table: pa.Table, key: str) -> dict[Any, dict[str, Any]]:
    """Rows of a table keyed by one column."""
    return {r[key]: r for r in table.to_pylist()}
