"""The `bulksync` CLI: validate, list, run with progress, summary — on SQLite files in tmp_path."""

from __future__ import annotations

import re
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
    assert "people window full" in out
    assert (
        "source not reported · staged 2 · quarantined 0 · rejected by transforms 0 · loaded 2 "
        "(merge: 2 inserted, 0 updated)" in out
    )
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


ORDERS = """
tenant: t1
pipeline: orders
start_date: 2026-01-01
datasets:
  - name: orders
    source:
      kind: csv_files
      options:
        path: orders
        columns:
          - {name: id, type: int64}
          - {name: status, type: string}
          - {name: quantity, type: int64}
          - {name: gone, type: bool}
    quality: {suite: cli_orders, on_failure: quarantine}
    transforms: [{filter: "status != 'test'"}]
    target: {kind: sqlite, conn_id: cli_wh, table: orders, mode: merge, keys: [id], delete_flag: gone}
"""
SUITE = {
    "name": "cli_orders",
    "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "quantity", "min_value": 1, "max_value": 9}}
    ],
}


def _orders(project: Path, rows: list[tuple[int, str, int, bool]]) -> None:
    lines = ["id,status,quantity,gone"] + [f"{i},{s},{q},{str(g).lower()}" for i, s, q, g in rows]
    (project / "orders").mkdir(exist_ok=True)
    (project / "orders" / "o.csv").write_text("\n".join(lines) + "\n")


