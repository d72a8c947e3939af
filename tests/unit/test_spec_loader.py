"""Loading spec files: a valid full spec and its documented defaults, YAML errors, file naming, folders."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bulksync.errors import SpecError
from bulksync.spec import transforms as t
from bulksync.spec.loader import load_spec, load_specs, spec_files

MINIMAL = """\
tenant: acme
pipeline: {pipeline}
start_date: 2024-01-01
datasets:
  - name: accounts
    source: {{kind: sql, conn_id: crm_db, options: {{table: dbo.accounts}}}}
    target: {{kind: postgres, conn_id: dwh, table: accounts}}
"""

FULL = """\
tenant: acme
pipeline: crm_sync
description: Nightly CRM sync
schedule: "0 2 * * 1-5"
timezone: Europe/Berlin
start_date: 2024-03-01
tags: [crm, nightly]
tasks: {retries: 5, retry_delay_minutes: 2}
datasets:
  - name: accounts
    source:
      kind: csv_files
      options:
        path: drops/acme
        pattern: "accounts_*.csv"
        delimiter: ";"
        columns:
          - {name: id, type: bigint, nullable: false}
          - {name: name, type: text}
          - {name: balance, type: "DECIMAL(18, 2)"}
          - {name: updated_at, type: timestamptz}
        primary_key: [id]
    transforms:
      - rename: {name: account_name}
      - trim: all
      - filter: "balance >= 0 and account_name != 'TEST'"
      - dedupe: {keys: [id], latest_by: updated_at}
      - hash: {columns: [account_name], salt: {variable: acme_pii_salt}}
    quality: {suite: acme_accounts, on_failure: quarantine}
    target: {kind: postgres, conn_id: dwh, table: accounts, db_schema: acme, mode: merge, keys: [id]}
  - name: orders
    source:
      kind: sql
      conn_id: erp
      options: {table: sales.orders, incremental: true, cursor_field: changed_at}
    target: {kind: sqlite, conn_id: lake, table: orders}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_full_spec_parses_with_every_value_and_default(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "crm_sync.yaml", FULL))

    assert (spec.tenant, spec.pipeline, spec.dag_id) == ("acme", "crm_sync", "acme__crm_sync")
    assert (spec.schedule, spec.timezone, spec.catchup, spec.tags) == (
        "0 2 * * 1-5",
        "Europe/Berlin",
        False,
        ["crm", "nightly"],
    )
    assert spec.start_datetime() == dt.datetime(2024, 3, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert spec.tasks.model_dump() == {
        "retries": 5,
        "retry_delay_minutes": 2,
        "retry_exponential_backoff": True,
        "max_retry_delay_minutes": 60,
        "execution_timeout_minutes": 120,
    }
    accounts = spec.dataset("accounts")
    opts = accounts.source.options
    assert [(c.name, c.type, c.nullable) for c in opts.columns] == [
        ("id", "int64", False),
        ("name", "string", True),
        ("balance", "decimal(18,2)", True),
        ("updated_at", "timestamptz", True),
    ]
    assert (opts.path, opts.pattern, opts.delimiter, opts.encoding, opts.header, opts.null_values) == (
        "drops/acme",
        "accounts_*.csv",
        ";",
        "utf-8",
        True,
        [""],
    )
    assert [type(s) for s in accounts.transforms] == [t.RenameStep, t.TrimStep, t.FilterStep, t.DedupeStep, t.HashStep]
    assert [t.step_op(s) for s in accounts.transforms] == ["rename", "trim", "filter", "dedupe", "hash"]
    assert accounts.transforms[3].dedupe.model_dump() == {"keys": ["id"], "latest_by": "updated_at"}
    assert accounts.quality is not None
    assert accounts.quality.model_dump() == {"suite": "acme_accounts", "on_failure": "quarantine", "pii_columns": []}
    assert accounts.target.model_dump() == {
        "kind": "postgres",
        "conn_id": "dwh",
        "table": "accounts",
        "db_schema": "acme",
        "mode": "merge",
        "keys": ["id"],
        "interval_column": None,
        "schema_changes": "evolve",
        "delete_flag": None,
    }
    orders = spec.dataset("orders")
    assert orders.source.options.model_dump() == {
        "table": "sales.orders",
        "query": None,
        "columns": None,
        "incremental": True,
        "cursor_field": "changed_at",
        "overlap_minutes": 0,
        "primary_key": [],
        "batch_size": 50_000,
        "chunking": None,
    }
    assert (orders.target.mode, orders.transforms, orders.quality) == ("append", [], None)


def test_minimal_spec_gets_the_documented_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "nightly.yaml", MINIMAL.format(pipeline="nightly")))
    assert (spec.schedule, spec.timezone, spec.catchup, spec.owner, spec.max_active_runs) == (
        "@daily",
        "UTC",
        False,
        "bulksync",
        1,
    )
    assert (spec.tasks.retries, spec.tasks.retry_delay_minutes, spec.tasks.retry_exponential_backoff) == (3, 5, True)
    assert spec.staging.root is None
    target = spec.datasets[0].target
    assert (target.mode, target.schema_changes, target.keys, target.db_schema) == ("append", "evolve", [], None)
    assert spec.start_datetime() == dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC"))


