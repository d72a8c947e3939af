"""Declarative transform steps, parsed from a spec and run with TransformRunner over Arrow batches.

Every test compares the whole output table (schema and rows) with what the user should get.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from bulksync.errors import DataError
from bulksync.spec.loader import parse_spec
from bulksync.transform.runner import TransformRunner
from bulksync.transform.steps import StepError


def parse_steps(*steps: dict[str, Any]) -> list[Any]:
    """Parse transform steps the way a spec file declares them."""
    data = {
        "tenant": "acme", "pipeline": "nightly", "start_date": "2024-01-01",
        "datasets": [{
            "name": "accounts",
            "source": {"kind": "sql", "conn_id": "crm", "options": {"table": "accounts"}},
            "transforms": list(steps),
            "target": {"kind": "postgres", "conn_id": "dwh", "table": "accounts"},
        }],
    }
    return list(parse_spec(data, "nightly.yaml").datasets[0].transforms)


def run(steps: list[dict[str, Any]], *batches: pa.RecordBatch) -> pa.Table:
    """Run parsed steps over the batches and return the concatenated output."""
    runner = TransformRunner(parse_steps(*steps))
    out = list(runner.run(lambda: iter(batches), batches[0].schema))
    return pa.concat_tables(out) if out else pa.table({})


@pytest.fixture
def people() -> pa.RecordBatch:
    return pa.record_batch({
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": pa.array([" Ann ", "bob", None]),
        "status": pa.array(["A", "I", "X"]),
        "amount": pa.array(["1.50", " 2.25", None]),
    })


def test_rename(people: pa.RecordBatch) -> None:
    out = run([{"rename": {"name": "full_name", "status": "state"}}], people)
    assert out.schema.names == ["id", "full_name", "state", "amount"]
    assert out.column("full_name").to_pylist() == [" Ann ", "bob", None]
    assert out.column("state").type == pa.string()


def test_rename_of_missing_column_names_it_and_the_existing_ones(people: pa.RecordBatch) -> None:
    with pytest.raises(StepError) as info:
        run([{"drop": ["amount"]}, {"rename": {"nmae": "full_name"}}], people)
    assert str(info.value) == (
        "transforms[1] rename: column(s) ['nmae'] do not exist; columns here: ['id', 'name', 'status']"
    )
    assert isinstance(info.value, DataError)
    assert info.value.terminal


def test_select_keeps_columns_in_the_given_order(people: pa.RecordBatch) -> None:
    out = run([{"select": ["status", "id"]}], people)
    assert out.to_pydict() == {"status": ["A", "I", "X"], "id": [1, 2, 3]}
    assert out.schema == pa.schema([("status", pa.string()), ("id", pa.int64())])


def test_drop(people: pa.RecordBatch) -> None:
    out = run([{"drop": ["name", "amount"]}], people)
    assert out.to_pydict() == {"id": [1, 2, 3], "status": ["A", "I", "X"]}


def test_cast_string_to_exact_decimal_trims_whitespace_and_keeps_nulls(people: pa.RecordBatch) -> None:
    out = run([{"cast": {"amount": "decimal(10,2)"}}], people)
    assert out.schema.field("amount").type == pa.decimal128(10, 2)
    assert out.column("amount").to_pylist() == [Decimal("1.50"), Decimal("2.25"), None]


@pytest.mark.parametrize(("values", "declared", "arrow", "expected"), [
    ([" 42 ", None, "-7"], "int64", pa.int64(), [42, None, -7]),
    (["true", "false", None], "boolean", pa.bool_(), [True, False, None]),
    (["2024-02-29", None], "date", pa.date32(), [dt.date(2024, 2, 29), None]),
    (["2024-02-29T10:00:00+02:00"], "timestamptz", pa.timestamp("us", tz="UTC"),
     [dt.datetime(2024, 2, 29, 8, 0, tzinfo=dt.UTC)]),
    (["2024-02-29 10:00:00"], "datetime", pa.timestamp("us"), [dt.datetime(2024, 2, 29, 10, 0)]),
    (["-12.345", "99.999"], "decimal(5,3)", pa.decimal128(5, 3), [Decimal("-12.345"), Decimal("99.999")]),
    (["1.5", "2"], "double", pa.float64(), [1.5, 2.0]),
], ids=["int64", "bool", "date", "timestamptz", "timestamp", "decimal", "float"])
def test_cast_string_column(values: list[Any], declared: str, arrow: pa.DataType, expected: list[Any]) -> None:
    out = run([{"cast": {"v": declared}}], pa.record_batch({"v": pa.array(values, pa.string())}))
    assert out.schema.field("v").type == arrow
    assert out.column("v").to_pylist() == expected


@pytest.mark.parametrize(("values", "declared", "bad"), [
    (["1.5", "x1", None], "decimal(10,2)", "x1"),
    (["1.00", "1.234"], "decimal(10,2)", "1.234"),
    (["12", "3000000000"], "int32", "3000000000"),
    (["2024-01-01", "2024-02-30"], "date", "2024-02-30"),
], ids=["not_a_number", "too_many_decimals", "int32_overflow", "no_such_day"])
def test_failing_cast_names_step_column_and_value(values: list[str], declared: str, bad: str) -> None:
    with pytest.raises(StepError) as info:
        run([{"cast": {"v": declared}}], pa.record_batch({"v": pa.array(values)}))
    assert str(info.value).startswith(f"transforms[0] cast 'v': value {bad!r} cannot become {declared} (")


def test_cast_float_to_int_refuses_to_truncate() -> None:
    with pytest.raises(StepError, match=r"transforms\[0\] cast 'v': value 1.7 cannot become int64"):
        run([{"cast": {"v": "int64"}}], pa.record_batch({"v": pa.array([2.0, 1.7])}))


def test_cast_small_int_to_decimal() -> None:
    out = run([{"cast": {"n": "decimal(10,2)"}}], pa.record_batch({"n": pa.array([3, 12, None], pa.int64())}))
    assert out.column("n").to_pylist() == [Decimal("3.00"), Decimal("12.00"), None]


@pytest.mark.parametrize(("values", "arrow", "declared", "expected"), [
    ([99999999, -5], pa.int64(), "decimal(10,2)", [Decimal("99999999.00"), Decimal("-5.00")]),
    ([7], pa.int32(), "decimal(3,2)", [Decimal("7.00")]),
    ([7], pa.int64(), "decimal(38,20)", [Decimal("7")]),
], ids=["int64", "int32", "scale_20"])
def test_cast_int_to_decimal_checks_the_values_not_the_type(values: list[int], arrow: pa.DataType, declared: str,
                                                             expected: list[Decimal]) -> None:
    out = run([{"cast": {"n": declared}}], pa.record_batch({"n": pa.array(values, arrow)}))
    assert out.column("n").to_pylist() == expected


def test_cast_int_overflowing_the_decimal_names_the_value() -> None:
    with pytest.raises(StepError, match=r"^transforms\[0\] cast 'n': value 100000000 cannot become decimal\(10,2\) \("):
        run([{"cast": {"n": "decimal(10,2)"}}], pa.record_batch({"n": pa.array([3, 100000000], pa.int64())}))


def test_cast_int_to_wide_decimal_and_string() -> None:
    batch = pa.record_batch({"n": pa.array([3, None], pa.int64()), "m": pa.array([7, 8], pa.int64())})
    out = run([{"cast": {"n": "decimal(38,2)", "m": "string"}}], batch)
    assert out.to_pydict() == {"n": [Decimal("3.00"), None], "m": ["7", "8"]}
    assert out.schema == pa.schema([("n", pa.decimal128(38, 2)), ("m", pa.string())])


def test_trim_named_columns_only(people: pa.RecordBatch) -> None:
    out = run([{"trim": ["name"]}], people)
    assert out.column("name").to_pylist() == ["Ann", "bob", None]
    assert out.column("amount").to_pylist() == ["1.50", " 2.25", None]


def test_trim_all_strips_every_string_column_and_leaves_others(people: pa.RecordBatch) -> None:
    out = run([{"trim": "all"}], people)
    assert out.to_pydict() == {
        "id": [1, 2, 3], "name": ["Ann", "bob", None], "status": ["A", "I", "X"], "amount": ["1.50", "2.25", None],
    }
    assert out.schema == people.schema


def test_fill_replaces_only_nulls() -> None:
    batch = pa.record_batch({"country": pa.array(["DE", None]), "score": pa.array([None, 5], pa.int64()),
                             "note": pa.array([None, None], pa.string())})
    out = run([{"fill": {"country": "US", "score": 0}}], batch)
    assert out.to_pydict() == {"country": ["DE", "US"], "score": [0, 5], "note": [None, None]}
    assert out.schema == batch.schema


def test_map_keeps_unmapped_values_by_default(people: pa.RecordBatch) -> None:
    out = run([{"map": {"column": "status", "values": {"A": "active", "I": "inactive"}}}], people)
    assert out.column("status").to_pylist() == ["active", "inactive", "X"]


def test_map_without_keep_unmapped_uses_default(people: pa.RecordBatch) -> None:
    out = run([{"map": {"column": "status", "values": {"A": "active"}, "keep_unmapped": False,
                        "default": "unknown"}}], people)
    assert out.column("status").to_pylist() == ["active", "unknown", "unknown"]


def test_map_without_keep_unmapped_or_default_gives_null(people: pa.RecordBatch) -> None:
    out = run([{"map": {"column": "status", "values": {"I": "inactive"}, "keep_unmapped": False}}], people)
    assert out.column("status").to_pylist() == [None, "inactive", None]
    assert out.schema.field("status").type == pa.string()


def test_map_to_integer_codes_stays_integer(people: pa.RecordBatch) -> None:
    out = run([{"map": {"column": "status", "values": {"A": 1, "I": 2}, "keep_unmapped": False}}], people)
    assert out.column("status").to_pylist() == [1, 2, None]
    assert out.schema.field("status").type == pa.int64()


def test_map_integer_column_keeps_unmapped_values() -> None:
    batch = pa.record_batch({"code": pa.array([1, 2, None], pa.int64())})
    out = run([{"map": {"column": "code", "values": {"1": "one"}}}], batch)
    assert out.column("code").to_pylist() == ["one", "2", None]


@pytest.mark.parametrize(("column", "values", "expected", "arrow"), [
    (pa.array([1, 2, None], pa.int64()), {"1": 10}, [10, 2, None], pa.int64()),
    (pa.array([1, 2, None], pa.int32()), {"1": 10}, [10, 2, None], pa.int64()),
    (pa.array([True, False, None]), {"true": "Y"}, ["Y", "false", None], pa.string()),
    (pa.array([1.5, 2.0, None]), {"1.5": 0.5}, [0.5, 2.0, None], pa.float64()),
], ids=["int_to_int", "int32_to_int", "bool_to_string", "float_to_float"])
def test_map_kept_values_take_the_type_of_the_mapped_ones(column: pa.Array, values: dict[str, Any],
                                                           expected: list[Any], arrow: pa.DataType) -> None:
    out = run([{"map": {"column": "c", "values": values}}], pa.record_batch({"c": column}))
    assert out.column("c").to_pylist() == expected
    assert out.schema.field("c").type == arrow


def test_map_default_widens_the_mapped_type(people: pa.RecordBatch) -> None:
    out = run([{"map": {"column": "status", "values": {"A": 1.5, "I": 2}, "keep_unmapped": False, "default": 0}}],
              people)
    assert out.column("status").to_pylist() == [1.5, 2.0, 0.0]
    assert out.schema.field("status").type == pa.float64()


def test_map_unmapped_value_that_cannot_take_the_mapped_type_is_a_step_error(people: pa.RecordBatch) -> None:
    with pytest.raises(StepError) as info:
        run([{"map": {"column": "status", "values": {"A": 1}}}], people)
    assert str(info.value).startswith(
        "transforms[0] map 'status': unmapped value 'I' cannot become int64 like the mapped values ("
    )
    assert str(info.value).endswith("). Map every value, or set keep_unmapped: false")


def test_map_to_values_of_different_types_is_a_step_error(people: pa.RecordBatch) -> None:
    with pytest.raises(StepError, match=r"^transforms\[0\] map 'status': the mapped values \[1, 'x'\] do not share"):
        run([{"map": {"column": "status", "values": {"A": 1, "I": "x"}}}], people)


def test_filter_drops_rows_where_expression_is_false_or_null(people: pa.RecordBatch) -> None:
    out = run([{"cast": {"amount": "decimal(10,2)"}}, {"filter": "amount > 2 or status == 'A'"}], people)
    assert out.to_pydict() == {"id": [1, 2], "name": [" Ann ", "bob"], "status": ["A", "I"],
                               "amount": [Decimal("1.50"), Decimal("2.25")]}


@pytest.mark.parametrize(("expr", "ids"), [
    ("status in ['A', 'X']", [1, 3]),
    ("status not in ['A', 'X']", [2]),
    ("not (id == 2)", [1, 3]),
    ("id >= 2 and id < 3", [2]),
    ("is_null(name)", [3]),
    ("not_null(name) and length(trim(name)) == 3", [1, 2]),
    ("upper(status) == 'I' or id - 3 == 0", [2, 3]),
    ("1 == 1", [1, 2, 3]),
    ("1 == 2", []),
])
def test_filter_expressions(people: pa.RecordBatch, expr: str, ids: list[int]) -> None:
    out = run([{"filter": expr}], people)
    got = out.column("id").to_pylist() if out.num_columns else []
    assert got == ids


def test_modulo_operator(people: pa.RecordBatch) -> None:
    out = run([{"derive": {"odd": "id % 2"}}, {"select": ["odd"]}], people)
    assert out.to_pydict() == {"odd": [1, 0, 1]}


def test_filter_on_missing_column_names_the_step_and_the_columns(people: pa.RecordBatch) -> None:
    with pytest.raises(StepError) as info:
        run([{"filter": "amout > 0"}], people)
    assert str(info.value) == (
        "transforms[0] filter: column 'amout' in 'amout > 0' does not exist; columns: id, name, status, amount"
    )


def test_derive_concat_upper_and_arithmetic(people: pa.RecordBatch) -> None:
    out = run([
        {"derive": {"label": "concat(upper(trim(name)), '#', id)", "double_plus": "id * 2 + 1",
                    "ratio": "id / 4", "code": "lower(substr(status, 1, 1))"}},
    ], people)
    assert out.schema.names == ["id", "name", "status", "amount", "label", "double_plus", "ratio", "code"]
    assert out.select(["label", "double_plus", "ratio", "code"]).to_pydict() == {
        "label": ["ANN#1", "BOB#2", "#3"],
        "double_plus": [3, 5, 7],
        "ratio": [0.25, 0.5, 0.75],
        "code": ["a", "i", "x"],
    }
    assert out.schema.field("label").type == pa.string()
    assert out.schema.field("double_plus").type == pa.int64()


def test_derive_constant_coalesce_and_round() -> None:
    batch = pa.record_batch({"a": pa.array([1.26, None, -2.5]), "b": pa.array([None, "x", "y"])})
    out = run([{"derive": {"src": "'crm'", "b2": "coalesce(b, 'none')", "r": "round(abs(a), 1)"}}], batch)
    assert out.select(["src", "b2", "r"]).to_pydict() == {
        "src": ["crm", "crm", "crm"], "b2": ["none", "x", "y"], "r": [1.3, None, 2.5],
    }


def test_derive_can_overwrite_a_column_and_later_steps_see_it(people: pa.RecordBatch) -> None:
    out = run([{"derive": {"id": "id * 10"}}, {"filter": "id > 10"}, {"select": ["id"]}], people)
    assert out.to_pydict() == {"id": [20, 30]}


def test_derive_type_error_is_a_step_error() -> None:
    batch = pa.record_batch({"s": pa.array(["a"]), "n": pa.array([1], pa.int64())})
    with pytest.raises(StepError, match=r"^transforms\[0\] derive 'x': "):
        run([{"derive": {"x": "s - n"}}], batch)
