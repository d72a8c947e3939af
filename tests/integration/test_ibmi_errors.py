"""``ibmi`` source failures become bulksync errors, and chunk plans hold on NULL and skewed keys (issue 15 items 3-5).

Run against the emulating PostgreSQL and MariaDB of ``test_ibmi_source`` (no IBM i here).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from bulksync.errors import ConfigurationError
from tests.integration.test_ibmi_source import NOTES, _read, _source, conv  # noqa: F401 - conv is a fixture


def test_a_missing_file_is_refused_before_count_with_close_matches(conv: str) -> None:  # noqa: F811
    source = _source(conv, file="TESTLIB/CONX", columns=[])
    try:
        with pytest.raises(ConfigurationError, match=r"TESTLIB/CONX not found on connection.*did you mean CONV\?"):
            source.source_count()  # the extract stage's first call: it used to run COUNT(*) on the missing file
    finally:
        source.close()


def test_a_query_syntax_error_quotes_the_query(conv: str) -> None:  # noqa: F811
    source = _source(conv, file=None, query="SELEC ID FROM CONV", columns=[])
    try:
        with pytest.raises(ConfigurationError) as info:
            source.source_count()
    finally:
        source.close()
    msg = str(info.value)
    assert "the system refused the query" in msg and "'SELEC ID FROM CONV'" in msg
    assert "AS Q" not in msg and "WHERE 1 = 0" not in msg


def test_a_missing_incremental_column_is_caught_on_a_full_window_run(conv: str) -> None:  # noqa: F811
    source = _source(conv, incremental={"timestamp": "TSX"})  # Window(): a full run, no predicate at all
    try:
        with pytest.raises(
            ConfigurationError, match=r"incremental column TSX is not a column of TESTLIB/CONV; did you mean TS\?"
        ):
            source.source_count()
    finally:
        source.close()


def _keyed_table(conv_id: str, request: pytest.FixtureRequest, keys: list[int | None]) -> None:
    url = request.getfixturevalue("pg_url" if conv_id == "test_pg" else "mariadb_url")
    pg = conv_id == "test_pg"
    table, ref, v = ('"TESTLIB"."SK"', '"REF"', '"V"') if pg else ("SK", "REF", "V")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} ({ref} NUMERIC(9,0), {v} CHAR(6))")
        conn.exec_driver_sql(f"CREATE UNIQUE INDEX SK_REF ON {table} ({ref})")
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES (%s, %s)", [(k, f"v{i}") for i, k in enumerate(keys)])
    engine.dispose()


def _chunked(conv_id: str, chunking: dict[str, Any]) -> list[list[str]]:
    planner = _source(conv_id, file="TESTLIB/SK", columns=[], chunking=chunking)
    try:
        chunks = planner.plan_chunks()
    finally:
        planner.close()
    out = []
    for chunk in chunks:
        source = _source(conv_id, chunk=chunk, file="TESTLIB/SK", columns=[], chunking=chunking)
        count = source.source_count()
        values = [v.strip() for v in _read(source)["V"].to_pylist()]
        assert count == len(values)
        out.append(values)
    return out


def test_quantile_chunks_take_null_keys_into_the_first_range(conv: str, request: pytest.FixtureRequest) -> None:  # noqa: F811
    keys: list[int | None] = [None if i % 2 == 0 else i * 11 for i in range(1, 3001)]  # NULLs: every 2nd key
    _keyed_table(conv, request, keys)
    chunks = _chunked(conv, {"key": "REF", "chunk_size": 1000, "split": "quantiles"})
    assert sorted(v for c in chunks for v in c) == sorted(f"v{i}" for i in range(len(keys)))
    nulls = {f"v{i}" for i, k in enumerate(keys) if k is None}
    assert nulls <= set(chunks[0])


def test_minmax_on_skewed_keys_falls_back_to_balanced_ranges(conv: str, request: pytest.FixtureRequest) -> None:  # noqa: F811
    keys: list[int | None] = [*range(1, 5001), 900_000_000]  # one outlier: minmax puts 5,000 rows in one range
    _keyed_table(conv, request, keys)
    chunks = _chunked(conv, {"key": "REF", "chunk_size": 1000})
    assert sorted(v for c in chunks for v in c) == sorted(f"v{i}" for i in range(len(keys)))
    assert max(len(c) for c in chunks) <= 2 * 1000, [len(c) for c in chunks]


def test_varbinary_of_a_mariadb_query_is_bit_data(mariadb_url: str) -> None:
    from tests.integration.test_ibmi_source import _load_conv

    _load_conv(mariadb_url)
    query = "SELECT ID, NOTE FROM CONV WHERE ID <= 3"
    source = _source(
        "test_mariadb", file=None, query=query, columns=[{"name": "NOTE", "convert": "ebcdic", "ccsid": 37}]
    )
    table = _read(source).sort_by("ID")
    assert table.column("NOTE").to_pylist() == NOTES[:3]
