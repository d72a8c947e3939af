"""The csv_files source: exact values and Arrow types of golden files, and bad input named by file/line/column/value."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from bulksync.errors import ConfigurationError, DataError
from bulksync.sources.csv_files import CsvFilesSource
from bulksync.spec.loader import parse_spec
from bulksync.staging.partition import Window

UTC = dt.UTC

COLUMNS = [
    {"name": "id", "type": "int64", "nullable": False},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": "decimal(12,2)"},
    {"name": "ts", "type": "timestamptz"},
    {"name": "active", "type": "bool"},
    {"name": "born", "type": "date"},
    {"name": "note", "type": "string"},
]
SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False), ("name", pa.string()), ("amount", pa.decimal128(12, 2)),
    ("ts", pa.timestamp("us", tz="UTC")), ("active", pa.bool_()), ("born", pa.date32()), ("note", pa.string()),
])
# Records as written in the file (fields already quoted); the delimiter is filled in per variant.
RECORDS = [
    ["id", "name", "amount", "ts", "active", "born", "note"],
    ["1", '"Smith, John"', "12.50", "2024-03-01T10:00:00+02:00", "true", "1980-02-29", '"say ""hi"""'],
    ["2", '""', "0.01", "2024-03-01T08:00:00Z", "false", "", "plain"],
    ["3", "", "-9999999999.99", "", "", "2000-01-01", '"a;b"'],
    ["4", '"Müller €"', '"10"', "2024-12-31T23:59:59.123456+00:00", "1", "1999-12-31", '"multi\nline"'],
]
EXPECTED = [
    {"id": 1, "name": "Smith, John", "amount": Decimal("12.50"), "ts": dt.datetime(2024, 3, 1, 8, tzinfo=UTC),
     "active": True, "born": dt.date(1980, 2, 29), "note": 'say "hi"'},
    {"id": 2, "name": "", "amount": Decimal("0.01"), "ts": dt.datetime(2024, 3, 1, 8, tzinfo=UTC),
     "active": False, "born": None, "note": "plain"},
    {"id": 3, "name": None, "amount": Decimal("-9999999999.99"), "ts": None, "active": None,
     "born": dt.date(2000, 1, 1), "note": "a;b"},
    {"id": 4, "name": "Müller €", "amount": Decimal("10.00"),
     "ts": dt.datetime(2024, 12, 31, 23, 59, 59, 123456, tzinfo=UTC), "active": True, "born": dt.date(1999, 12, 31),
     "note": "multi\nline"},
]


def source(folder: Path, columns: list[dict[str, Any]] | None = None, **options: Any) -> CsvFilesSource:
    """Build the source from a parsed spec, as the extract task does."""
    data = {
        "tenant": "acme", "pipeline": "drops", "start_date": "2024-01-01",
        "datasets": [{
            "name": "accounts",
            "source": {"kind": "csv_files",
                       "options": {"path": str(folder), "columns": columns or COLUMNS, **options}},
            "target": {"kind": "postgres", "conn_id": "dwh", "table": "accounts"},
        }],
    }
    return CsvFilesSource(parse_spec(data, "drops.yaml").datasets[0].source, Window())


def read_all(src: CsvFilesSource) -> pa.Table:
    return pa.Table.from_batches(list(src.read()), schema=src.schema())


def render(delimiter: str = ",", newline: str = "\n", final_newline: bool = True) -> str:
    text = newline.join(delimiter.join(r) for r in RECORDS)
    return text + newline if final_newline else text


