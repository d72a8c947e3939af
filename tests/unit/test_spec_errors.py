"""Invalid pipeline specs: every problem is a SpecError naming the file, the field path and the problem.

Each case starts from a small valid spec, breaks one thing, and asserts the exact ``(file, path,
message)`` triple a user would read in the Airflow import-error view.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from bulksync.errors import SpecError, TerminalError
from bulksync.spec.loader import parse_spec

FILE = "acme__nightly.yaml"
DS = " (dataset 'accounts')"

BASE: dict[str, Any] = {
    "tenant": "acme",
    "pipeline": "nightly",
    "start_date": "2024-01-01",
    "datasets": [
        {
            "name": "accounts",
            "source": {"kind": "sql", "conn_id": "crm_db", "options": {"table": "dbo.accounts"}},
            "target": {"kind": "postgres", "conn_id": "dwh", "table": "accounts"},
        }
    ],
}


def problems_of(mutate: Callable[[dict[str, Any]], Any]) -> list[tuple[str, str, str]]:
    """Apply ``mutate`` to a fresh copy of the base spec and return the problems it raises."""
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(SpecError) as info:
        parse_spec(data, FILE)
    return info.value.problems


def ds(data: dict[str, Any]) -> dict[str, Any]:
    return data["datasets"][0]


def opts(data: dict[str, Any]) -> dict[str, Any]:
    return data["datasets"][0]["source"]["options"]


def with_transforms(*steps: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: ds(d).update(transforms=list(steps))


def csv_source(columns: list[dict[str, Any]], **extra: Any) -> Callable[[dict[str, Any]], None]:
    src = {"kind": "csv_files", "options": {"path": "/drops/acme", "columns": columns, **extra}}
    return lambda d: ds(d).update(source=src)


CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    (
        "unknown_source_kind",
        lambda d: ds(d)["source"].update(kind="oracle"),
        "datasets[0].source" + DS,
        "unknown or missing source kind; registered kinds: sql, csv_files",
    ),
    (
        "missing_source_kind",
        lambda d: ds(d)["source"].pop("kind"),
        "datasets[0].source" + DS,
        "unknown or missing source kind",
    ),
    (
        "merge_without_keys",
        lambda d: ds(d)["target"].update(mode="merge"),
        "datasets[0].target" + DS,
        "mode 'merge' needs 'keys'",
    ),
    (
        "interval_without_column",
        lambda d: ds(d)["target"].update(mode="interval"),
        "datasets[0].target" + DS,
        "mode 'interval' needs 'interval_column'",
    ),
    (
        "unknown_mode",
        lambda d: ds(d)["target"].update(mode="upsert"),
        "datasets[0].target.mode" + DS,
        "Input should be 'append', 'merge', 'replace' or 'interval'",
    ),
    (
        "duplicate_keys",
        lambda d: ds(d)["target"].update(mode="merge", keys=["id", "id"]),
        "datasets[0].target" + DS,
        "'keys' names a column twice",
    ),
    (
        "bad_cron_minute",
        lambda d: d.update(schedule="61 * * * *"),
        "schedule",
        "'61 * * * *' is not a valid cron expression or preset",
    ),
    ("bad_cron_words", lambda d: d.update(schedule="every night"), "schedule", "e.g. '0 2 * * *' for 02:00 daily"),
    (
        "unknown_time_zone",
        lambda d: d.update(timezone="Mars/Olympus"),
        "timezone",
        "unknown time zone 'Mars/Olympus'; use an IANA name",
    ),
    ("typo_top_level", lambda d: d.update(schedul="@daily"), "schedul", "unknown field (check the spelling"),
    (
        "typo_in_source_options",
        lambda d: opts(d).update(tabel="dbo.accounts"),
        "datasets[0].source.options.tabel" + DS,
        "unknown field (check the spelling",
    ),
    ("retries_at_top_level", lambda d: d.update(retries=3), "retries", "unknown field"),
    (
        "retries_not_a_number",
        lambda d: d.update(tasks={"retries": "three"}),
        "tasks.retries",
        "Input should be a valid integer",
    ),
    ("retries_too_many", lambda d: d.update(tasks={"retries": 50}), "tasks.retries", "less than or equal to 20"),
    (
        "table_and_query",
        lambda d: opts(d).update(query="SELECT * FROM dbo.accounts"),
        "datasets[0].source.options" + DS,
        "give exactly one of 'table' or 'query'",
    ),
    (
        "neither_table_nor_query",
        lambda d: opts(d).pop("table"),
        "datasets[0].source.options" + DS,
        "give exactly one of 'table' or 'query'",
    ),
    (
        "incremental_without_cursor",
        lambda d: opts(d).update(incremental=True),
        "datasets[0].source.options" + DS,
        "'incremental: true' needs 'cursor_field'",
    ),
    (
        "sql_source_without_conn_id",
        lambda d: ds(d)["source"].pop("conn_id"),
        "datasets[0].source.conn_id" + DS,
        "Field required",
    ),
    (
        "unknown_transform_op",
        with_transforms({"explode": ["tags"]}),
        "datasets[0].transforms[0]" + DS,
        "a transform step is a mapping with exactly one of: rename, select, drop",
    ),
    (
        "two_ops_in_one_step",
        with_transforms({"rename": {"a": "b"}, "drop": ["c"]}),
        "datasets[0].transforms[0]" + DS,
        "exactly one of",
    ),
    (
        "filter_dunder_import",
        with_transforms({"filter": "__import__('os') == 1"}),
        "datasets[0].transforms[0].filter" + DS,
        "unknown function '__import__'",
    ),
    (
        "filter_os_system",
        with_transforms({"rename": {"a": "b"}}, {"filter": "os.system('rm -rf /') == 0"}),
        "datasets[0].transforms[1].filter" + DS,
        "Call is not allowed in expression",
    ),
    (
        "filter_attribute",
        with_transforms({"filter": "os.environ"}),
        "datasets[0].transforms[0].filter" + DS,
        "Attribute is not allowed in expression 'os.environ'",
    ),
    (
        "derive_dunder_class",
        with_transforms({"derive": {"x": "x.__class__"}}),
        "datasets[0].transforms[0].derive" + DS,
        "Attribute is not allowed in expression 'x.__class__'",
    ),
    (
        "derive_subscript",
        with_transforms({"derive": {"x": "name[0]"}}),
        "datasets[0].transforms[0].derive" + DS,
        "Subscript is not allowed",
    ),
    (
        "filter_lambda",
        with_transforms({"filter": "(lambda: 1)() == 1"}),
        "datasets[0].transforms[0].filter" + DS,
        "is not allowed in expression",
    ),
    (
        "filter_syntax_error",
        with_transforms({"filter": "amount >"}),
        "datasets[0].transforms[0].filter" + DS,
        "cannot parse expression 'amount >'",
    ),
    (
        "cast_decimal_too_wide",
        with_transforms({"cast": {"amount": "decimal(40,2)"}}),
        "datasets[0].transforms[0].cast.amount" + DS,
        "decimal(40,2): precision must be 1..38",
    ),
    (
        "cast_varchar",
        with_transforms({"cast": {"amount": "varchar"}}),
        "datasets[0].transforms[0].cast.amount" + DS,
        "unknown type 'varchar'; use one of binary, bool, date",
    ),
    (
        "csv_column_varchar",
        csv_source([{"name": "id", "type": "varchar"}]),
        "datasets[0].source.options.columns[0].type" + DS,
        "unknown type 'varchar'",
    ),
    (
        "csv_column_declared_twice",
        csv_source([{"name": "id", "type": "int"}, {"name": "id", "type": "string"}]),
        "datasets[0].source.options" + DS,
        "column names declared twice: id",
    ),
    (
        "csv_pk_undeclared",
        csv_source([{"name": "id", "type": "int"}], primary_key=["account_id"]),
        "datasets[0].source.options" + DS,
        "primary_key names undeclared columns: account_id",
    ),
    (
        "csv_two_char_delimiter",
        csv_source([{"name": "id", "type": "int"}], delimiter=";;"),
        "datasets[0].source.options.delimiter" + DS,
        "at most 1 character",
    ),
    (
        "hash_salt_in_two_places",
        with_transforms({"hash": {"columns": ["email"], "salt": {"variable": "v", "conn_id": "c"}}}),
        "datasets[0].transforms[0].hash.salt" + DS,
        "give exactly one of 'variable' or 'conn_id'",
    ),
    (
        "tenant_not_a_slug",
        lambda d: d.update(tenant="Acme-Corp"),
        "tenant",
        "'Acme-Corp' is not a valid name: use lowercase letters, digits and '_'",
    ),
    (
        "pipeline_not_a_slug",
        lambda d: d.update(pipeline="nightly sync"),
        "pipeline",
        "'nightly sync' is not a valid name",
    ),
    (
        "dataset_name_not_a_slug",
        lambda d: ds(d).update(name="1accounts"),
        "datasets[0].name (dataset '1accounts')",
        "'1accounts' is not a valid name",
    ),
    (
        "quality_suite_not_a_slug",
        lambda d: ds(d).update(quality={"suite": "Accounts Suite"}),
        "datasets[0].quality.suite" + DS,
        "'Accounts Suite' is not a valid name",
    ),
    (
        "target_table_with_quotes",
        lambda d: ds(d)["target"].update(table='"accounts"; DROP TABLE x'),
        "datasets[0].target.table" + DS,
        "is not a valid SQL identifier",
    ),
    (
        "unknown_target_kind",
        lambda d: ds(d)["target"].update(kind="oracle"),
        "datasets[0].target.kind" + DS,
        "Input should be 'postgres' or 'sqlite'",
    ),
    ("no_datasets", lambda d: d.update(datasets=[]), "datasets", "List should have at least 1 item"),
    ("missing_start_date", lambda d: d.pop("start_date"), "start_date", "Field required"),
]


@pytest.mark.parametrize(("mutate", "path", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_spec_names_file_path_and_problem(
    mutate: Callable[[dict[str, Any]], Any], path: str, phrase: str
) -> None:
    problems = problems_of(mutate)
    assert [(f, p) for f, p, _ in problems] == [(FILE, path)]
    assert phrase in problems[0][2]


def test_spec_error_is_terminal_and_its_message_reads_file_path_problem() -> None:
    data = copy.deepcopy(BASE)
    data["timezone"] = "Mars/Olympus"
    with pytest.raises(SpecError) as info:
        parse_spec(data, FILE)
    assert isinstance(info.value, TerminalError)
    assert info.value.terminal
    assert str(info.value) == (
        "invalid pipeline spec:\n"
        "  acme__nightly.yaml: timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as 'Europe/Berlin'"
    )


def test_all_problems_are_reported_in_one_error() -> None:
    def break_three(d: dict[str, Any]) -> None:
        d["schedule"] = "bad"
        d["timezone"] = "Nowhere/X"
        ds(d)["target"]["mode"] = "merge"
        d["datasets"].append(
            {
                "name": "orders",
                "source": {"kind": "sql", "conn_id": "crm_db", "options": {"table": "t", "colums": ["a"]}},
                "target": {"kind": "postgres", "conn_id": "dwh", "table": "orders"},
            }
        )

    data = copy.deepcopy(BASE)
    break_three(data)
    with pytest.raises(SpecError) as info:
        parse_spec(data, FILE)
    assert [(f, p) for f, p, _ in info.value.problems] == [
        (FILE, "schedule"),
        (FILE, "timezone"),
        (FILE, "datasets[0].target" + DS),
        (FILE, "datasets[1].source.options.colums (dataset 'orders')"),
    ]
    text = str(info.value)
    assert text.startswith("4 problems in pipeline specs:\n")
    for file, path, msg in info.value.problems:
        assert f"  {file}: {path}: {msg}" in text


def two_datasets(second: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        other = copy.deepcopy(ds(d))
        other.update(second)
        d["datasets"].append(other)

    return mutate


def test_duplicate_dataset_names_are_refused() -> None:
    problems = problems_of(two_datasets({"target": {"kind": "postgres", "conn_id": "dwh", "table": "accounts2"}}))
    assert len(problems) == 1
    assert problems[0][0] == FILE
    assert problems[0][2] == "dataset names must be unique; repeated: accounts"


def test_two_datasets_loading_the_same_table_are_refused() -> None:
    problems = problems_of(two_datasets({"name": "accounts_copy"}))
    assert len(problems) == 1
    assert problems[0][0] == FILE
    assert problems[0][2] == "two datasets load the same target table: accounts"


def test_same_table_name_in_different_schemas_is_allowed() -> None:
    data = copy.deepcopy(BASE)
    two_datasets(
        {
            "name": "accounts_eu",
            "target": {"kind": "postgres", "conn_id": "dwh", "table": "accounts", "db_schema": "eu"},
        }
    )(data)
    spec = parse_spec(data, FILE)
    assert [(d.name, d.target.db_schema, d.target.table) for d in spec.datasets] == [
        ("accounts", None, "accounts"),
        ("accounts_eu", "eu", "accounts"),
    ]


@pytest.mark.parametrize(
    "second",
    [{"target": {"kind": "postgres", "conn_id": "dwh", "table": "accounts2"}}, {"name": "accounts_copy"}],
    ids=["same_name", "same_table"],
)
def test_dataset_clashes_name_a_field_path(second: dict[str, Any]) -> None:
    problems = problems_of(two_datasets(second))
    assert problems[0][1] == "datasets"


@pytest.mark.parametrize("data", [[1, 2], "just text", None], ids=["list", "str", "empty"])
def test_non_mapping_spec_is_refused(data: Any) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(data, FILE)
    assert info.value.problems == [(FILE, "", f"a spec must be a YAML mapping, got {type(data).__name__}")]
