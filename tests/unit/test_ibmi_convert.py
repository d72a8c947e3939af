"""IBM i conventions as Arrow conversions, value by value, and the spec errors of the ibmi source."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from bulksync.errors import SpecError
from bulksync.ibmi import convert
from tests.helpers import pipeline

D = dt.date


def _dates(values: list[Any], fmt: str, typ: pa.DataType | None = None) -> tuple[list[Any], list[bool]]:
    out, bad = convert.numeric_date(pa.array(values, typ), fmt)
    return out.to_pylist(), [bool(b) for b in bad]


def test_cyymmdd() -> None:
    values = [1260105, 991231, 1000229, 0, 9999999, 1991332, 1010229, 1251301, None, 12345678]
    dates, bad = _dates(values, "CYYMMDD")
    assert dates == [D(2026, 1, 5), D(1999, 12, 31), D(2000, 2, 29), None, None, None, None, None, None, None]
    assert bad == [False, False, False, False, False, True, True, True, False, True]


def test_cyymmdd_from_decimal_and_char_columns() -> None:
    dec = [Decimal("1260105"), Decimal("0"), Decimal("1260230")]
    assert _dates(dec, "CYYMMDD", pa.decimal128(7, 0)) == ([D(2026, 1, 5), None, None], [False, False, True])
    text = ["1260105", " 1260106 ", "ABCDEFG", "0000000", "12601O5", None]
    assert _dates(text, "CYYMMDD") == (
        [D(2026, 1, 5), D(2026, 1, 6), None, None, None, None],
        [False, False, True, False, True, False],
    )


def test_yyyymmdd_yymmdd_and_julian() -> None:
    assert _dates([20260105, 99999999, 20250229, 0], "YYYYMMDD") == (
        [D(2026, 1, 5), None, None, None],
        [False, False, True, False],
    )
    assert _dates([391231, 400101, 260105, 999999, 0], "YYMMDD") == (
        [D(2039, 12, 31), D(1940, 1, 1), D(2026, 1, 5), None, None],
        [False, False, False, False, False],
    )
    assert _dates([126005, 124366, 125366, 99365, 0, 999999, 126000], "CYYDDD") == (
        [D(2026, 1, 5), D(2024, 12, 31), None, D(1999, 12, 31), None, None, None],
        [False, False, True, False, False, False, True],
    )


def test_yymmdd_pivot_is_configurable() -> None:
    out, _ = convert.numeric_date(pa.array([491231, 500101]), "YYMMDD", pivot=50)
    assert out.to_pylist() == [D(2049, 12, 31), D(1950, 1, 1)]


def test_hhmmss_times() -> None:
    out, bad = convert.numeric_time(pa.array([134501, 0, 235959, 240000, 126000, None]))
    assert out.to_pylist() == [dt.time(13, 45, 1), dt.time(0), dt.time(23, 59, 59), None, None, None]
    assert bad.tolist() == [False, False, False, True, True, False]


def test_date_time_pairs_become_utc_timestamps() -> None:
    out, bad = convert.numeric_timestamp(
        pa.array([1260105, 1260105, 0, 1260105, 1260230]),
        pa.array([134501, 250000, 101010, None, 120000]),
        "CYYMMDD",
        40,
        "Europe/Berlin",
    )
    utc = dt.UTC
    assert [v.astimezone(utc) if v else None for v in out.to_pylist()] == [
        dt.datetime(2026, 1, 5, 12, 45, 1, tzinfo=utc),
        None,
        None,
        None,
        None,
    ]
    assert bad.tolist() == [False, True, False, False, True]


def test_codes_are_zero_padded_text() -> None:
    out, bad = convert.code(pa.array([Decimal(501), Decimal(2134), None, Decimal(123456)], pa.decimal128(6, 0)), 5)
    assert out.to_pylist() == ["00501", "02134", None, None]
    assert bad.tolist() == [False, False, False, True]


def test_char_trim_keeps_leading_blanks() -> None:
    assert convert.rtrim(pa.array(["SMITH   ", "  LEAD  ", "", None])).to_pylist() == ["SMITH", "  LEAD", "", None]


@pytest.mark.parametrize(
    ("codec", "text"),
    [("cp037", "Order #42 (rush)"), ("cp273", "Größe: 12 Stück"), ("cp500", "[brackets] !"), ("cp1140", "Preis 5 €")],
)
def test_ebcdic_decoding(codec: str, text: str) -> None:
    raw = pa.array([text.encode(codec).ljust(24, b"\x40"), None, b"", "x".encode(codec)], pa.binary())
    assert convert.ebcdic(raw, codec).to_pylist() == [text, None, "", "x"]
    assert convert.ebcdic(raw.slice(1), codec).to_pylist() == [None, "", "x"]
    assert convert.ebcdic(raw, codec, trim=False).to_pylist()[0] == text.ljust(24)


def test_decimal_from_text_and_sqlite_floats_is_exact() -> None:
    typ = pa.decimal128(11, 2)
    assert convert.decimal(pa.array(["12345.67", "-0.10", None]), typ).to_pylist() == [
        Decimal("12345.67"),
        Decimal("-0.10"),
        None,
    ]
    assert convert.decimal(pa.array([0.1, 12345678.91]), typ).to_pylist() == [Decimal("0.10"), Decimal("12345678.91")]


# -- spec errors ------------------------------------------------------------------------------


def _ibmi(options: dict[str, Any]) -> Any:
    return pipeline(
        [
            {
                "name": "orders",
                "source": {"kind": "ibmi", "conn_id": "as400", "options": options},
                "target": {"kind": "sqlite", "conn_id": "w", "table": "t"},
            }
        ]
    )


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (
            {"file": "ACMELIB/ORDHDR", "columns": [{"name": "NOTE", "convert": "ebcdic", "ccsid": 285}]},
            "datasets[0].source.options.columns[0].ccsid",
            "CCSID 285 is not a supported EBCDIC code page",
        ),
        ({"file": "ACMELIB/ORDHDR", "bit_data_ccsid": 1}, "bit_data_ccsid", "CCSID 1 is not a supported"),
        ({"file": "ACMELIB/ORD HDR"}, "options", "write LIB/FILE or LIB.FILE"),
        ({"file": "A/B", "query": "SELECT 1"}, "options", "exactly one of 'file'"),
        ({"file": "A/B", "columns": [{"name": "D", "convert": "date"}]}, "columns[0]", "needs date_format"),
        (
            {"file": "A/B", "columns": [{"name": "D", "convert": "timestamp", "date_format": "CYYMMDD"}]},
            "columns[0]",
            "needs time_column",
        ),
        ({"file": "A/B", "columns": [{"name": "D", "convert": "date", "date_format": "DDMMYY"}]}, "date_format", ""),
        ({"file": "A/B", "chunking": {"key": "K"}}, "chunking", "exactly one of 'chunks' or 'chunk_size'"),
        ({"file": "A/B", "incremental": {"time": "T"}}, "incremental", "either 'timestamp'"),
        ({"file": "A/B", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
    ],
)
def test_spec_errors_name_the_field(options: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        _ibmi(options)
    assert field in str(err.value)
    assert message in str(err.value)


def test_a_valid_spec() -> None:
    spec = _ibmi(
        {
            "file": "acmelib/ordhdr(archive)",
            "columns": [{"name": "ORDDAT", "convert": "date", "date_format": "cyymmdd", "rename": "ORDER_DATE"}],
            "incremental": {"date": "CHGDAT", "time": "CHGTIM"},
            "chunking": {"key": "ORDNUM", "chunks": 4},
            "pool": "as400",
        }
    )
    src = spec.datasets[0].source
    assert str(src.options.file_name()) == "ACMELIB/ORDHDR(ARCHIVE)"
    assert src.options.columns[0].date_format == "CYYMMDD"
    assert src.pool_name() == "as400"