VARIANTS: dict[str, tuple[bytes, dict[str, Any]]] = {
    "lf": (render().encode(), {}),
    "crlf": (render(newline="\r\n").encode(), {}),
    "no_final_newline": (render(final_newline=False).encode(), {}),
    "crlf_no_final_newline": (render(newline="\r\n", final_newline=False).encode(), {}),
    "utf8_bom": (b"\xef\xbb\xbf" + render().encode(), {}),
    "cp1252": (render(newline="\r\n").encode("cp1252"), {"encoding": "cp1252"}),
    "semicolon": (render(delimiter=";").encode(), {"delimiter": ";"}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_golden_file_gives_exact_values_and_types(tmp_path: Path, variant: str) -> None:
    content, options = VARIANTS[variant]
    (tmp_path / "accounts_20240301.csv").write_bytes(content)
    src = source(tmp_path, **options)
    table = read_all(src)
    assert table.schema == SCHEMA
    assert table.to_pylist() == EXPECTED
    assert src.stats["files"] == [{"path": str(tmp_path / "accounts_20240301.csv"), "rows": 4}]


def test_timestamps_without_offset_are_taken_as_utc(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,ts\n1,2024-03-01T10:00:00\n2,\n3,2024-03-01 23:59:59.5\n")
    table = read_all(source(tmp_path, [{"name": "id", "type": "int"}, {"name": "ts", "type": "timestamptz"}]))
    assert table.column("ts").type == pa.timestamp("us", tz="UTC")
    assert table.column("ts").to_pylist() == [dt.datetime(2024, 3, 1, 10, tzinfo=UTC), None,
                                              dt.datetime(2024, 3, 1, 23, 59, 59, 500000, tzinfo=UTC)]


def test_timestamps_with_and_without_offset_in_one_column(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,ts\n1,2024-03-01T10:00:00\n2,2024-03-01T10:00:00+02:00\n")
    table = read_all(source(tmp_path, [{"name": "id", "type": "int"}, {"name": "ts", "type": "timestamptz"}]))
    assert table.column("ts").to_pylist() == [dt.datetime(2024, 3, 1, 10, tzinfo=UTC),
                                              dt.datetime(2024, 3, 1, 8, tzinfo=UTC)]


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-03-01", dt.datetime(2024, 3, 1, tzinfo=UTC)),
    ("2024-03-01T10", dt.datetime(2024, 3, 1, 10, tzinfo=UTC)),
    ("2024-03-01T10:00Z", dt.datetime(2024, 3, 1, 10, tzinfo=UTC)),
    ("2024-03-01 10:00:00-05", dt.datetime(2024, 3, 1, 15, tzinfo=UTC)),
    ("2024-03-01T10:00:00.5+0130", dt.datetime(2024, 3, 1, 8, 30, 0, 500000, tzinfo=UTC)),
])
def test_timestamptz_forms_in_a_mixed_column(tmp_path: Path, value: str, expected: dt.datetime) -> None:
    (tmp_path / "a.csv").write_text(f"id,ts\n1,2024-03-01T10:00:00\n2,{value}\n3,2024-03-01T10:00:00+02:00\n")
    table = read_all(source(tmp_path, [{"name": "id", "type": "int"}, {"name": "ts", "type": "timestamptz"}]))
    assert table.column("ts").to_pylist()[1] == expected


@pytest.mark.parametrize("bad", [
    "2024-03-01T25:00:00+02:00", "2024-02-30T10:00:00", "2024-03-01Z", "2024-03-01T10:00:00+02:00:00",
    "2024-03-01T10:00:00.1234567", "2024-03-01T10:00:00 +02:00", "20240301T100000", "2024-03-01T10:00:00+02:60",
])
def test_bad_timestamptz_in_a_mixed_column_names_line_and_column(tmp_path: Path, bad: str) -> None:
    (tmp_path / "a.csv").write_text(f'id,ts\n1,2024-03-01T10:00:00\n2,"{bad}"\n3,2024-03-01T10:00:00+02:00\n')
    with pytest.raises(DataError, match=re.escape(f"line 3, column 'ts': value '{bad}' is not a valid timestamptz")):
        read_all(source(tmp_path, [{"name": "id", "type": "int"}, {"name": "ts", "type": "timestamptz"}]))


def test_declared_formats_for_dates_and_timestamps(tmp_path: Path) -> None:
    cols = [{"name": "d", "type": "date", "format": "%d.%m.%Y"},
            {"name": "tz", "type": "timestamptz", "format": "%d.%m.%Y %H:%M"},
            {"name": "naive", "type": "timestamp", "format": "%Y%m%d%H%M%S"}]
    (tmp_path / "a.csv").write_text("d,tz,naive\n29.02.2024,01.03.2024 10:30,20240301103000\n,,\n")
    table = read_all(source(tmp_path, cols))
    assert table.schema == pa.schema([("d", pa.date32()), ("tz", pa.timestamp("us", tz="UTC")),
                                      ("naive", pa.timestamp("us"))])
    assert table.to_pylist() == [
        {"d": dt.date(2024, 2, 29), "tz": dt.datetime(2024, 3, 1, 10, 30, tzinfo=UTC),
         "naive": dt.datetime(2024, 3, 1, 10, 30)},
        {"d": None, "tz": None, "naive": None},
    ]


def test_impossible_date_with_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("d\n31.02.2024\n")
    with pytest.raises(DataError, match=r"line 2, column 'd': value '31\.02\.2024'"):
        read_all(source(tmp_path, [{"name": "d", "type": "date", "format": "%d.%m.%Y"}]))


@pytest.mark.parametrize(("fmt", "bad"), [
    ("%d.%m.%Y %H:%M", "30.02.2024 10:30"),
    ("%Y%m%d", "20230229"),
    ("%d %b %Y", "31 Apr 2024"),
    ("%d.%m.%Y %H:%M %z", "31.02.2024 10:30 +0200"),
    ("%d.%m.%Y", "01.03.24"),
])
def test_rolled_over_date_after_good_ones_names_the_line(tmp_path: Path, fmt: str, bad: str) -> None:
    good = dt.datetime(2024, 2, 29, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))).strftime(fmt)
    (tmp_path / "a.csv").write_text(f'note,d\n"x\ny","{good}"\n"z","{bad}"\n')
    cols = [{"name": "note", "type": "string"}, {"name": "d", "type": "timestamptz", "format": fmt}]
    with pytest.raises(DataError, match=re.escape(f"line 4, column 'd': value '{bad}' is not a valid timestamptz")):
        read_all(source(tmp_path, cols))