def test_one_set_of_counts_and_labels_in_cli_report_audit_and_assets(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 9: a merge with deletes, quarantined rows and rows a filter rejects."""
    import json

    from bulksync.factory.assets import event_extra

    (project / "specs" / "orders.yaml").write_text(ORDERS)
    (project / "expectations").mkdir()
    (project / "expectations" / "cli_orders.json").write_text(json.dumps(SUITE))
    monkeypatch.setenv("BULKSYNC_EXPECTATIONS_DIR", str(project / "expectations"))
    monkeypatch.setenv("BULKSYNC_REPORTS_ROOT", str(project / "reports"))
    runner = CliRunner()
    # night 1: ids 1..6 (one test row, one impossible quantity)
    _orders(
        project,
        [
            (1, "new", 1, False),
            (2, "new", 2, False),
            (3, "test", 1, False),
            (4, "new", 50, False),
            (5, "new", 3, False),
            (6, "new", 4, False),
        ],
    )
    assert runner.invoke(app, ["run", "t1__orders"]).exit_code == 0
    # night 2: two deletions (5, 6 exist; 9 does not), 1 update, 1 new, 1 quarantined, 1 rejected
    _orders(
        project,
        [
            (5, "x", 1, True),
            (6, "x", 1, True),
            (9, "x", 1, True),
            (1, "paid", 2, False),
            (7, "new", 1, False),
            (8, "new", 99, False),
            (10, "test", 1, False),
        ],
    )
    res = runner.invoke(app, ["run", "t1__orders"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    # staged 7 = loaded 2 (1 inserted, 1 updated) + deletions 3 + quarantined 1 + rejected 1
    table = " ".join(res.output.split())
    assert "orders │ 7 │ 1 │ 1 │ 2 │ 3 │ merge: 1 inserted, 1 updated, 2 target rows deleted" in table, res.output

    out = " ".join(runner.invoke(app, ["summary", "t1__orders"]).output.split())
    line = (
        "source not reported · staged 7 · quarantined 1 · rejected by transforms 1 · loaded 2 · deletions 3 "
        "(merge: 1 inserted, 1 updated, 2 target rows deleted)"
    )
    assert line in out, out

    con = sqlite3.connect(project / "wh.db")
    audit = con.execute(
        "SELECT staged, quarantined, rejected, loaded, deletions, inserted, updated, deleted FROM bulksync_runs "
        "WHERE dataset = 'orders' ORDER BY finished_at DESC LIMIT 1"
    ).fetchone()
    assert audit == (7, 1, 1, 2, 3, 1, 1, 2)
    assert con.execute("SELECT id FROM orders ORDER BY id").fetchall() == [(1,), (2,), (7,)]

    page = " ".join((project / "reports/t1/orders/index.html").read_text().split())
    for label, value in [
        ("Source", "not reported"),
        ("Staged", "7"),
        ("Quarantined", "1"),
        ("Rejected by transforms", "1"),
        ("Loaded", "2"),
        ("Deletions", "3"),
    ]:
        assert f'<th>{label}</th><td class="num">{value}</td>' in page or f"<th>{label}</th><td>{value}</td>" in page, (
            label,
            page[page.find("Reconciliation") :][:1500],
        )
    assert "target rows deleted <b>2</b>" in page

    record = json.loads(sorted((project / "reports/t1/orders/runs/orders").glob("*.json"))[-1].read_text())
    rec = record["reconciliation"]
    extra = event_extra({**rec, "status": record["status"]}, {"run_id": record["run_id"]})
    assert {k: extra[k] for k in ("staged", "quarantined", "rejected", "loaded", "deletions")} == {
        "staged": 7,
        "quarantined": 1,
        "rejected": 1,
        "loaded": 2,
        "deletions": 3,
    }


def test_run_preflight_names_every_missing_thing_before_extracting(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 12: a missing target connection, salt, suite and folder are all named up front."""
    spec = (
        SPEC.format()
        .replace("path: drops", "path: nowhere")
        .replace(
            "transforms: [{trim: all}]",
            "quality: {suite: no_such_suite}\n    transforms: [{hash: {columns: [name], salt: {variable: cli_salt}}}]",
        )
    )
    (project / "specs" / "p1.yaml").write_text(spec)
    monkeypatch.delenv("AIRFLOW_CONN_CLI_WH")
    monkeypatch.delenv("AIRFLOW_VAR_CLI_SALT", raising=False)
    monkeypatch.setenv("BULKSYNC_EXPECTATIONS_DIR", str(project / "expectations"))
    res = CliRunner().invoke(app, ["run", "p1"], env={"COLUMNS": "250"})
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "t1__p1: 4 thing(s) the run needs are missing; nothing was run" in out
    assert (
        "people: target (sqlite) connection 'cli_wh': not defined; add it in the UI (Admin > Connections), "
        "as AIRFLOW_CONN_CLI_WH" in out
    )
    assert "people: quality suite 'no_such_suite': " in out and "no suite 'no_such_suite'" in out
    assert (
        "people: hash salt: Airflow Variable 'cli_salt' (hash salt) is not defined" in out
        and "AIRFLOW_VAR_CLI_SALT" in out
    )
    assert f"people: source folder {project / 'nowhere'}: does not exist (source.options.path)" in out
    assert not (project / "staging").exists()


def test_run_progress_bars_show_total_percentage_rate_and_eta(project: Path) -> None:
    """Issue 14 item 13: totals where known; validate and reconcile show rows, not "0 rows"."""
    import json

    (project / "drops" / "a.csv").write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 1001)))
    spec = SPEC.format().replace(
        "transforms: [{trim: all}]", "quality: {suite: cli_people}\n    transforms: [{trim: all}]"
    )
    (project / "specs" / "p1.yaml").write_text(spec)
    (project / "expectations").mkdir()
    (project / "expectations" / "cli_people.json").write_text(
        json.dumps(
            {
                "name": "cli_people",
                "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}],
            }
        )
    )
    import os

    os.environ["BULKSYNC_EXPECTATIONS_DIR"] = str(project / "expectations")
    try:
        res = CliRunner().invoke(app, ["run", "p1"], env={"COLUMNS": "250"})
    finally:
        del os.environ["BULKSYNC_EXPECTATIONS_DIR"]
    assert res.exit_code == 0, res.output
    bars = [" ".join(line.split()) for line in res.output.splitlines() if line.startswith("people: ")]
    by_stage = {b.split(" ")[1]: b for b in bars}
    for stage in ("extract", "validate", "transform", "load", "reconcile"):
        assert stage in by_stage, bars
        assert "100% 1000/1000" in by_stage[stage], by_stage[stage]
    assert re.search(r" [\d,]+/s ", by_stage["load"]) and "eta" in by_stage["load"]  # rate (rows/s) and ETA
    assert not re.search(r" [\d,]+/s ", by_stage["reconcile"])
    assert "(pass, 0 quarantined)" in by_stage["validate"] and "(counts add up)" in by_stage["reconcile"]


