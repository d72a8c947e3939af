"""The ibmi source against real PostgreSQL and MariaDB holding IBM-i-shaped data (no IBM i is
reachable here: the driver layer is the only part not exercised; the Db2-for-i SQL is checked as
exact text in tests/unit/test_ibmi_sql.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from bulksync.errors import ConfigurationError, DataError
from bulksync.sources.registry import make_source
from bulksync.staging.partition import Window
from tests.helpers import pipeline

UTC = dt.UTC
D = dt.date
NOTES = ["Rush order", "Größe prüfen", "", None, "[x] 100%", None]
# ID, NAME, CITY, D7, D8, D6, DJ, CDAT, CTIM, CHRDAT, ZIP, AMT, TS
ROWS: list[tuple[Any, ...]] = [
    (
        1,
        "SMITH",
        "Dallas",
        1260105,
        20260105,
        260105,
        126005,
        1260105,
        134501,
        "1260105",
        501,
        "1234.50",
        dt.datetime(2026, 1, 5, 13, 45, 1),
    ),
    (
        2,
        "O'NEIL",
        " Lead",
        991231,
        19991231,
        991231,
        99365,
        991231,
        235959,
        "0991231",
        2134,
        "-0.01",
        dt.datetime(1999, 12, 31, 23, 59, 59),
    ),
    (3, "ZERO", "", 0, 0, 0, 0, 0, 0, "0000000", 0, "0.00", None),
    (4, "NINES", None, 9999999, 99999999, 999999, 999999, 9999999, 999999, "9999999", 99999, "999999999.99", None),
    (5, "BAD", "x", 1991332, 20250229, 991332, 126400, 1260230, 126000, "ABCDEFG", None, "1.00", None),
    (6, None, None, None, None, None, None, None, None, None, None, None, None),
]
EXPECTED = {
    "ID": [Decimal(i) for i in range(1, 7)],
    "NAME": ["SMITH", "O'NEIL", "ZERO", "NINES", "BAD", None],
    "CITY": ["Dallas", " Lead", "", None, "x", None],
    "D7": [D(2026, 1, 5), D(1999, 12, 31), None, None, None, None],
    "D8": [D(2026, 1, 5), D(1999, 12, 31), None, None, None, None],
    "D6": [D(2026, 1, 5), D(1999, 12, 31), None, None, None, None],
    "DJ": [D(2026, 1, 5), D(1999, 12, 31), None, None, None, None],
    "CHANGED_AT": [
        dt.datetime(2026, 1, 5, 12, 45, 1, tzinfo=UTC),
        dt.datetime(1999, 12, 31, 22, 59, 59, tzinfo=UTC),
        None,
        None,
        None,
        None,
    ],
    "CHRDAT": [D(2026, 1, 5), D(1999, 12, 31), None, None, None, None],
    "ZIP": ["00501", "02134", "00000", "99999", None, None],
    "AMT": [Decimal("1234.50"), Decimal("-0.01"), Decimal("0.00"), Decimal("999999999.99"), Decimal("1.00"), None],
    "NOTE": NOTES,
    "TS": [dt.datetime(2026, 1, 5, 12, 45, 1, tzinfo=UTC), dt.datetime(1999, 12, 31, 22, 59, 59, tzinfo=UTC)]
    + [None] * 4,
}
INVALID = {"D7": 1, "D8": 1, "D6": 1, "DJ": 1, "CHANGED_AT": 1, "CHRDAT": 1}
CONVENTIONS = [
    {"name": "D7", "convert": "date", "date_format": "CYYMMDD"},
    {"name": "D8", "convert": "date", "date_format": "YYYYMMDD"},
    {"name": "D6", "convert": "date", "date_format": "YYMMDD"},
    {"name": "DJ", "convert": "date", "date_format": "CYYDDD"},
    {"name": "CDAT", "convert": "timestamp", "date_format": "CYYMMDD", "time_column": "CTIM", "rename": "CHANGED_AT"},
    {"name": "CHRDAT", "convert": "date", "date_format": "CYYMMDD"},
    {"name": "ZIP", "convert": "code"},
    {"name": "NOTE", "convert": "ebcdic", "ccsid": 37},
]


def _ddl(dialect: str) -> list[str]:
    q = (lambda n: f"`{n}`") if dialect == "mysql" else (lambda n: f'"{n}"')
    table = f'"TESTLIB".{q("CONV")}' if dialect == "postgresql" else q("CONV")
    binary = "BYTEA" if dialect == "postgresql" else "VARBINARY(40)"
    ts = "TIMESTAMP NULL" if dialect == "mysql" else "TIMESTAMP"
    cols = [
        ("ID", "NUMERIC(5,0) NOT NULL PRIMARY KEY", "Row id"),
        ("NAME", "CHAR(10)", "Customer name"),
        ("CITY", "VARCHAR(20)", "City"),
        ("D7", "NUMERIC(7,0)", "Order date CYYMMDD"),
        ("D8", "NUMERIC(8,0)", ""),
        ("D6", "NUMERIC(6,0)", ""),
        ("DJ", "NUMERIC(6,0)", ""),
        ("CDAT", "NUMERIC(7,0)", "Changed on"),
        ("CTIM", "NUMERIC(6,0)", ""),
        ("CHRDAT", "CHAR(7)", ""),
        ("ZIP", "NUMERIC(5,0)", "Zip code"),
        ("AMT", "NUMERIC(11,2)", "Amount"),
        ("NOTE", binary, "Note (EBCDIC)"),
        ("TS", ts, ""),
    ]
    mysql_comment = (lambda c: f" COMMENT '{c}'" if c else "") if dialect == "mysql" else (lambda c: "")
    stmts = ['CREATE SCHEMA "TESTLIB"'] if dialect == "postgresql" else []
    stmts.append(f"CREATE TABLE {table} (" + ", ".join(f"{q(n)} {t}{mysql_comment(c)}" for n, t, c in cols) + ")")
    if dialect == "postgresql":
        stmts += [f"COMMENT ON COLUMN {table}.{q(n)} IS '{c}'" for n, _, c in cols if c]
    stmts.append(f"CREATE INDEX {q('CONV_NAME')} ON {table} ({q('NAME')})")
    stmts.append(f"CREATE TABLE {table[:-1]}__JAN2026{table[-1]} AS SELECT * FROM {table} WHERE 1 = 0")
    return stmts


def _load_conv(url: str) -> None:
    engine = sa.create_engine(url)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        for stmt in _ddl(dialect):
            conn.exec_driver_sql(stmt)
        table = '"TESTLIB"."CONV"' if dialect == "postgresql" else "CONV"
        marks = ", ".join(["%s"] * 14)
        for row, note in zip(ROWS, NOTES, strict=True):
            values = [*row[:12], None if note is None else note.encode("cp037"), row[12]]
            conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({marks})", tuple(values))
    engine.dispose()


@pytest.fixture(params=["pg", "mariadb"])
def conv(request: pytest.FixtureRequest) -> str:
    """The conventions table on PostgreSQL or MariaDB; returns the Airflow connection id."""
    url = request.getfixturevalue("pg_url" if request.param == "pg" else "mariadb_url")
    _load_conv(url)
    return "test_pg" if request.param == "pg" else "test_mariadb"


def _source(conn_id: str, window: Window = Window(), chunk: dict[str, Any] | None = None, **options: Any) -> Any:
    opts = {"file": "TESTLIB/CONV", "columns": CONVENTIONS, "timezone": "Europe/Berlin", **options}
    spec = pipeline(
        [
            {
                "name": "conv",
                "source": {"kind": "ibmi", "conn_id": conn_id, "options": opts},
                "target": {"kind": "sqlite", "conn_id": "w", "table": "t"},
            }
        ]
    )
    return make_source(spec.datasets[0].source, window, chunk)


def _read(source: Any) -> pa.Table:
    try:
        return pa.Table.from_batches(list(source.read()), schema=source.schema())
    finally:
        source.close()


def test_every_convention_decodes_to_the_known_values(conv: str) -> None:
    source = _source(conv)
    assert source.source_count() == 6
    table = _read(source).sort_by("ID")
    assert table.to_pydict() == EXPECTED
    assert source.stats["invalid_values"] == INVALID
    assert source.stats["invalid_samples"]["D7"] == "'1991332'"
    assert source.stats["invalid_samples"]["CHRDAT"] == "'ABCDEFG'"
    types = {f.name: f.type for f in table.schema}
    assert types["AMT"] == pa.decimal128(11, 2)
    assert types["ID"] == pa.decimal128(5, 0)
    assert types["CHANGED_AT"] == pa.timestamp("us", tz="UTC")
    assert types["D7"] == pa.date32()
    comments = {f.name: (f.metadata or {}).get(b"comment") for f in table.schema}
    assert comments["NAME"] == b"Customer name"
    assert comments["CHANGED_AT"] == b"Changed on"
    assert comments["D8"] is None


def test_char_padding_is_kept_when_trim_is_off(conv: str) -> None:
    table = _read(_source(conv, trim_char=False)).sort_by("ID")
    assert table["NAME"].to_pylist()[:2] == ["SMITH     ", "O'NEIL    "]
    assert table["CITY"].to_pylist()[:2] == ["Dallas", " Lead"]  # VARCHAR is never padded


def test_strict_mode_fails_naming_column_and_value(conv: str) -> None:
    with pytest.raises(DataError) as err:
        _read(_source(conv, strict=True))
    msg = str(err.value)
    assert "TESTLIB/CONV, column D7 (CYYMMDD date): invalid value '1991332'" in msg
    assert "row 5 of this extract" in msg
    assert "strict: false" in msg


def test_declared_only_columns_and_bit_data_default(conv: str) -> None:
    source = _source(conv, read_columns="declared", columns=[{"name": "NOTE", "convert": "auto"}], bit_data_ccsid=37)
    assert _read(source).sort_by("NOTE").column_names == ["NOTE"]
    raw = _read(_source(conv, columns=[])).sort_by("ID")
    assert raw["NOTE"].to_pylist()[0] == "Rush order".encode("cp037")
    assert raw["D7"].to_pylist()[0] == Decimal("1260105")


def test_missing_member_names_library_file_and_member(conv: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        _read(_source(conv, file="TESTLIB/CONV(FEB2026)"))
    msg = str(err.value)
    assert "member FEB2026 does not exist in library TESTLIB, file CONV" in msg
    assert "members: CONV, JAN2026" in msg
    empty = _read(_source(conv, file="TESTLIB/CONV(JAN2026)"))
    assert empty.num_rows == 0 and empty.schema.names == list(EXPECTED)


def test_missing_file(conv: str) -> None:
    with pytest.raises(ConfigurationError, match="file TESTLIB/NOFILE not found"):
        _read(_source(conv, file="TESTLIB/NOFILE", columns=[]))


def test_declared_column_missing_from_the_file(conv: str) -> None:
    with pytest.raises(ConfigurationError, match=r"columns \['ORDDAT'\] declared in the spec are not in TESTLIB/CONV"):
        _read(_source(conv, columns=[{"name": "ORDDAT", "convert": "date", "date_format": "CYYMMDD"}]))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("CITY", "chunking key CITY of TESTLIB/CONV is not indexed"),
        ("NAME", "chunking key NAME of TESTLIB/CONV is not unique on its own (index over 1 column(s), not unique)"),
    ],
)
def test_chunking_refuses_non_indexed_and_non_unique_keys(conv: str, key: str, message: str) -> None:
    source = _source(conv, chunking={"key": key, "chunks": 2})
    try:
        with pytest.raises(ConfigurationError) as err:
            source.plan_chunks()
    finally:
        source.close()
    assert message in str(err.value)


def test_incremental_on_a_timestamp_column(conv: str) -> None:
    # TS is Berlin local time: 2026-01-05 13:45:01 local = 12:45:01Z
    inside = Window(dt.datetime(2026, 1, 5, 12, 45, 1, tzinfo=UTC), dt.datetime(2026, 1, 5, 13, tzinfo=UTC))
    before = Window(dt.datetime(2026, 1, 5, 12, tzinfo=UTC), dt.datetime(2026, 1, 5, 12, 45, 1, tzinfo=UTC))
    for window, ids in ((inside, [1]), (before, [])):
        source = _source(conv, window, incremental={"timestamp": "TS"})
        assert source.source_count() == len(ids)
        assert [int(v) for v in _read(source)["ID"].to_pylist()] == ids


def test_chunks_of_a_nullable_unique_key_lose_no_row(conv: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url" if conv == "test_pg" else "mariadb_url")
    pg = conv == "test_pg"
    table, ref, v = ('"TESTLIB"."NK"', '"REF"', '"V"') if pg else ("NK", "REF", "V")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} ({ref} NUMERIC(7,0), {v} CHAR(4))")
        conn.exec_driver_sql(f"CREATE UNIQUE INDEX NK_REF ON {table} ({ref})")
        rows = [(None if i % 5 == 0 else i * 3, f"v{i}") for i in range(1, 101)]
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES (%s, %s)", rows)
    engine.dispose()
    planner = _source(conv, file="TESTLIB/NK", columns=[], chunking={"key": "REF", "chunks": 4})
    try:
        chunks = planner.plan_chunks()
    finally:
        planner.close()
    assert len(chunks) == 4 and chunks[0]["lo"] is None and chunks[-1]["hi"] is None
    got: list[str] = []
    for chunk in chunks:
        source = _source(conv, chunk=chunk, file="TESTLIB/NK", columns=[], chunking={"key": "REF", "chunks": 4})
        count = source.source_count()
        values = _read(source)["V"].to_pylist()
        assert count == len(values)
        got += values
    assert sorted(got) == sorted(v for _, v in rows)


def test_a_query_is_typed_from_the_driver(conv: str) -> None:
    q = (lambda n: f'"{n}"') if conv == "test_pg" else (lambda n: n)
    table = '"TESTLIB"."CONV"' if conv == "test_pg" else "CONV"
    query = f"SELECT {q('ID')}, {q('NAME')}, {q('D7')}, {q('AMT')} FROM {table} WHERE {q('ID')} <= 3"
    source = _source(conv, file=None, query=query, columns=[CONVENTIONS[0]])
    table_ = _read(source).sort_by("ID")
    assert table_.schema.types == [pa.decimal128(5, 0), pa.string(), pa.date32(), pa.decimal128(11, 2)]
    assert table_.to_pydict() == {k: EXPECTED[k][:3] for k in ("ID", "NAME", "D7", "AMT")}