def test_formats_read_unpadded_and_differently_cased_values(tmp_path: Path) -> None:
    cols = [{"name": "d", "type": "date", "format": "%d %b %Y"},
            {"name": "tz", "type": "timestamptz", "format": "%d.%m.%Y %H:%M %z"}]
    (tmp_path / "a.csv").write_text("d,tz\n1 mar 2024,1.3.2024 9:05 +0100\n 29 FEB 2024 ,29.02.2024 23:30 -0100\n")
    assert read_all(source(tmp_path, cols)).to_pylist() == [
        {"d": dt.date(2024, 3, 1), "tz": dt.datetime(2024, 3, 1, 8, 5, tzinfo=UTC)},
        {"d": dt.date(2024, 2, 29), "tz": dt.datetime(2024, 3, 1, 0, 30, tzinfo=UTC)},
    ]


def test_custom_null_values_and_no_header(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1,NULL,\n2,x,NULL\n")
    cols = [{"name": "id", "type": "int64"}, {"name": "a", "type": "string"}, {"name": "b", "type": "string"}]
    table = read_all(source(tmp_path, cols, header=False, null_values=["NULL"]))
    assert table.to_pylist() == [{"id": 1, "a": None, "b": ""}, {"id": 2, "a": "x", "b": None}]


def test_files_are_read_in_name_order_and_counted(tmp_path: Path) -> None:
    for name, rows in [("acc_2.csv", "3\n"), ("acc_1.csv", "1\n2\n"), ("other.csv", "9\n"), ("acc_3.csv.tmp", "8\n")]:
        (tmp_path / name).write_text("id\n" + rows)
    src = source(tmp_path, [{"name": "id", "type": "int64"}], pattern="acc_*.csv")
    assert read_all(src).column("id").to_pylist() == [1, 2, 3]
    assert src.stats["files"] == [{"path": str(tmp_path / "acc_1.csv"), "rows": 2},
                                  {"path": str(tmp_path / "acc_2.csv"), "rows": 1}]


def test_no_matching_file_names_folder_and_pattern(tmp_path: Path) -> None:
    (tmp_path / "accounts.txt").write_text("id\n1\n")
    with pytest.raises(DataError) as info:
        read_all(source(tmp_path, [{"name": "id", "type": "int64"}], pattern="accounts_*.csv"))
    assert str(info.value) == (
        f"no file matches 'accounts_*.csv' in {tmp_path}; the client's drop may be late. "
        "Set allow_missing: true if an empty night is normal"
    )


def test_allow_missing_gives_zero_rows(tmp_path: Path) -> None:
    src = source(tmp_path, [{"name": "id", "type": "int64"}], allow_missing=True)
    assert read_all(src).num_rows == 0


def test_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"csv_files folder {tmp_path / 'nope'} does not exist"):
        read_all(source(tmp_path / "nope", [{"name": "id", "type": "int64"}]))


INT_COLS = [
    {"name": "id", "type": "int64"},
    {"name": "name", "type": "string"},
    {"name": "amt", "type": "decimal(5,2)"},
]


