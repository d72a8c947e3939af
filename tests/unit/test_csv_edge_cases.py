"""CSV edge cases read exactly or refused with line and byte (issue 15 items 6-11, issue 12 item 12).

Every malformed file names the file, the physical line and the absolute byte offset, and stages nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import bulksync.sources.file_drop.source  # noqa: F401 - Airflow sets up logging on import: not inside CliRunner
from bulksync.cli import app
from bulksync.errors import FileRejectedError
from tests.unit.test_csv_source import read_all, source

THREE = [{"name": "a", "type": "string"}, {"name": "b", "type": "string"}, {"name": "c", "type": "string"}]
runner = CliRunner()


def _read(tmp_path: Path, data: bytes, columns: list[dict[str, Any]] = THREE, **options: Any) -> list[dict[str, Any]]:
    (tmp_path / "f.csv").write_bytes(data)
    return read_all(source(tmp_path, columns, **options)).to_pylist()


def _refused(tmp_path: Path, data: bytes, columns: list[dict[str, Any]] = THREE, **options: Any) -> FileRejectedError:
    with pytest.raises(FileRejectedError) as info:
        _read(tmp_path, data, columns, **options)
    return info.value


def test_text_after_a_closing_quote_is_refused_with_line_and_byte(tmp_path: Path) -> None:
    err = _refused(tmp_path, b'a,b,c\n1,2,3\na,"b"c,d\n')
    assert err.reason == "bad_quoting"
    assert "f.csv, line 3 (byte 16): a quote inside a field (text after a closing quote" in str(err)
    assert "lenient_quotes" in str(err)


def test_blanks_after_a_quoted_field_are_refused(tmp_path: Path) -> None:
    err = _refused(tmp_path, b'a,b,c\n"B" ,x,y\n')
    assert "line 2 (byte 8): blanks after a quoted field" in str(err)
    err = _refused(tmp_path, b'a,b,c\nx, "B",y\n')
    assert "line 2 (byte 9): blanks before a quoted field" in str(err)


def test_a_quote_inside_an_unquoted_field_is_refused_unless_quoting_is_off(tmp_path: Path) -> None:
    data = b'a,b,c\nab"cd,x,y\n'
    assert "line 2 (byte 8): a quote inside a field" in str(_refused(tmp_path, data))
    assert _read(tmp_path, data, quote_char=None) == [{"a": 'ab"cd', "b": "x", "c": "y"}]
    # a quote next to the delimiter is read alike by every reader: let through
    assert _read(tmp_path, b"a,b,c\n5'6\",tall,x\n") == [{"a": "5'6\"", "b": "tall", "c": "x"}]


def test_lenient_quotes_read_as_documented(tmp_path: Path) -> None:
    rows = _read(tmp_path, b'a,b,c\na,"b"c,d\n"B" ,x,y\n', lenient_quotes=True)
    assert rows == [{"a": "a", "b": "bc", "c": "d"}, {"a": "B ", "b": "x", "c": "y"}]


def test_valid_rfc4180_quoting_still_reads(tmp_path: Path) -> None:
    data = b'a,b,c\n"x,""y""",,""\n"multi\nline","""",z\n'
    assert _read(tmp_path, data) == [{"a": 'x,"y"', "b": None, "c": ""}, {"a": "multi\nline", "b": '"', "c": "z"}]


def test_empty_lines_of_a_one_column_file_are_empty_values(tmp_path: Path) -> None:
    rows = _read(tmp_path, b"v\na\nb\n\n\nc\n", [{"name": "v", "type": "string"}])
    assert [r["v"] for r in rows] == ["a", "b", None, None, "c"]


def test_a_nul_byte_far_into_the_file_is_refused_with_its_absolute_offset(tmp_path: Path) -> None:
    body = b"".join(b"%d,x,y\n" % i for i in range(60_000))  # about 500 KB
    at = len(b"a,b,c\n") + len(body)
    err = _refused(tmp_path, b"a,b,c\n" + body + b"bad\x00,x,y\n", block_size_mb=1)
    assert err.reason == "binary_content"
    assert f"line 60002 (byte {at + 3:,}): a NUL byte" in str(err)


def test_invalid_utf8_past_the_first_block_is_refused_with_line_and_byte(tmp_path: Path) -> None:
    body = b"".join(b"%d,caf\xc3\xa9,y\n" % i for i in range(150_000))  # about 2.3 MB, valid UTF-8
    at = len(b"a,b,c\n") + len(body)
    err = _refused(tmp_path, b"a,b,c\n" + body + b"1,caf\xe9,y\n", block_size_mb=1)
    assert err.reason == "encoding"
    assert f"line 150002 (byte {at + 5:,}): not UTF-8" in str(err) and "cp1252" in str(err)


def test_a_utf8_character_cut_by_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    err = _refused(tmp_path, b"a,b,c\n1,2,caf\xc3")
    assert "ends inside a UTF-8 character" in str(err)


def test_a_field_larger_than_the_block_names_the_block_size(tmp_path: Path) -> None:
    big = b"x" * (3 << 20)
    err = _refused(tmp_path, b'a,b,c\n1,"' + big + b'",3\n', block_size_mb=1)
    assert err.reason == "field_too_large"
    assert "larger than the read block of 1 MiB" in str(err) and "block_size_mb" in str(err)
    assert "field limit" not in str(err)
    rows = _read(tmp_path, b'a,b,c\n1,"' + big + b'",3\n', block_size_mb=8)
    assert len(rows[0]["b"]) == 3 << 20


def test_a_header_only_file_without_final_newline_has_no_rows(tmp_path: Path) -> None:
    assert _read(tmp_path, b"a,b,c") == []
    assert _read(tmp_path, b"a,b,c\r\n") == []


def test_columns_declared_under_their_header_names(tmp_path: Path) -> None:
    cols = [{"name": "id", "type": "int64"}, {"name": "phone", "type": "string", "header": "Contact Phone Number"}]
    assert _read(tmp_path, b"id,Contact Phone Number\n1,+41 44\n", cols) == [{"id": 1, "phone": "+41 44"}]
    err = _refused(tmp_path, b"id,Phone\n1,+41 44\n", cols)
    assert err.reason == "header_mismatch" and "missing ['Contact Phone Number']" in str(err)


# -- bulksync convert --------------------------------------------------------------------------


def _convert(tmp_path: Path, data: bytes, *args: str) -> Any:
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    return runner.invoke(app, ["convert", str(src), "-o", str(tmp_path / "out.parquet"), *args])


def test_convert_a_zero_byte_file_says_it_is_empty(tmp_path: Path) -> None:
    result = _convert(tmp_path, b"")
    assert result.exit_code == 1 and "empty_file" in result.output and "0 bytes" in result.output
    assert "columns" not in result.output


def test_convert_refuses_a_multi_character_delimiter_without_a_traceback(tmp_path: Path) -> None:
    result = _convert(tmp_path, b"a||b\n1||2\n", "--delimiter", "||")
    assert result.exit_code == 2 and "must be one character" in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_convert_block_size_option(tmp_path: Path) -> None:
    big = b"y" * (3 << 20)
    small = _convert(tmp_path, b"a,b\n1," + big + b"\n", "--block-size-mb", "1")
    assert small.exit_code == 1 and "--block-size-mb" in " ".join(small.output.split())
    assert _convert(tmp_path, b"a,b\n1," + big + b"\n", "--block-size-mb", "8").exit_code == 0


def test_convert_keeps_header_names_as_they_appear(tmp_path: Path) -> None:
    result = _convert(tmp_path, b"Contact Phone Number,id\n+41,1\n")
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [{"Contact_Phone_Number": "+41", "id": "1"}]


@pytest.mark.parametrize("delimiter", ["^", "|", ";", "\t", "`"])
def test_convert_says_when_a_one_column_header_looks_delimited(tmp_path: Path, delimiter: str) -> None:
    d = delimiter.encode()
    data = b"id" + d + b"name" + d + b"city\n1" + d + b"x" + d + b"y\n2" + d + b"z" + d + b"w\n"
    result = _convert(tmp_path, data)
    shown = "tab" if delimiter == "\t" else delimiter
    assert result.exit_code == 2 and f"looks '{shown}'-delimited" in " ".join(result.output.split())
    detected = _convert(tmp_path, data, "--detect")
    assert detected.exit_code == 0, detected.output
    assert pq.read_table(tmp_path / "out.parquet").column_names == ["id", "name", "city"]


def test_convert_detects_a_single_column_file(tmp_path: Path) -> None:
    result = _convert(tmp_path, b"email\na@x.ch\nb@y.ch\n", "--detect")
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [{"email": "a@x.ch"}, {"email": "b@y.ch"}]
