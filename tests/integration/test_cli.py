"""The `bulksync` CLI: validate, list, run with progress, summary — on SQLite files in tmp_path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bulksync.cli import app

SPEC = """
tenant: t1
pipeline: p1
start_date: 2026-01-01
datasets:
  - name: people
    source:
      kind: csv_files
      options:
        path: drops
        columns:
          - {{name: id, type: int64}}
          - {{name: name, type: string}}
    transforms: [{{trim: all}}]
    target: {{kind: sqlite, conn_id: cli_wh, table: people, mode: merge, keys: [id]}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "p1.yaml").write_text(SPEC.format())
    (tmp_path / "drops").mkdir()
    (tmp_path / "drops" / "a.csv").write_text("id,name\n1, Ann \n2,Bo\n")
    monkeypatch.setenv("BULKSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("BULKSYNC_SPECS_DIR", str(tmp_path / "specs"))
    monkeypatch.setenv("BULKSYNC_STAGING_ROOT", str(tmp_path / "staging"))
    monkeypatch.setenv("AIRFLOW_CONN_CLI_WH", f"sqlite:///{tmp_path / 'wh.db'}")
    return tmp_path


def test_validate_ok_and_list(project: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["validate"])
    assert res.exit_code == 0, res.output
    assert "p1.yaml: t1__p1, 1 datasets" in res.output
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0 and "t1__p1" in res.output and "people" in res.output and "merge" in res.output


def test_validate_reports_every_problem_and_fails(project: Path) -> None:
    (project / "specs" / "p2.yaml").write_text(SPEC.format().replace("p1", "p2").replace("mode: merge, keys: [id]",
                                                                                 "mode: merge"))
    (project / "specs" / "p3.yaml").write_text("tenant: t1\npipeline: p3\nstart_date: 2026-01-01\ndatasets: []\n")
    res = CliRunner().invoke(app, ["validate"])
    assert res.exit_code == 1
    out = " ".join(res.output.split())
    assert "p2.yaml: datasets[0].target (dataset 'people') mode 'merge' needs 'keys'" in out
    assert "p3.yaml: datasets List should have at least 1 item" in out
    assert "2 problem(s)" in out


def test_run_loads_and_summary_reports(project: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["run", "p1"])
    assert res.exit_code == 0, res.output
    assert "people" in res.output
    rows = sqlite3.connect(project / "wh.db").execute("SELECT id, name FROM people ORDER BY id").fetchall()
    assert rows == [(1, "Ann"), (2, "Bo")]
    res = runner.invoke(app, ["summary", "t1__p1"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "people window full" in out and "extracted 2 · staged 2 · loaded 2 (merge)" in out
    assert "staging/t1/p1/people/full" in out and "sqlite:cli_wh/people (2)" in out


def test_run_bad_data_fails_with_clear_message_and_loads_nothing(project: Path) -> None:
    (project / "drops" / "b.csv").write_text("id,name\n3,Cy\nfour,Di\n")
    res = CliRunner().invoke(app, ["run", "p1"])
    assert res.exit_code == 1
    out = " ".join(res.output.split())
    assert "b.csv, line 3, column 'id': value 'four' is not a valid int64" in out
    assert not (project / "wh.db").exists() or sqlite3.connect(project / "wh.db").execute(
        "SELECT count(*) FROM sqlite_master WHERE name='people'").fetchone() == (0,)
    assert not (project / "staging" / "t1" / "p1" / "people" / "full").exists()


def test_unknown_pipeline(project: Path) -> None:
    res = CliRunner().invoke(app, ["run", "nope"])
    assert res.exit_code == 2 and "no pipeline 'nope'" in res.output