@pytest.mark.parametrize(("content", "line", "column", "value", "typ"), [
    ("id,name,amt\n1,a,1.00\n2,b,2.00\nx3,c,3.00\n", 4, "id", "x3", "int64"),
    ('id,name,amt\n1,"a\nb\nc",1.00\n2,b,2.00\nx3,c,3.00\n', 6, "id", "x3", "int64"),
    ("id,name,amt\r\n1,a,1\r\n99999999999999999999,c,1\r\n", 3, "id", "99999999999999999999", "int64"),
    ("id,name,amt\n1,a,1.00\n2,b,1.005\n", 3, "amt", "1.005", "decimal(5,2)"),
    ("id,name,amt\n1,a,1.00\n2,b,abc\n", 3, "amt", "abc", "decimal(5,2)"),
], ids=["int", "int_after_quoted_newlines", "int_overflow_crlf", "decimal_scale", "decimal_not_a_number"])
def test_bad_value_names_file_line_column_and_value(tmp_path: Path, content: str, line: int, column: str,
                                                    value: str, typ: str) -> None:
    path = tmp_path / "drop.csv"
    path.write_bytes(content.encode())
    with pytest.raises(DataError) as info:
        read_all(source(tmp_path, INT_COLS))
    assert str(info.value) == (
        f"{path}, line {line}, column {column!r}: value {value!r} is not a valid {typ}. "
        "Fix the file or the declared type, then rerun the extract"
    )


@pytest.mark.parametrize(("content", "line", "column", "value", "typ"), [
    ("id,ok,d\n1,yes,2024-01-01\n", 2, "ok", "yes", "bool"),
    ("id,ok,d\n1,true,2024-02-30\n", 2, "d", "2024-02-30", "date"),
    ("id,ok,d\n1,true,2024-01-01\n2,,2024-01-01\n", 3, "ok", "", "bool"),
], ids=["bool", "date", "empty_not_null_value"])
def test_bad_bool_and_date(tmp_path: Path, content: str, line: int, column: str, value: str, typ: str) -> None:
    (tmp_path / "a.csv").write_text(content)
    cols = [{"name": "id", "type": "int64"}, {"name": "ok", "type": "bool"}, {"name": "d", "type": "date"}]
    with pytest.raises(DataError, match=f", line {line}, column '{column}': value '{value}' is not a valid {typ}"):
        read_all(source(tmp_path, cols, null_values=["NULL"]))


