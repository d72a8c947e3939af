"""`bulksync api presets`, `bulksync api try` and `bulksync sandbox api` as a user runs them."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bulksync.cli import app
from tests.conftest import ROOT


def test_presets_lists_every_preset_and_one_preset_its_objects() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["api", "presets"])
    assert out.exit_code == 0
    for name in (
        "hubspot",
        "msgraph",
        "dynamics365",
        "sap_odata",
        "stripe",
        "netsuite_suiteql",
        "okta",
        "workday_raas",
    ):
        assert name in out.output
    out = runner.invoke(app, ["api", "presets", "hubspot"])
    assert out.exit_code == 0 and "company_contacts" in out.output and "lastmodifieddate timestamptz" in out.output
    out = runner.invoke(app, ["api", "presets", "nope"])
    assert out.exit_code == 2 and "unknown preset 'nope'" in out.output


def _spec(tmp_path: Path, options: dict[str, Any]) -> Path:
    path = tmp_path / "acme__try.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tenant": "acme",
                "pipeline": "try",
                "start_date": "2026-01-01",
                "datasets": [
                    {
                        "name": "items",
                        "source": {"kind": "api", "conn_id": "acme", "options": options},
                        "target": {"kind": "sqlite", "conn_id": "w", "table": "items"},
                    }
                ],
            }
        )
    )
    return path


def test_try_shows_requests_paths_and_typed_rows_without_staging(standin: Any, env: Any, tmp_path: Path) -> None:
    standin("acme_rest", "acme", counts={"items": 60})
    options: dict[str, Any] = {
        "endpoint": {"path": "/v1/items/cursor"},
        "records": {
            "path": "data",
            "columns": [{"name": "id", "type": "int64"}, {"name": "amount", "type": "decimal(10,2)"}],
        },
        "paginate": {
            "kind": "cursor",
            "next_path": "meta.next_cursor",
            "cursor_param": "cursor",
            "limit_param": "limit",
            "limit": 10,
        },
    }
    out = CliRunner().invoke(app, ["api", "try", str(_spec(tmp_path, options)), "items", "--pages", "2", "--rows", "3"])
    assert out.exit_code == 0, out.output
    assert "HTTP 200, page 1" in out.output and "HTTP 200, page 2" in out.output
    assert "updated_at: str" in out.output and "20 read" in out.output and "1000" in out.output
    assert not (tmp_path / "staging").exists()
    options["records"]["columns"] = "infer"
    out = CliRunner().invoke(app, ["api", "try", str(_spec(tmp_path, options)), "items", "--pages", "1"])
    assert out.exit_code == 0, out.output
    assert "inferred columns" in out.output and "- name: updated_at\n  type: timestamptz" in out.output


@contextlib.contextmanager
def _serving(tmp_path: Path, *args: str) -> Iterator[list[str]]:
    """``bulksync sandbox api ARGS`` in a process of its own; yields the export lines of its env file."""
    env_file = tmp_path / "conn.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bulksync.cli import main; main()",
            "sandbox",
            "api",
            *args,
            "--workdir",
            str(tmp_path / "w"),
            "--env-file",
            str(env_file),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "include")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(300):
            if env_file.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert env_file.exists(), proc.stdout.read() if proc.poll() is not None and proc.stdout else "no env file"
        yield env_file.read_text().splitlines()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not env_file.exists()  # removed on exit


def test_sandbox_api_prints_ready_connection_lines(tmp_path: Path) -> None:
    with _serving(tmp_path, "stripe", "okta", "--conn-prefix", "acme_") as lines:
        assert [ln.split("=", 1)[0] for ln in lines] == [
            "export AIRFLOW_CONN_ACME_STRIPE",
            "export AIRFLOW_CONN_ACME_OKTA",
        ]
        conn = json.loads(lines[1].split("=", 1)[1].strip("'"))
        import httpx

        r = httpx.get(
            f"https://127.0.0.1:{conn['port']}/api/v1/users?limit=2",
            verify=conn["extra"]["verify"],
            headers={"Authorization": f"SSWS {conn['password']}"},
        )
        assert r.status_code == 200 and len(r.json()) == 2 and 'rel="next"' in r.headers["link"]


def test_sandbox_api_workday_and_netsuite_connections_extract_with_their_presets(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window

    with _serving(tmp_path, "workday_raas", "netsuite_suiteql", "--records", "30", "--conn-prefix", "acme_") as lines:
        assert [ln.split("=", 1)[0] for ln in lines] == [
            "export AIRFLOW_CONN_ACME_WORKDAY_RAAS",
            "export AIRFLOW_CONN_ACME_NETSUITE_SUITEQL",
        ]
        for line in lines:
            key, _, value = line.removeprefix("export ").partition("=")
            env.setenv(key, value.strip("'"))
        spec = api_pipeline(
            api_dataset("w", "acme_workday_raas", {"preset": "workday_raas", "object": "workers"}),
            api_dataset("c", "acme_netsuite_suiteql", {"preset": "netsuite_suiteql", "object": "customers"}),
        )
        for name, key, first in (("w", "Employee_ID", "210000"), ("c", "id", 1000)):
            manifest, table = extract(spec, name, window(None, None), run_id=name)
            assert manifest.rows == 30 and sorted(table.column(key).to_pylist())[0] == first


@pytest.mark.parametrize(
    ("name", "declared"),
    [("workday_raas", "Last_Updated timestamptz"), ("netsuite_suiteql", "lastmodifieddate timestamptz")],
)
def test_presets_shows_objects_whose_columns_are_inferred(name: str, declared: str) -> None:
    result = CliRunner().invoke(app, ["api", "presets", name])
    assert result.exit_code == 0, result.output
    assert "columns: infer" in result.output and declared in result.output
