"""Profiling a staged partition into a starting GX suite, and ``bulksync quality init``.

The profile must hold on the data it was learnt from: each test that profiles a partition also
validates that same data with Great Expectations and expects every expectation to pass.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from bulksync.errors import DataError
from bulksync.quality.cli import quality_app
from bulksync.quality.profile import gx_type_name, profile_partition
from bulksync.quality.suites import check_suite, suite_problems
from bulksync.staging import Partition, PartitionWriter, Window, iter_batches, read_manifest

UTC = dt.UTC
DAY = Window(dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC))
KEY = DAY.key
BIG = 2**53 + 1  # not exactly representable as a float: GX reads range bounds as floats

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("region", pa.string()),
        pa.field("status", pa.string()),
        pa.field("name", pa.string()),
        pa.field("score", pa.int32()),
        pa.field("big", pa.int64()),
        pa.field("ratio", pa.float64()),
        pa.field("amount", pa.decimal128(18, 2)),
        pa.field("opened", pa.date32()),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
        pa.field("local_at", pa.timestamp("us")),
        pa.field("active", pa.bool_()),
        pa.field("blob", pa.binary()),
    ]
)


def batch(start: int, count: int) -> pa.RecordBatch:
    ids = list(range(start, start + count))
    return pa.record_batch(
        [
            pa.array(ids, pa.int64()),
            pa.array(["north" if i % 2 else "south" for i in ids]),
            pa.array([None if i % 5 == 0 else ("open", "closed", "held")[i % 3] for i in ids]),
            pa.array([f"customer {i}" for i in ids]),
            pa.array([None if i % 7 == 0 else i * 3 - 40 for i in ids], pa.int32()),
            pa.array([BIG + i for i in ids], pa.int64()),
            pa.array([i / 10 for i in ids]),
            pa.array([Decimal(i) / 10 + Decimal("0.01") for i in ids], pa.decimal128(18, 2)),
            pa.array([dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in ids]),
            pa.array([dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=i, microseconds=7) for i in ids]),
            pa.array([dt.datetime(2026, 1, 1) + dt.timedelta(hours=i) for i in ids], pa.timestamp("us")),
            pa.array([i % 4 != 0 for i in ids]),
            pa.array([str(i).encode() for i in ids]),
        ],
        schema=SCHEMA,
    )


def stage(
    root: Path,
    batches: list[pa.RecordBatch],
    *,
    schema: pa.Schema = SCHEMA,
    window: Window = DAY,
    dataset: str = "accounts",
) -> Partition:
    """Commit an extract with bulksync's real writer (tiny parts, so the profile streams several files)."""
    partition = Partition(str(root), "acme", "nightly", dataset, window)
    with PartitionWriter(partition, "extract", schema, run_id="manual__1", rows_per_file=40, row_group_rows=16) as w:
        for b in batches:
            w.write_batch(b)
        w.commit(window=window.to_json())
    return partition


def exp(kind: str, severity: str, interval: str = KEY, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {"severity": severity, "profiled_from": interval}}


@pytest.fixture(scope="module")
def gx() -> Any:
    import great_expectations

    return great_expectations