def test_bool_is_read_in_any_letter_case(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,ok\n1,true\n2,tRuE\n3,FALSE\n4,0\n5,1\n6,\n")
    table = read_all(source(tmp_path, [{"name": "id", "type": "int64"}, {"name": "ok", "type": "bool"}]))
    assert table.column("ok").type == pa.bool_()
    assert table.column("ok").to_pylist() == [True, True, False, False, True, None]


def test_bad_bool_after_mixed_case_ones_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('id,note,ok\n1,"a\nb",tRuE\n2,c,yes\n')
    cols = [{"name": "id", "type": "int64"}, {"name": "note", "type": "string"}, {"name": "ok", "type": "bool"}]
    with pytest.raises(DataError, match=r"line 4, column 'ok': value 'yes' is not a valid bool"):
        read_all(source(tmp_path, cols))


def test_bad_value_in_a_later_block_has_the_exact_line(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    lines = ["id,name,amt"] + [f"{i},name number {i:06d},{i % 1000}.25" for i in range(1, 60_001)]
    lines[50_000] = "50000,oops,12x.25"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 1 << 20
    with pytest.raises(DataError, match=r"big.csv, line 50001, column 'amt': value '12x.25'"):
        read_all(source(tmp_path, INT_COLS, block_size_mb=1))


def test_decimal_with_too_many_integer_digits_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "drop.csv"
    path.write_text("id,name,amt\n1,a,1.00\n2,b,1234.5\n")
    with pytest.raises(DataError, match=r"line 3, column 'amt': value '1234\.5' is not a valid decimal"):
        read_all(source(tmp_path, INT_COLS))


def test_decimals_within_precision_in_any_notation(tmp_path: Path) -> None:
    (tmp_path / "drop.csv").write_text('id,name,amt\n1,a,999.99\n2,b,-999.990\n3,c," 1e2 "\n4,d,.5\n')
    assert read_all(source(tmp_path, INT_COLS)).column("amt").to_pylist() == [
        Decimal("999.99"), Decimal("-999.99"), Decimal("100.00"), Decimal("0.50"),
    ]


@pytest.mark.parametrize(("typ", "value"), [
    ("decimal(38,30)", "1e36"),  # overflows 128 bits at scale 30: pyarrow alone wraps it to 18924529.75...
    ("decimal(38,38)", "9.9e1"),
    ("decimal(38,2)", "1234567890123456789012345678901234567.5"),
    ("decimal(38,2)", "1e37"),
])
def test_decimal_overflowing_arrow_is_refused_not_wrapped(tmp_path: Path, typ: str, value: str) -> None:
    (tmp_path / "drop.csv").write_text(f"id,amt\n1,0\n2,{value}\n")
    with pytest.raises(DataError, match=re.escape(f"line 3, column 'amt': value '{value}' is not a valid {typ}")):
        read_all(source(tmp_path, [{"name": "id", "type": "int64"}, {"name": "amt", "type": typ}]))


@pytest.mark.parametrize(("content", "line", "fields"), [
    ("id,name,amt\n1,a,1.00\n2,b,2.00,9\n3,c,3.00\n", 3, 4),
    ("id,name,amt\n1,a,1.00\n2,b\n", 3, 2),
    ('id,name,amt\n1,"x\ny",1.00\n2,"b,c",1,\n', 4, 4),
], ids=["too_many", "too_few", "after_quoted_newline"])
def test_wrong_field_count_names_the_line(tmp_path: Path, content: str, line: int, fields: int) -> None:
    path = tmp_path / "drop.csv"
    path.write_text(content)
    with pytest.raises(DataError) as info:
        read_all(source(tmp_path, INT_COLS))
    assert str(info.value) == (
        f"{path}, line {line}: {fields} fields but 3 columns are declared (delimiter ','). "
        "Check the delimiter and quoting of that line"
    )


@pytest.mark.parametrize(("header", "detail"), [
    ("id,amt", "missing ['name']"),
    ("id,name,amt,extra", "unexpected ['extra']"),
    ("id,nam,amt", "missing ['name']; unexpected ['nam']"),
    ("id,amt,name", "in a different order: ['id', 'amt', 'name']"),
])
def test_header_must_match_declared_columns(tmp_path: Path, header: str, detail: str) -> None:
    path = tmp_path / "drop.csv"
    path.write_text(header + "\n")
    with pytest.raises(DataError) as info:
        read_all(source(tmp_path, INT_COLS))
    assert str(info.value) == (
        f"{path}: header does not match the declared columns ({detail}). "
        "Fix the spec's columns or ask the client for the agreed layout"
    )


def test_wrong_encoding_says_to_set_it(tmp_path: Path) -> None:
    path = tmp_path / "drop.csv"
    path.write_bytes("id,name,amt\n1,Müller,1\n".encode("cp1252"))
    with pytest.raises(DataError) as info:
        read_all(source(tmp_path, INT_COLS))
    assert str(info.value) == f"{path}: not utf-8 (invalid start byte at byte 15); set options.encoding"


NOT_NULL_COLS = [{"name": "id", "type": "int64"}, {"name": "name", "type": "string", "nullable": False}]


def test_empty_value_in_not_nullable_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "drop.csv"
    path.write_text("id,name\n1,a\n2,\n3,c\n")
    with pytest.raises(DataError) as info:
        read_all(source(tmp_path, NOT_NULL_COLS))
    assert str(info.value) == (
        f"{path}, line 3, column 'name': empty value but the column is declared nullable: false. "
        "Ask the client to fill it, or declare the column nullable"
    )


def test_empty_value_in_not_nullable_column_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "drop.csv").write_text("id,name\n1,a\n2,\n3,c\n")
    with pytest.raises(DataError, match="line 3, column 'name'"):
        read_all(source(tmp_path, NOT_NULL_COLS))


def test_empty_value_in_not_nullable_column_after_quoted_newlines_and_blank_lines(tmp_path: Path) -> None:
    lines = ["id,name"] + [f'{i},"n\n{i}"' for i in range(1, 40_001)] + ["", "40001,", "40002,x"]
    (tmp_path / "drop.csv").write_text("\n".join(lines) + "\n")
    # 40,000 two-line records, then a blank line that pyarrow skips: the empty value is on line 80,003
    with pytest.raises(DataError, match=r"drop\.csv, line 80003, column 'name': empty value"):
        read_all(source(tmp_path, NOT_NULL_COLS, block_size_mb=1))


def test_quoted_empty_string_satisfies_not_nullable(tmp_path: Path) -> None:
    (tmp_path / "drop.csv").write_text('id,name\n1,""\n')
    assert read_all(source(tmp_path, NOT_NULL_COLS)).to_pylist() == [{"id": 1, "name": ""}]
