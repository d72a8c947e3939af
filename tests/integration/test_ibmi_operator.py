"""IbmiExtractOperator for hand-written DAGs: templated window and file, delegating to the package."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from bulksync.operators.ibmi import IbmiExtractOperator
from bulksync.sandbox import ibmi as sandbox
from bulksync.staging.partition import Window
from bulksync.staging.reader import read_manifest
from tests.integration.test_ibmi_stages import _changed

UTC = dt.UTC


def _op(**kwargs: Any) -> IbmiExtractOperator:
    return IbmiExtractOperator(
        task_id="extract_orders",
        conn_id="test_pg",
        tenant="acme",
        pipeline="hand",
        dataset="orders",
        **kwargs,
    )


def test_templated_window_and_file(pg_url: str, env: pytest.MonkeyPatch) -> None:
    library = sandbox.library(2_000)
    sandbox.load(pg_url, library)
    op = _op(
        file="{{ params.library }}/ORDHDR",
        options={"incremental": {"date": "CHGDAT", "time": "CHGTIM"}},
    )
    assert set(op.template_fields) == {"file", "query", "window_start", "window_end"}
    start, end = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    context: dict[str, Any] = {
        "data_interval_start": start,
        "data_interval_end": end,
        "params": {"library": "ACMELIB"},
        "run_id": "manual__1",
        "ti": None,
    }
    op.render_template_fields(context)
    assert op.file == "ACMELIB/ORDHDR"
    summary = op.execute(context)
    expected = sum(1 for r in library["ORDHDR"].to_pylist() if start <= _changed(r) < end)
    assert summary["rows"] == summary["source_count"] == expected > 0
    from bulksync.ibmi.extract import staging_root
    from bulksync.staging.partition import Partition

    part = Partition(staging_root(), "acme", "hand", "orders", Window(start, end))
    assert read_manifest(part, "extract").run_id == "manual__1"


def test_bad_options_fail_the_task_naming_the_option(env: pytest.MonkeyPatch) -> None:
    op = _op(file="ACMELIB/ORDHDR", options={"columns": [{"name": "NOTE", "convert": "ebcdic", "ccsid": 9999}]})
    with pytest.raises(AirflowFailException, match=r"task extract_orders: columns\[0\].ccsid: .*CCSID 9999"):
        op.execute({"run_id": "r", "ti": None})
