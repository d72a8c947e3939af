"""A ``csv_files`` file in another delimiter is refused with the delimiter to set (issue 15 item 11).

Without ``options.delimiter`` a caret, pipe, semicolon, tab or backquote file reads as one field per
line: the header check (or, without one, the column count) refuses it, and the message names the
file, the likely delimiter (the ``convert`` command's detection) and the option to set. Files
that are not simply in another delimiter keep the plain message; a declared single column still
reads whole lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulksync.errors import FileRejectedError
from tests.unit.test_csv_source import read_all, source

COLUMNS = [{"name": "id", "type": "int64"}, {"name": "name", "type": "string"}, {"name": "city", "type": "string"}]
DELIMITERS = {"caret": "^", "pipe": "|", "semicolon": ";", "tab": "\t", "backquote": "`"}


def _refused(tmp_path: Path, text: str, columns: list[dict[str, Any]] = COLUMNS, **options: Any) -> FileRejectedError:
    (tmp_path / "f.csv").write_text(text, encoding="utf-8")
    with pytest.raises(FileRejectedError) as info:
        read_all(source(tmp_path, columns, **options))
    return info.value


def _hint(delimiter: str) -> str:
    shown, value = ("tab", '"\\t"') if delimiter == "\t" else (delimiter, f"'{delimiter}'")
    return (
        f"{delimiter!r} appears the same number of times in every line of the file's start: the file looks "
        f"'{shown}'-delimited, not ','-delimited. Set options.delimiter: {value} "
        "(in a file_drop: options.csv.delimiter, or options.csv.detect: true)"
    )


@pytest.mark.parametrize("delimiter", list(DELIMITERS.values()), ids=list(DELIMITERS))
def test_a_header_in_another_delimiter_names_it(tmp_path: Path, delimiter: str) -> None:
    text = "id,name,city\n1,Anna,Bern\n2,Bob,Chur\n".replace(",", delimiter)
    err = _refused(tmp_path, text)
    header = "id,name,city".replace(",", delimiter)
    assert err.reason == "header_mismatch"
    assert str(err) == (
        f"{tmp_path / 'f.csv'}: header does not match the declared columns (missing ['id', 'name', 'city']; "
        f"unexpected [{header!r}]). {_hint(delimiter)}"
    )
    (tmp_path / "f.csv").write_text(text, encoding="utf-8")
    assert read_all(source(tmp_path, COLUMNS, delimiter=delimiter)).num_rows == 2  # the hint's option reads it


@pytest.mark.parametrize("options", [{"header": False}, {"check_header": False}], ids=["no_header", "unchecked"])
@pytest.mark.parametrize("delimiter", ["|", ";"], ids=["pipe", "semicolon"])
def test_records_in_another_delimiter_name_it(tmp_path: Path, delimiter: str, options: dict[str, Any]) -> None:
    text = ("" if options.get("header") is False else "id,name,city\n") + "1,Anna,Bern\n2,Bob,Chur\n"
    err = _refused(tmp_path, text.replace(",", delimiter), **options)
    line = 1 if options.get("header") is False else 2
    assert err.reason == "column_count"
    assert str(err) == (
        f"{tmp_path / 'f.csv'}, line {line}: 1 fields but 3 columns are declared (delimiter ','). {_hint(delimiter)}"
    )


def test_a_utf8_bom_and_a_long_file_still_get_the_hint(tmp_path: Path) -> None:
    text = "\ufeffid|name|city\n" + "".join(f"{i}|name {i}|city {i}\n" for i in range(10_000))  # > the 64 KiB sample
    assert str(_refused(tmp_path, text)).endswith(_hint("|"))


@pytest.mark.parametrize(
    "text",
    [
        "ident\n1\n",  # one field, but no other delimiter in every line
        "id|name|city\n1|Anna\n",  # '|' not equally often in every line
        "id,nom,city\n1,Anna,Bern\n",  # three fields: a wrong name
    ],
    ids=["one_word", "uneven", "wrong_name"],
)
def test_no_hint_when_the_file_does_not_look_delimited(tmp_path: Path, text: str) -> None:
    err = _refused(tmp_path, text)
    assert err.reason == "header_mismatch" and "looks" not in str(err)
    assert str(err).endswith("). Fix the spec's columns or ask the client for the agreed layout")


def test_a_declared_single_column_reads_whole_lines(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("line\na|b|c\nd|e|f\n", encoding="utf-8")
    rows = read_all(source(tmp_path, [{"name": "line", "type": "string"}])).to_pylist()
    assert rows == [{"line": "a|b|c"}, {"line": "d|e|f"}]
