"""SIGKILL in the middle of an api extract (a real child process, pages half read) leaves no committed
partition; the rerun of the interval commits exactly the stand-in's records."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import StagingError
from bulksync.staging.reader import read_manifest
from tests.conftest import ROOT
from tests.helpers import kill_child_at_flag
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, rows_by, window

OPTIONS = {
    "preset": "hubspot",
    "object": "contacts",
    "incremental": True,
    "window": {"requests_per_second": 1000},
    "batch_records": 100,
    "limits": {"requests_per_second": 1000},
}


def test_sigkill_mid_extract_commits_nothing_and_the_rerun_is_exact(
    standin: Any, env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = standin("hubspot", "hs", counts={"contacts": 1440})
    flag = tmp_path / "killpoint"
    passed = {k: v for k, v in os.environ.items() if k.startswith(("AIRFLOW_CONN", "BULKSYNC"))}
    script = textwrap.dedent(f"""
        import os, json
        os.environ.update({json.dumps(passed)})
        from bulksync import stages
        from bulksync.sources.api.client import ApiClient
        from tests.integration.api.conftest import api_dataset, api_pipeline, window
        fetch, seen = ApiClient.fetch, []
        def slow(self, call):
            seen.append(call)
            if len(seen) == 4:  # three pages of the window read, two batches written
                open({str(flag)!r}, "w").close()
                import time; time.sleep(60)
            return fetch(self, call)
        ApiClient.fetch = slow
        spec = api_pipeline(api_dataset("contacts", "hs", {OPTIONS!r}))
        win = window("2026-01-01T00:00", "2026-01-02T00:00")
        stages.extract(spec, spec.dataset("contacts"), stages.RunContext("killed", win, 1))
    """)
    kill_child_at_flag(script, flag, ROOT, timeout=120)
    spec = api_pipeline(api_dataset("contacts", "hs", OPTIONS))
    win = window("2026-01-01T00:00", "2026-01-02T00:00")
    with pytest.raises(StagingError):
        read_manifest(stages.partition_for(spec, spec.dataset("contacts"), win), "extract")
    manifest, table = extract(spec, "contacts", win, run_id="rerun")
    assert manifest.rows == manifest.source_count == 1440 == len(rows_by(table, "id"))
    assert set(rows_by(table, "id")) == {r["id"] for r in s.records("contacts")}
    assert os.environ["AIRFLOW_CONN_HS"]
