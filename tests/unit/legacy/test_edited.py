"""Numeric-edited and explicit-point pictures decoded as decimals, and null detection (issue 16).

The field texts are what IBM's editing rules produce for the value (Enterprise COBOL Language Reference,
"PICTURE clause editing"); tests/integration/test_copybook_gnucobol.py checks the same pictures on records
GnuCOBOL edited.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from tests.unit.legacy.conftest import Decode, copybook


def one(decode: Decode, pic: str, texts: list[str], **kw: Any) -> tuple[list[Any], list[str]]:
    data = b"".join(t.encode("cp037") for t in texts)
    rows, blocks = decode(copybook(f"A PIC {pic}"), data, **kw)
    return [r["a"] for r in rows], [e.reason for b in blocks for e in b.errors]


D = Decimal


@pytest.mark.parametrize(
    ("pic", "texts", "values"),
    [
        ("+9(8)", ["+00001234", "-00000012"], [1234, -12]),
        ("Z(8)-", ["    1234 ", "      12-", "         "], [1234, -12, 0]),
        ("9(6).99-", ["001234.50-", "000000.07 "], [D("-1234.50"), D("0.07")]),
        ("9(8).9(2)", ["00001234.56"], [D("1234.56")]),
        ("S9(3).99", ["12.3N".rjust(6, "0")], [D("-12.35")]),  # overpunched last digit: N = -5
        ("-Z,ZZZ,ZZ9.99", ["-    1,234.50", "         0.00"], [D("-1234.50"), D("0.00")]),
        ("$**,**9.99CR", ["$***123.45CR", "$*1,234.00  "], [D("-123.45"), D("1234.00")]),
        ("ZZZ9.99DB", ["  12.34DB", "  12.34  "], [D("-12.34"), D("12.34")]),
        ("++++9.99", ["  -12.34", "  +12.34", "+1234.00"], [D("-12.34"), D("12.34"), D("1234.00")]),
        ("----9", ["  -12", "   12"], [-12, 12]),
        ("$$$9.99", [" $12.34"], [D("12.34")]),
        ("99/99/99", ["12/31/25"], [123125]),
        ("ZZZV99", ["12345"], [D("123.45")]),
    ],
)
def test_edited_pictures_decode_as_numbers(decode: Decode, pic: str, texts: list[str], values: list[Any]) -> None:
    got, errors = one(decode, pic, texts)
    assert errors == []
    assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]


def test_edited_types_and_text_option(decode: Decode) -> None:
    rows, blocks = decode(copybook("A PIC -Z,ZZ9.99", "B PIC Z(8)-"), "-1,234.50      12-".encode("cp037"))
    assert blocks[0].batch.schema == pa.schema([("a", pa.decimal128(6, 2)), ("b", pa.int64())])
    rows, blocks = decode(copybook("A PIC -Z,ZZ9.99"), b"-1,234.50".decode().encode("cp037"), edited_numbers="text")
    assert rows == [{"a": "-1,234.50"}] and blocks[0].batch.schema.field("a").type == pa.string()


def test_decimal_point_is_comma(decode: Decode) -> None:
    got, errors = one(decode, "-Z.ZZ9,99", ["-1.234,50"], decimal_comma=True)
    assert (got, errors) == ([D("-1234.50")], [])


def test_blank_when_zero_and_blank_fields(decode: Decode) -> None:
    rows, _ = decode(copybook("A PIC 9(3).99 BLANK WHEN ZERO"), b"      ".decode().encode("cp037"))
    assert rows == [{"a": D("0.00")}]
    got, errors = one(decode, "9(3).99", ["      "])
    assert (got, errors) == ([None], [])  # spaces in a 9 picture: no value (null_spaces: numbers)
    got, errors = one(decode, "9(3).99", ["      "], null_spaces="none")
    assert (got, errors) == ([None], ["bad character in a numeric-edited field"])


@pytest.mark.parametrize("text", ["12a.45", "-23.45", "1234.5", "1 3.45"], ids=["letter", "sign", "point", "gap"])
def test_bad_edited_characters_are_record_errors(decode: Decode, text: str) -> None:
    got, errors = one(decode, "9(3).99", [text])
    assert (got, errors) == ([None], ["bad character in a numeric-edited field"])


def test_null_detection_options(decode: Decode) -> None:
    text = copybook("N PIC S9(3)", "P PIC S9(3) COMP-3", "X PIC X(2)", "B PIC S9(4) COMP-5")
    low = bytes(3) + bytes(2) + bytes(2) + bytes(2)
    spaces = b"\x40" * 9
    rows, blocks = decode(text, low + spaces)
    assert rows == [{"n": None, "p": None, "x": "", "b": 0}, {"n": None, "p": None, "x": "", "b": 0x4040}]
    assert blocks[0].error_count == 0
    rows, blocks = decode(text, low + spaces, null_low_values="all", null_spaces="all")
    assert rows == [{"n": None, "p": None, "x": None, "b": None}, {"n": None, "p": None, "x": None, "b": None}]
    rows, blocks = decode(text, low + spaces, null_low_values="none", null_spaces="none")
    assert [(e.record, e.field, e.reason) for e in blocks[0].errors] == [
        (1, "n", "bad zoned digit"), (1, "p", "bad packed sign nibble"),
        (2, "n", "bad zoned digit"), (2, "p", "bad packed sign nibble"),
    ]  # fmt: skip


def test_a_blank_comp_field_read_as_null_is_no_invalid_value(decode: Decode) -> None:
    """x'4040' in a PIC 9(4) COMP is 16448, beyond the picture: with null_spaces: all it is a null, not an error
    (else strict reading would quarantine the very records the option lets through)."""
    text = copybook("B PIC 9(4) COMP", "X PIC X(2)")
    data = b"\x40\x40" + "ab".encode("cp037") + b"\x00\x07" + "cd".encode("cp037")
    rows, blocks = decode(text, data, null_spaces="all")
    assert rows == [{"b": None, "x": "ab"}, {"b": 7, "x": "cd"}]
    assert [e.reason for b in blocks for e in b.errors] == []
    rows, blocks = decode(text, data)  # null_spaces: numbers leaves binary fields alone: 16448 exceeds PIC 9(4)
    assert rows[1] == {"b": 7, "x": "cd"} and rows[0]["b"] is None
    assert [(e.record, e.field) for b in blocks for e in b.errors] == [(1, "b")]
