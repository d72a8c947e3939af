"""The Db2-for-i SQL the ibmi source sends, as exact text, and the window → numeric-date predicates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bulksync.ibmi.catalog import columns_sql, key_indexes_sql, members_sql
from bulksync.ibmi.names import FileName, parse_file_name
from bulksync.ibmi.sqlgen import NumericWindow, SqlBuilder
from bulksync.ibmi.window import encode_date, numeric_window

UTC = dt.UTC
DB2 = SqlBuilder("db2i")
MEMBER = FileName("ACMELIB", "ORDHDR", "ARCHIVE")


@pytest.mark.parametrize(
    ("text", "member", "expected"),
    [
        ("ACMELIB/ORDHDR", None, FileName("ACMELIB", "ORDHDR")),
        ("acmelib.ordhdr", None, FileName("ACMELIB", "ORDHDR")),
        ("ACMELIB/ORDHDR(ARCHIVE)", None, MEMBER),
        ("ACMELIB.ORDHDR", "archive", MEMBER),
        ("QCUSTCDT", None, FileName(None, "QCUSTCDT")),
    ],
)
def test_file_names(text: str, member: str | None, expected: FileName) -> None:
    assert parse_file_name(text, member) == expected


@pytest.mark.parametrize("bad", ["ACMELIB/ORD HDR", "A/B/C", "LIB.FILE(M1", ""])
def test_malformed_file_names_say_the_syntax(bad: str) -> None:
    with pytest.raises(ValueError, match=r"LIB/FILE or LIB\.FILE"):
        parse_file_name(bad)


def test_member_given_twice_differently() -> None:
    with pytest.raises(ValueError, match="member given twice"):
        parse_file_name("ACMELIB/ORDHDR(ARCHIVE)", "CURRENT")


def test_member_alias_create_and_drop() -> None:
    assert DB2.create_alias(MEMBER).text == "CREATE ALIAS QTEMP.BULKSYNC_ORDHDR_ARCHIVE FOR ACMELIB.ORDHDR(ARCHIVE)"
    assert DB2.drop_alias(MEMBER).text == "DROP ALIAS QTEMP.BULKSYNC_ORDHDR_ARCHIVE"
    assert DB2.from_file(MEMBER) == "QTEMP.BULKSYNC_ORDHDR_ARCHIVE"
    assert DB2.from_file(FileName("ACMELIB", "ORDHDR", "ORDHDR")) == "ACMELIB.ORDHDR"


def test_select_uncommitted_read_and_fetch_first() -> None:
    sql = DB2.select(["ORDNUM", "ORDDAT"], "ACMELIB.ORDHDR", [DB2.key_range("ORDNUM", 100, 200)], limit=10)
    assert sql.text == (
        "SELECT ORDNUM, ORDDAT FROM ACMELIB.ORDHDR WHERE ORDNUM >= :chunk_lo AND ORDNUM < :chunk_hi "
        "FETCH FIRST 10 ROWS ONLY FOR READ ONLY WITH UR"
    )
    assert sql.params == {"chunk_lo": 100, "chunk_hi": 200}


def test_key_ranges_cover_every_row() -> None:
    assert DB2.key_range("ORDNUM", None, 100).text == "(ORDNUM < :chunk_hi OR ORDNUM IS NULL)"
    assert DB2.key_range("ORDNUM", 100, None).text == "ORDNUM >= :chunk_lo"
    assert DB2.key_range("ORDNUM", None, None).text == ""
    assert DB2.select(["A"], "T", [DB2.key_range("A", None, None)]).text == "SELECT A FROM T FOR READ ONLY WITH UR"


@pytest.mark.parametrize("iso", ["UR", "NC", "CS"])
def test_isolation_clauses(iso: str) -> None:
    b = SqlBuilder("db2i", iso)
    assert b.count("ACMELIB.ORDLIN").text == f"SELECT COUNT(*) FROM ACMELIB.ORDLIN FOR READ ONLY WITH {iso}"


def test_names_that_need_quotes_on_db2i() -> None:
    assert DB2.ident("ORD#NUM") == "ORD#NUM"
    assert DB2.ident("Order Date") == '"Order Date"'
    assert DB2.ident('A"B') == '"A""B"'


def test_emulation_sql_has_no_isolation_clause_and_member_tables() -> None:
    pg = SqlBuilder("postgresql")
    assert pg.from_file(MEMBER) == '"ACMELIB"."ORDHDR__ARCHIVE"'
    assert pg.select(["ORDNUM"], pg.from_file(MEMBER), limit=5).text == (
        'SELECT "ORDNUM" FROM "ACMELIB"."ORDHDR__ARCHIVE" LIMIT 5'
    )
    my = SqlBuilder("mysql")
    assert my.from_file(MEMBER) == "`ORDHDR__ARCHIVE`"
    with pytest.raises(ValueError, match="only on Db2 for i"):
        pg.create_alias(MEMBER)


def test_min_max_and_quantiles() -> None:
    assert DB2.min_max("LINSEQ", "ACMELIB.ORDLIN").text == (
        "SELECT MIN(LINSEQ), MAX(LINSEQ), COUNT(*) FROM ACMELIB.ORDLIN FOR READ ONLY WITH UR"
    )
    q = DB2.quantiles("LINSEQ", "ACMELIB.ORDLIN", 250_000)
    assert q.text == (
        "SELECT LINSEQ FROM (SELECT LINSEQ, ROW_NUMBER() OVER (ORDER BY LINSEQ) AS BULKSYNC_RN "
        "FROM ACMELIB.ORDLIN WHERE LINSEQ IS NOT NULL) AS R WHERE MOD(BULKSYNC_RN, :step) = 0 ORDER BY LINSEQ "
        "FOR READ ONLY WITH UR"
    )
    assert q.params == {"step": 250_000}
    assert 'BULKSYNC_RN" % :step = 0' in SqlBuilder("sqlite").quantiles("K", "T", 2).text


def test_query_as_derived_table() -> None:
    sql = DB2.select(["A"], DB2.from_query("SELECT A FROM ACMELIB.X;"), [DB2.timestamp_range("TS", 1, 2)])
    assert sql.text == (
        "SELECT A FROM (SELECT A FROM ACMELIB.X) AS Q WHERE TS >= :window_start AND TS < :window_end "
        "FOR READ ONLY WITH UR"
    )


def test_catalogue_queries() -> None:
    assert columns_sql(DB2, MEMBER).text == (
        "SELECT COLUMN_NAME, DATA_TYPE, LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, CCSID, COLUMN_TEXT, IS_NULLABLE "
        "FROM QSYS2.SYSCOLUMNS WHERE TABLE_SCHEMA = :library AND (TABLE_NAME = :file OR SYSTEM_TABLE_NAME = :file) "
        "ORDER BY ORDINAL_POSITION FOR READ ONLY WITH UR"
    )
    assert columns_sql(DB2, MEMBER).params == {"library": "ACMELIB", "file": "ORDHDR"}
    assert "TABLE_SCHEMA = CURRENT SCHEMA" in columns_sql(DB2, FileName(None, "QCUSTCDT")).text
    assert members_sql(DB2, MEMBER).text == (
        "SELECT SYSTEM_TABLE_MEMBER FROM QSYS2.SYSPARTITIONSTAT WHERE SYSTEM_TABLE_SCHEMA = :library "
        "AND (TABLE_NAME = :file OR SYSTEM_TABLE_NAME = :file) ORDER BY SYSTEM_TABLE_MEMBER FOR READ ONLY WITH UR"
    )
    keys = key_indexes_sql(DB2, MEMBER, "ORDNUM")
    assert keys.params == {"library": "ACMELIB", "file": "ORDHDR", "key": "ORDNUM"}
    assert "C.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE')" in keys.text
    assert "I.IS_UNIQUE IN ('U', 'V')" in keys.text
    assert keys.text.endswith("K.COLUMN_NAME = :key AND K.ORDINAL_POSITION = 1 FOR READ ONLY WITH UR")


# -- windows as numeric dates ------------------------------------------------------------------


def _pred(start: dt.datetime, end: dt.datetime, fmt: str = "CYYMMDD", time: str | None = "CHGTIM", **kw: str) -> tuple:
    bounds = numeric_window(start, end, fmt, with_time=time is not None, **kw)
    p = DB2.date_time_range("CHGDAT", time, bounds)
    return p.text, p.params


def test_daily_window_at_midnight_is_one_day_of_codes() -> None:
    text, params = _pred(dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC))
    assert text == "CHGDAT BETWEEN :w_d0_lo AND :w_d0_hi"
    assert params == {"w_d0_lo": 1260101, "w_d0_hi": 1260101}


def test_window_across_midnight_uses_date_and_time_edges() -> None:
    text, params = _pred(dt.datetime(2026, 1, 1, 22, tzinfo=UTC), dt.datetime(2026, 1, 2, 2, 30, tzinfo=UTC))
    assert text == "((CHGDAT = :w_first AND CHGTIM >= :w_first_time) OR (CHGDAT = :w_last AND CHGTIM < :w_last_time))"
    assert params == {"w_first": 1260101, "w_first_time": 220000, "w_last": 1260102, "w_last_time": 23000}


def test_window_within_one_day() -> None:
    text, params = _pred(dt.datetime(2026, 1, 1, 2, tzinfo=UTC), dt.datetime(2026, 1, 1, 3, tzinfo=UTC))
    assert text == "(CHGDAT = :w_first AND CHGTIM >= :w_first_time AND CHGTIM < :w_last_time)"
    assert params == {"w_first": 1260101, "w_first_time": 20000, "w_last_time": 30000}


def test_window_across_the_century_in_cyymmdd() -> None:
    text, params = _pred(dt.datetime(1999, 12, 30, 12, tzinfo=UTC), dt.datetime(2000, 1, 2, 6, tzinfo=UTC))
    assert text == (
        "((CHGDAT = :w_first AND CHGTIM >= :w_first_time) OR CHGDAT BETWEEN :w_d0_lo AND :w_d0_hi "
        "OR (CHGDAT = :w_last AND CHGTIM < :w_last_time))"
    )
    assert params == {
        "w_first": 991230,
        "w_first_time": 120000,
        "w_d0_lo": 991231,
        "w_d0_hi": 1000101,
        "w_last": 1000102,
        "w_last_time": 60000,
    }


def test_yymmdd_codes_split_where_the_century_wraps() -> None:
    text, params = _pred(dt.datetime(1999, 12, 30, tzinfo=UTC), dt.datetime(2000, 1, 3, tzinfo=UTC), "YYMMDD", None)
    assert text == "(CHGDAT BETWEEN :w_d0_lo AND :w_d0_hi OR CHGDAT BETWEEN :w_d1_lo AND :w_d1_hi)"
    assert params == {"w_d0_lo": 991230, "w_d0_hi": 991231, "w_d1_lo": 101, "w_d1_hi": 102}


def test_window_moves_into_the_systems_time_zone() -> None:
    # 2026-03-29 00:30Z..01:30Z is 01:30 CET .. 03:30 CEST in Berlin (clocks jump at 02:00)
    start, end = dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC), dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    text, params = _pred(start, end, timezone="Europe/Berlin")
    assert text == "(CHGDAT = :w_first AND CHGTIM >= :w_first_time AND CHGTIM < :w_last_time)"
    assert params == {"w_first": 1260329, "w_first_time": 13000, "w_last_time": 33000}


def test_sub_second_bounds_round_up_to_the_next_second() -> None:
    bounds = numeric_window(
        dt.datetime(2026, 1, 1, 23, 59, 59, 500_000, tzinfo=UTC),
        dt.datetime(2026, 1, 2, 0, 0, 10, 1, tzinfo=UTC),
        "CYYMMDD",
        with_time=True,
    )
    assert bounds == NumericWindow(None, [], (1260102, 11))


def test_date_codes() -> None:
    assert encode_date(dt.date(2026, 1, 5), "CYYMMDD") == 1260105
    assert encode_date(dt.date(1999, 12, 31), "CYYMMDD") == 991231
    assert encode_date(dt.date(2026, 1, 5), "CYYDDD") == 126005
    assert encode_date(dt.date(2024, 12, 31), "CYYDDD") == 124366
    assert encode_date(dt.date(2026, 1, 5), "YYYYMMDD") == 20260105
    assert encode_date(dt.date(2005, 1, 5), "YYMMDD") == 50105
    with pytest.raises(ValueError, match="cannot be written as YYMMDD"):
        encode_date(dt.date(2045, 1, 1), "YYMMDD")


# -- the hook's URL -----------------------------------------------------------------------------


def _hook(monkeypatch: pytest.MonkeyPatch, extra: str, **kwargs: bool) -> Any:
    from bulksync.hooks.ibmi import IbmiHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_AS400",
        '{"conn_type": "ibmi", "host": "as400.example.com", "login": "BULKSYNC", "password": "s3cret", '
        f'"schema": "acmelib", "extra": {extra}}}',
    )
    return IbmiHook("as400", **kwargs)


def test_hook_builds_the_sqlalchemy_ibmi_url(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, '{"url_query": {"library_list": "ACMELIB,QGPL"}}')
    assert hook.backend == "db2i"
    assert hook.sqlalchemy_url.render_as_string(hide_password=True) == (
        "ibmi://BULKSYNC:***@as400.example.com?current_schema=ACMELIB&library_list=ACMELIB%2CQGPL&readonly=True"
    )
    assert "s3cret" not in hook.describe()
    member = _hook(monkeypatch, "{}", read_only=False)
    assert "readonly" not in member.sqlalchemy_url.query


def test_hook_builds_the_ibm_db_sa_url_and_refuses_unknown_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, '{"driver": "ibm_db_sa", "rdb": "S1234567"}')
    assert hook.sqlalchemy_url.render_as_string(hide_password=True) == (
        "db2+ibm_db://BULKSYNC:***@as400.example.com:446/S1234567"
    )
    from bulksync.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"extra\.driver 'jt400' is unknown"):
        _ = _hook(monkeypatch, '{"driver": "jt400"}').sqlalchemy_url


def test_hook_accepts_emulating_databases(monkeypatch: pytest.MonkeyPatch) -> None:
    from bulksync.hooks.ibmi import IbmiHook

    monkeypatch.setenv("AIRFLOW_CONN_EMU", "postgresql://postgres@127.0.0.1:5432/acme")
    hook = IbmiHook("emu")
    assert hook.backend == "postgresql"
    assert str(hook.sqlalchemy_url) == "postgresql+psycopg://postgres@127.0.0.1:5432/acme"
    assert IbmiHook.conn_type == "ibmi"
    assert IbmiHook.get_ui_field_behaviour()["relabeling"]["schema"] == "Default library"