def test_schedule_null_means_triggered_only(tmp_path: Path) -> None:
    text = MINIMAL.format(pipeline="nightly").replace("start_date:", "schedule: null\nstart_date:")
    assert load_spec(write(tmp_path, "nightly.yaml", text)).schedule is None


def test_unknown_dataset_lookup_lists_the_known_ones(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "crm_sync.yaml", FULL))
    with pytest.raises(KeyError, match="pipeline acme__crm_sync has no dataset 'invoices'; it has: accounts, orders"):
        spec.dataset("invoices")


@pytest.mark.parametrize("name", ["nightly.yaml", "acme__nightly.yaml", "nightly.yml"])
def test_file_may_be_named_after_pipeline_or_dag_id(tmp_path: Path, name: str) -> None:
    assert load_spec(write(tmp_path, name, MINIMAL.format(pipeline="nightly"))).dag_id == "acme__nightly"


def test_pipeline_name_must_match_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "weekly.yaml", MINIMAL.format(pipeline="nightly"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems == [
        (
            str(path),
            "pipeline",
            "is 'nightly' but the file is named 'weekly.yaml'; name the file nightly.yaml or acme__nightly.yaml",
        )
    ]


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        tenant: acme
        pipeline: nightly
        datasets:
          - name: accounts
           source: {kind: sql}
        """)
    path = write(tmp_path, "nightly.yaml", text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    [(file, field, msg)] = info.value.problems
    assert (file, field) == (str(path), "")
    assert msg.startswith("not valid YAML: line 5, column 4: ")


def test_unclosed_bracket_reports_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "nightly.yaml", "tenant: acme\npipeline: nightly\ntags: [a, b\nschedule: '@daily'\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "not valid YAML: line 4" in info.value.problems[0][2]


def test_field_error_from_a_file_names_the_file_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nightly.yaml",
        MINIMAL.format(pipeline="nightly").replace("table: dbo.accounts", "tabel: dbo.accounts"),
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems == [
        (
            str(path),
            "datasets[0].source.options.tabel (dataset 'accounts')",
            "unknown field (check the spelling; see docs/specs.md for the fields); did you mean 'table'? (line 6)",
        )
    ]


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems == [(str(path), "", "cannot read the file: No such file or directory")]


def test_spec_files_skips_hidden_private_and_other_files(tmp_path: Path) -> None:
    for name in ["b.yaml", "a.yml", "_shared.yaml", ".draft.yaml", "notes.txt", "c.yaml.bak"]:
        write(tmp_path, name, "x: 1\n")
    (tmp_path / "sub.yaml").mkdir()
    assert [p.name for p in spec_files(tmp_path)] == ["a.yml", "b.yaml"]


def test_load_specs_returns_every_valid_spec_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "zeta.yaml", MINIMAL.format(pipeline="zeta"))
    write(tmp_path, "alpha.yaml", MINIMAL.format(pipeline="alpha"))
    write(tmp_path, "_template.yaml", "not: [valid")
    assert [s.dag_id for s in load_specs(tmp_path)] == ["acme__alpha", "acme__zeta"]


def test_load_specs_reports_problems_of_several_files_together(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", MINIMAL.format(pipeline="good"))
    bad_yaml = write(tmp_path, "a_broken.yaml", "tenant: acme\n  pipeline: x\n")
    bad_tz = write(tmp_path, "b_tz.yaml", MINIMAL.format(pipeline="b_tz") + "timezone: Mars/Base\n")
    misnamed = write(tmp_path, "c_misnamed.yaml", MINIMAL.format(pipeline="other"))
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    problems = info.value.problems
    assert [(f, p) for f, p, _ in problems] == [
        (str(bad_yaml), ""),
        (str(bad_tz), "timezone"),
        (str(misnamed), "pipeline"),
    ]
    assert problems[0][2].startswith("not valid YAML: line 2")
    assert problems[1][2].startswith("unknown time zone 'Mars/Base'")
    assert str(info.value).startswith("3 problems in pipeline specs:\n")


def test_load_specs_duplicate_dag_id_names_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "acme__nightly.yaml", MINIMAL.format(pipeline="nightly"))
    second = write(tmp_path, "nightly.yaml", MINIMAL.format(pipeline="nightly"))
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    assert info.value.problems == [
        (str(second), "pipeline", f"tenant+pipeline 'acme__nightly' is already defined in {first}")
    ]


def test_load_specs_duplicate_dag_id_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "acme__nightly.yaml", MINIMAL.format(pipeline="nightly"))
    write(tmp_path, "nightly.yaml", MINIMAL.format(pipeline="nightly"))
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    assert len(info.value.problems) == 1 and "is already defined in" in info.value.problems[0][2]