def validate(gx: Any, partition: Partition, suite: dict[str, Any]) -> dict[tuple[str, str], bool]:
    """Validate the staged data with GX as an Arrow-backed pandas frame; ``(type, column) -> success``."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    manifest = read_manifest(partition, "extract")
    table = pa.Table.from_batches(list(iter_batches(partition, manifest)), schema=manifest.read_schema())
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = context.data_sources.add_pandas("p").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
    df = table.to_pandas(types_mapper=pd.ArrowDtype)
    # as the quality gate runs it: numeric ranges on float64 copies of the columns
    from bulksync.quality.gate import _numeric_shadows

    expectations, shadows = _numeric_shadows(df, suite["expectations"])
    checked = gx.ExpectationSuite(**{**suite, "expectations": expectations})
    result = batch_def.get_batch(batch_parameters={"dataframe": df}).validate(checked)
    out = {}
    for r in result.results:
        kwargs = r.expectation_config.kwargs
        where = kwargs.get("column") or ",".join(kwargs.get("column_list") or [])
        where = shadows.get(where, where)
        out[(r.expectation_config.type, where)] = bool(r.success)
    assert len(out) == len(suite["expectations"])
    return out


def test_profile_of_a_partition(tmp_path: Path, gx: Any) -> None:
    partition = stage(tmp_path, [batch(1, 50), batch(51, 50), batch(101, 20)])
    manifest = read_manifest(partition, "extract")
    assert len(manifest.files) == 3

    suite = profile_partition(manifest, partition, primary_key=["id"])

    assert suite == {
        "name": "accounts",
        "meta": {
            "generated_by": "bulksync quality init",
            "profiled_from": {
                "tenant": "acme",
                "pipeline": "nightly",
                "dataset": "accounts",
                "stage": "extract",
                "interval": KEY,
                "rows": 120,
                "run_id": "manual__1",
            },
        },
        "expectations": [
            exp("expect_table_row_count_to_be_between", "warn", min_value=12, max_value=1200),
            exp("expect_column_to_exist", "error", column="id"),
            exp("expect_column_values_to_be_of_type", "error", column="id", type_="int"),
            exp("expect_column_values_to_not_be_null", "error", column="id"),
            exp("expect_column_values_to_be_unique", "error", column="id"),
            # an integer key grows: no upper bound
            exp("expect_column_values_to_be_between", "warn", column="id", min_value=1),
            exp("expect_column_to_exist", "error", column="region"),
            exp("expect_column_values_to_be_of_type", "error", column="region", type_="str"),
            exp("expect_column_values_to_not_be_null", "error", column="region"),
            exp("expect_column_values_to_be_in_set", "warn", column="region", value_set=["north", "south"]),
            exp("expect_column_to_exist", "error", column="status"),
            exp("expect_column_values_to_be_of_type", "error", column="status", type_="str"),
            exp("expect_column_values_to_be_in_set", "warn", column="status", value_set=["closed", "held", "open"]),
            exp("expect_column_to_exist", "error", column="name"),
            exp("expect_column_values_to_be_of_type", "error", column="name", type_="str"),
            exp("expect_column_values_to_not_be_null", "error", column="name"),
            exp("expect_column_to_exist", "error", column="score"),
            exp("expect_column_values_to_be_of_type", "error", column="score", type_="int"),
            exp("expect_column_values_to_be_between", "warn", column="score", min_value=-37, max_value=320),
            exp("expect_column_to_exist", "error", column="big"),
            exp("expect_column_values_to_be_of_type", "error", column="big", type_="int"),
            exp("expect_column_values_to_not_be_null", "error", column="big"),
            # 2**53 + 121 is no float: the bound widens to 2**53 + 122, the next one GX can hold exactly
            exp("expect_column_values_to_be_between", "warn", column="big", min_value=2**53 + 2, max_value=2**53 + 122),
            exp("expect_column_to_exist", "error", column="ratio"),
            exp("expect_column_values_to_be_of_type", "error", column="ratio", type_="float"),
            exp("expect_column_values_to_not_be_null", "error", column="ratio"),
            exp("expect_column_values_to_be_between", "warn", column="ratio", min_value=0.1, max_value=12.0),
            exp("expect_column_to_exist", "error", column="amount"),
            exp("expect_column_values_to_be_of_type", "error", column="amount", type_="Decimal"),
            exp("expect_column_values_to_not_be_null", "error", column="amount"),
            # exact: the gate compares a float64 copy of the column, which holds 0.11 and 12.01 as these floats
            exp("expect_column_values_to_be_between", "warn", column="amount", min_value=0.11, max_value=12.01),
            exp("expect_column_to_exist", "error", column="opened"),
            exp("expect_column_values_to_be_of_type", "error", column="opened", type_="date"),
            exp("expect_column_values_to_not_be_null", "error", column="opened"),
            # dates and timestamps move forward: no upper bound
            exp("expect_column_values_to_be_between", "warn", column="opened", min_value="2025-01-02"),
            exp("expect_column_to_exist", "error", column="updated_at"),
            exp("expect_column_values_to_be_of_type", "error", column="updated_at", type_="datetime"),
            exp("expect_column_values_to_not_be_null", "error", column="updated_at"),
            exp(
                "expect_column_values_to_be_between",
                "warn",
                column="updated_at",
                min_value="2026-01-01T00:01:00.000007+00:00",
            ),
            exp("expect_column_to_exist", "error", column="local_at"),
            exp("expect_column_values_to_be_of_type", "error", column="local_at", type_="datetime"),
            exp("expect_column_values_to_not_be_null", "error", column="local_at"),
            exp("expect_column_values_to_be_between", "warn", column="local_at", min_value="2026-01-01T01:00:00"),
            exp("expect_column_to_exist", "error", column="active"),
            exp("expect_column_values_to_be_of_type", "error", column="active", type_="bool"),
            exp("expect_column_values_to_not_be_null", "error", column="active"),
            exp("expect_column_to_exist", "error", column="blob"),
            exp("expect_column_values_to_be_of_type", "error", column="blob", type_="bytes"),
            exp("expect_column_values_to_not_be_null", "error", column="blob"),
        ],
    }
    assert suite_problems(suite, "accounts.json", name="accounts") == []
    assert json.loads(json.dumps(suite)) == suite
    results = validate(gx, partition, suite)
    assert [k for k, ok in results.items() if not ok] == []


def test_range_bounds_hold_where_float_rounding_would_cut_off_the_extremes(tmp_path: Path, gx: Any) -> None:
    schema = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(38, 10)), ("big", pa.int64())])
    rows = pa.record_batch(
        [
            pa.array([1, 2]),
            pa.array([Decimal("0.1000000000"), Decimal("0.3000000001")], pa.decimal128(38, 10)),
            pa.array([2**62 + 1, 2**62 + 3]),
        ],
        schema=schema,
    )
    partition = stage(tmp_path, [rows], schema=schema)
    suite = profile_partition(read_manifest(partition, "extract"), partition, primary_key=["id"])
    ranges = {
        e["kwargs"]["column"]: (e["kwargs"]["min_value"], e["kwargs"].get("max_value"))
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_between"
    }
    assert ranges == {
        "id": (1, None),  # the key grows: no upper bound
        "amount": (0.1, 0.3000000001),  # exact: float64 holds them digit for digit
        "big": (2**62, 2**62 + 1024),
    }
    assert all(validate(gx, partition, suite).values())


def test_compound_key_nan_and_many_values(tmp_path: Path, gx: Any) -> None:
    schema = pa.schema([("tenant", pa.string()), ("id", pa.int32()), ("code", pa.string()), ("x", pa.float64())])
    rows = pa.record_batch(
        [
            pa.array(["a", "a", "b", "b"]),
            pa.array([1, 2, 1, 2], pa.int32()),
            pa.array(["c1", "c2", "c3", "c4"]),  # every value different: not a code list
            pa.array([1.0, float("nan"), 2.0, 3.0]),
        ],
        schema=schema,
    )
    partition = stage(tmp_path, [rows], schema=schema)
    suite = profile_partition(read_manifest(partition, "extract"), partition, primary_key=["tenant", "id"], name="t")
    assert suite["name"] == "t"
    assert suite["expectations"] == [
        exp("expect_table_row_count_to_be_between", "warn", min_value=0, max_value=40),
        exp("expect_compound_columns_to_be_unique", "error", column_list=["tenant", "id"]),
        exp("expect_column_to_exist", "error", column="tenant"),
        exp("expect_column_values_to_be_of_type", "error", column="tenant", type_="str"),
        exp("expect_column_values_to_not_be_null", "error", column="tenant"),
        exp("expect_column_values_to_be_in_set", "warn", column="tenant", value_set=["a", "b"]),
        exp("expect_column_to_exist", "error", column="id"),
        exp("expect_column_values_to_be_of_type", "error", column="id", type_="int"),
        exp("expect_column_values_to_not_be_null", "error", column="id"),
        exp("expect_column_values_to_be_between", "warn", column="id", min_value=1, max_value=2),
        exp("expect_column_to_exist", "error", column="code"),
        exp("expect_column_values_to_be_of_type", "error", column="code", type_="str"),
        exp("expect_column_values_to_not_be_null", "error", column="code"),
        # NaN: no not-null claim (pandas may read it as missing) and no range (NaN is outside any)
        exp("expect_column_to_exist", "error", column="x"),
        exp("expect_column_values_to_be_of_type", "error", column="x", type_="float"),
    ]
    assert all(validate(gx, partition, suite).values())


def test_nanosecond_timestamps_get_bounds_widened_to_whole_microseconds(tmp_path: Path, gx: Any) -> None:
    schema = pa.schema([("at", pa.timestamp("ns", tz="UTC"))])
    values = pa.array([1_767_225_600_000_000_001, 1_767_225_600_123_456_789], pa.timestamp("ns", tz="UTC"))
    partition = stage(tmp_path, [pa.record_batch([values], schema=schema)], schema=schema)
    suite = profile_partition(read_manifest(partition, "extract"), partition)
    assert suite["expectations"][2:] == [
        exp("expect_column_values_to_be_of_type", "error", column="at", type_="Timestamp"),
        exp("expect_column_values_to_not_be_null", "error", column="at"),
        exp(
            "expect_column_values_to_be_between",
            "warn",
            column="at",
            min_value="2026-01-01T00:00:00+00:00",  # a timestamp grows: a lower bound only
        ),
    ]
    assert all(validate(gx, partition, suite).values())


def test_value_sets_stop_at_max_distinct(tmp_path: Path) -> None:
    schema = pa.schema([("grade", pa.string())])
    grades = [f"g{i % 6}" for i in range(60)]
    partition = stage(tmp_path, [pa.record_batch([pa.array(grades)], schema=schema)], schema=schema)
    manifest = read_manifest(partition, "extract")
    kinds = [e["type"] for e in profile_partition(manifest, partition, max_distinct=5)["expectations"]]
    assert "expect_column_values_to_be_in_set" not in kinds
    suite = profile_partition(manifest, partition, max_distinct=6)
    assert suite["expectations"][-1] == exp(
        "expect_column_values_to_be_in_set", "warn", column="grade", value_set=[f"g{i}" for i in range(6)]
    )


def test_empty_partition_gives_schema_checks_only(tmp_path: Path, gx: Any) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    partition = stage(tmp_path, [], schema=schema)
    suite = profile_partition(read_manifest(partition, "extract"), partition, primary_key=["id"])
    assert suite["expectations"] == [
        exp("expect_table_row_count_to_be_between", "warn", min_value=0),
        exp("expect_column_to_exist", "error", column="id"),
        exp("expect_column_values_to_be_of_type", "error", column="id", type_="int"),
        exp("expect_column_values_to_be_unique", "error", column="id"),
        exp("expect_column_to_exist", "error", column="name"),
        exp("expect_column_values_to_be_of_type", "error", column="name", type_="str"),
    ]
    assert all(validate(gx, partition, suite).values())


def test_unknown_primary_key_column_is_named(tmp_path: Path) -> None:
    partition = stage(tmp_path, [batch(1, 3)])
    with pytest.raises(DataError) as info:
        profile_partition(read_manifest(partition, "extract"), partition, primary_key=["id", "acct_no"])
    assert str(info.value) == (
        f"primary key column(s) acct_no are not in the staged data of accounts {KEY} (its columns: id, region, "
        "status, name, score, big, ratio, amount, opened, updated_at, local_at, active, blob); "
        "fix primary_key in the spec"
    )


@pytest.mark.parametrize(
    "arrow_type",
    [
        pa.int8(),
        pa.int32(),
        pa.uint64(),
        pa.float32(),
        pa.float64(),
        pa.bool_(),
        pa.string(),
        pa.large_string(),
        pa.binary(),
        pa.date32(),
        pa.timestamp("us"),
        pa.timestamp("us", tz="UTC"),
        pa.timestamp("ns", tz="UTC"),
        pa.time64("us"),
        pa.decimal128(10, 2),
    ],
)
def test_gx_type_name_is_what_gx_observes_on_arrow_backed_columns(arrow_type: pa.DataType) -> None:
    assert gx_type_name(arrow_type) == pd.ArrowDtype(arrow_type).type.__name__


def test_gx_type_name_skips_nested_types() -> None:
    assert gx_type_name(pa.list_(pa.int64())) is None
    assert gx_type_name(pa.dictionary(pa.int32(), pa.string())) is None


# --- bulksync quality init ----------------------------------------------------------------------


SPEC = {
    "tenant": "acme",
    "pipeline": "nightly",
    "start_date": "2026-01-01",
    "datasets": [
        {
            "name": "accounts",
            "source": {"kind": "sql", "conn_id": "crm", "options": {"table": "accounts", "primary_key": ["id"]}},
            "target": {"kind": "postgres", "conn_id": "dwh", "table": "accounts"},
        },
        {
            "name": "orders",
            "source": {"kind": "sql", "conn_id": "crm", "options": {"table": "orders"}},
            "quality": {"suite": "orders_v1"},
            "target": {"kind": "postgres", "conn_id": "dwh", "table": "orders"},
        },
    ],
}


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    paths = {k: tmp_path / k for k in ("staging", "specs", "expectations")}
    paths["specs"].mkdir()
    (paths["specs"] / "acme__nightly.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    monkeypatch.setenv("BULKSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("BULKSYNC_STAGING_ROOT", str(paths["staging"]))
    monkeypatch.setenv("BULKSYNC_SPECS_DIR", str(paths["specs"]))
    monkeypatch.setenv("BULKSYNC_EXPECTATIONS_DIR", str(paths["expectations"]))
    monkeypatch.setenv("COLUMNS", "200")
    return paths


def invoke(*args: str) -> Any:
    return CliRunner().invoke(quality_app, ["init", *args])


def test_init_profiles_the_latest_partition_and_writes_the_suite(cli_env: dict[str, Path]) -> None:
    older = Window(dt.datetime(2025, 12, 31, tzinfo=UTC), dt.datetime(2026, 1, 1, tzinfo=UTC))
    old = stage(cli_env["staging"], [batch(1, 500)], window=older)
    new = stage(cli_env["staging"], [batch(1, 3)])
    os.utime(old.manifest_path("extract"), (1, 1))  # the newer window committed last
    (cli_env["staging"] / "acme/nightly/accounts/.leftover.tmp-1").mkdir()

    result = invoke("accounts", "--pipeline", "nightly", "--partitions", "1")

    assert result.exit_code == 0, result.output
    path = cli_env["expectations"] / "accounts.json"
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == profile_partition(read_manifest(new, "extract"), new, primary_key=["id"])
    assert check_suite("accounts") == []
    lines = [line.rstrip() for line in result.output.splitlines()]
    n = len(written["expectations"])
    assert lines[-5:] == [
        f"wrote {n} expectations to {path}",
        f"profiled from accounts {KEY} (1 partition(s), 3 rows, key id)",
        "review it: ranges and value sets were learnt from one interval (they only warn); dates, timestamps, "
        "the key and growing columns have no upper bound",
        f"to use it, add to dataset 'accounts' in {cli_env['specs'] / 'acme__nightly.yaml'}:",
        "  quality: {suite: accounts}",
    ]
    table = "\n".join(lines[:-5])
    assert "suite 'accounts'" in table
    assert "│ 0  │ expect_table_row_count_to_be_between" in table
    row = next(line for line in lines if "expect_column_values_to_be_between" in line and "│ ratio" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "27",
        "expect_column_values_to_be_between",
        "ratio",
        "min_value=0.1, max_value=0.3",
        "warn",
    ]
    assert sum("│ expect_" in line for line in lines) == n


def test_init_refuses_to_overwrite_without_force(cli_env: dict[str, Path]) -> None:
    stage(cli_env["staging"], [batch(1, 3)], dataset="orders")
    path = cli_env["expectations"] / "orders_v1.json"
    path.parent.mkdir()
    path.write_text("{}", encoding="utf-8")

    refused = invoke("orders", "-p", "acme__nightly", "--suite", "orders_v1")
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        f"{path} already exists; pass --force to overwrite it, or --suite NAME to write another suite"
    )
    assert path.read_text(encoding="utf-8") == "{}"

    forced = invoke("orders", "-p", "acme__nightly", "--suite", "orders_v1", "--force")
    assert forced.exit_code == 0, forced.output
    assert json.loads(path.read_text(encoding="utf-8"))["name"] == "orders_v1"
    assert forced.output.rstrip().splitlines()[-2:] == [
        "review it: ranges and value sets were learnt from one interval (they only warn); dates, timestamps, "
        "the key and growing columns have no upper bound",
        "dataset 'orders' already uses suite 'orders_v1'",
    ]
    assert f"profiled from orders {KEY} (1 partition(s), 3 rows, no primary key in the spec)" in forced.output


def test_init_with_an_interval_and_another_suite_name(cli_env: dict[str, Path]) -> None:
    stage(cli_env["staging"], [batch(1, 3)], dataset="orders", window=Window())
    stage(cli_env["staging"], [batch(1, 4)], dataset="orders")
    result = invoke("orders", "-p", "nightly", "--interval", "full", "--suite", "orders_v2")
    assert result.exit_code == 0, result.output
    written = json.loads((cli_env["expectations"] / "orders_v2.json").read_text(encoding="utf-8"))
    assert written["meta"]["profiled_from"]["interval"] == "full"
    assert written["meta"]["profiled_from"]["rows"] == 3
    assert result.output.rstrip().splitlines()[-1] == (
        "dataset 'orders' uses suite 'orders_v1'; set quality: {suite: orders_v2} to use this one"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["accounts", "-p", "daily"],
            2,
            "no pipeline 'daily' in {specs} (pipelines: acme__nightly)",
        ),
        (
            ["invoices", "-p", "nightly"],
            2,
            "pipeline acme__nightly has no dataset 'invoices'; it has: accounts, orders",
        ),
        (
            ["accounts", "-p", "nightly"],
            1,
            "no committed extract of 'accounts' under {staging}/acme/nightly/accounts; run the pipeline first "
            "(`bulksync run nightly -d accounts` or the DAG acme__nightly in Airflow)",
        ),
        (
            ["accounts", "-p", "nightly", "--interval", "20260105T000000Z_20260106T000000Z"],
            1,
            "StagingError: no committed extract output at {staging}/acme/nightly/accounts/"
            "20260105T000000Z_20260106T000000Z (no _manifest.json); the extract task did not finish for this "
            "interval: rerun it",
        ),
        (
            ["accounts", "-p", "nightly", "--interval", "yesterday"],
            2,
            "'yesterday' is not a partition folder name (e.g. full, 20260101T000000Z_20260102T000000Z)",
        ),
        (
            ["accounts", "-p", "nightly", "--suite", "Accounts-2"],
            2,
            "--suite 'Accounts-2': use lowercase letters, digits and '_', starting with a letter",
        ),
    ],
)
def test_init_errors_say_what_to_do(cli_env: dict[str, Path], args: list[str], code: int, message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == code
    assert " ".join(result.output.split()) == message.format(specs=cli_env["specs"], staging=cli_env["staging"])
    assert not cli_env["expectations"].exists()


ORDERS = pa.schema(
    [
        pa.field("order_id", pa.int64(), nullable=False),
        pa.field("seq", pa.int64()),
        pa.field("price", pa.decimal128(12, 2)),
        pa.field("status", pa.string()),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)


def night(day: int, first_id: int, rows: int) -> tuple[Window, pa.RecordBatch]:
    """One incremental night: new order ids, a sequence that only grows, updated_at inside the window."""
    start = dt.datetime(2026, 1, day, tzinfo=UTC)
    ids = list(range(first_id, first_id + rows))
    return Window(start, start + dt.timedelta(days=1)), pa.record_batch(
        [
            pa.array(ids, pa.int64()),
            pa.array([i * 7 for i in ids], pa.int64()),
            pa.array([Decimal("16.48") + Decimal(i % 50) for i in ids], pa.decimal128(12, 2)),
            pa.array([("open", "paid", "shipped")[i % 3] for i in ids]),
            pa.array([start + dt.timedelta(minutes=(i * 13) % 1440) for i in ids]),
        ],
        schema=ORDERS,
    )


def test_init_over_the_last_nights_holds_on_the_next_night(cli_env: dict[str, Path], gx: Any) -> None:
    """Issue 14 item 11: learnt from several nights, the suite does not fail the night after."""
    spec = yaml.safe_load((cli_env["specs"] / "acme__nightly.yaml").read_text())
    spec["datasets"].append(
        {
            "name": "orders_inc",
            "source": {
                "kind": "sql",
                "conn_id": "crm",
                "options": {
                    "table": "orders",
                    "incremental": True,
                    "cursor_field": "updated_at",
                    "primary_key": ["order_id"],
                },
            },
            "target": {"kind": "sqlite", "conn_id": "wh", "table": "orders_inc"},
        }
    )
    (cli_env["specs"] / "acme__nightly.yaml").write_text(yaml.safe_dump(spec))
    first_id = 1
    for day, rows in ((1, 40), (2, 55), (3, 30), (4, 48)):
        window, b = night(day, first_id, rows)
        stage(cli_env["staging"], [b], schema=ORDERS, window=window, dataset="orders_inc")
        first_id += rows

    result = invoke("orders_inc", "-p", "nightly", "--partitions", "3")
    assert result.exit_code == 0, result.output
    text = (cli_env["expectations"] / "orders_inc.json").read_text()
    suite = json.loads(text)
    by = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    # the last three nights, not one: 55, 30, 48 rows; an interval may bring none
    assert by[("expect_table_row_count_to_be_between", None)] == {"min_value": 0, "max_value": 550}
    assert ("expect_column_values_to_be_between", "updated_at") not in by  # the cursor: no range at all
    assert by[("expect_column_values_to_be_between", "order_id")] == {"column": "order_id", "min_value": 41}
    assert by[("expect_column_values_to_be_between", "seq")] == {"column": "seq", "min_value": 287}  # grows
    assert by[("expect_column_values_to_be_between", "price")] == {
        "column": "price",
        "min_value": 16.48,
        "max_value": 65.48,
    }
    assert '"min_value": 16.48' in text and "16.47999" not in text
    assert by[("expect_column_values_to_be_in_set", "status")]["value_set"] == ["open", "paid", "shipped"]
    assert suite["meta"]["profiled_from"]["interval"] == [
        "20260102T000000Z_20260103T000000Z",
        "20260103T000000Z_20260104T000000Z",
        "20260104T000000Z_20260105T000000Z",
    ]
    assert "(3 partition(s), 133 rows, key order_id)" in " ".join(result.output.split())

    # the next night: later ids and timestamps, fewer rows; every expectation holds
    window, b = night(5, first_id, 12)
    nxt = stage(cli_env["staging"], [b], schema=ORDERS, window=window, dataset="orders_inc")
    assert [k for k, ok in validate(gx, nxt, suite).items() if not ok] == []
