"""`bulksync api presets`, `bulksync api try` and `bulksync sandbox api` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def test_sandbox_api_prints_ready_connection_lines(tmp_path: Path) -> None:
    env_file = tmp_path / "conn.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bulksync.cli import main; main()",
            "sandbox",
            "api",
            "stripe",
            "okta",
            "--conn-prefix",
            "acme_",
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
        lines = env_file.read_text().splitlines()
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not env_file.exists()  # removed on exit