def test_version() -> None:
    from importlib.metadata import version

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.startswith(f"bulksync {version('bulksync')} (apache-airflow {version('apache-airflow')}")


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    out = [(path, group)]
    if hasattr(group, "commands"):  # a group (typer's own classes, not click's)
        for name, cmd in group.commands.items():
            out.extend(_commands(cmd, (*path, name)))
    return out


def test_every_option_has_help_and_flags_show_no_value_placeholder() -> None:
    """Issue 14 item 14: `--verbose <bool>` reads as if the flag took a value; options without help."""
    import typer.main

    root = typer.main.get_command(app)
    missing = [
        f"bulksync {' '.join(path)} {param.opts[0] if hasattr(param, 'opts') else param.name}"
        for path, cmd in _commands(root)
        for param in cmd.params  # type: ignore[attr-defined]
        if not getattr(param, "help", None) and param.name not in ("help",)
    ]
    assert missing == []
    runner = CliRunner()
    for path, _ in _commands(root):
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, (path, res.output)
        assert "<bool>" not in res.output, (path, res.output)
    help_run = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert any(
        line.split() == ["│", "--verbose", "-v", "Log", "each", "stage's", "INFO", "lines.", "│"]
        for line in help_run.splitlines()
    ), help_run


def test_list_piped_prints_whole_ids_tab_separated(project: Path) -> None:
    long = "a_rather_long_tenant_name_for_a_big_client__with_a_long_pipeline_name"
    (project / "specs" / "p1.yaml").unlink()
    (project / "specs" / f"{long}.yaml").write_text(
        SPEC.format()
        .replace("tenant: t1", "tenant: a_rather_long_tenant_name_for_a_big_client")
        .replace("pipeline: p1", "pipeline: with_a_long_pipeline_name")
        .replace("table: people", "table: " + "x" * 60)
    )
    res = CliRunner().invoke(app, ["list"], env={"COLUMNS": "60"})
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "DAG id\tschedule\tdataset\tsource\ttarget\tmode",
        f"{long}\t@daily\tpeople\tcsv_files\tsqlite:cli_wh/{'x' * 60}\tmerge",
    ]


def test_validate_gives_lines_did_you_mean_and_no_check_mark_after_a_failed_file(project: Path) -> None:
    text = SPEC.format().replace("mode: merge", "mode: merge, kees: [x]").replace("kind: sqlite", "kind: sqlit")
    text = text.replace("kind: csv_files", "kind: csv_file")
    (project / "specs" / "p2.yaml").write_text(text.replace("p1", "p2"))
    # p3 parses but names a missing suite: its problem is listed and no ✓ follows
    (project / "specs" / "p3.yaml").write_text(
        SPEC.format().replace("p1", "p3").replace("transforms: [{trim: all}]", "quality: {suite: nope}")
    )
    res = CliRunner().invoke(app, ["validate"], env={"COLUMNS": "300"})
    assert res.exit_code == 1
    lines = res.output.splitlines()
    out = " ".join(res.output.split())
    assert "p2.yaml: datasets[0].source (dataset 'people') unknown or missing source kind; registered kinds: " in out
    assert "did you mean 'csv_files'? (line 7)" in out  # the `source:` key
    assert (
        "p2.yaml: datasets[0].target.kind (dataset 'people') Input should be 'postgres' or 'sqlite'; "
        "did you mean 'sqlite'? (line 15)" in out
    )
    assert "p2.yaml: datasets[0].target.kees (dataset 'people') unknown field" in out
    assert "did you mean 'keys'? (line 15)" in out
    assert any(line.startswith("✓ p1.yaml") for line in lines)
    assert not any(line.startswith("✓ p2.yaml") or line.startswith("✓ p3.yaml") for line in lines), lines
    assert "no suite 'nope'" in out
