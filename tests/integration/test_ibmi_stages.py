"""The ibmi source through the stages on the sample library (bulksync sandbox ibmi) in real
PostgreSQL and MariaDB: chunked == full, incremental windows, members, comments in the target."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.sandbox import ibmi as sandbox
from bulksync.staging.partition import Window
from bulksync.staging.reader import iter_batches, read_manifest
from tests.helpers import pipeline

UTC = dt.UTC
LINES = 6_000
ORDLIN_COLUMNS = [
    {"name": "DLVDAT", "convert": "date", "date_format": "CYYMMDD"},
    {"name": "CHGDAT", "convert": "timestamp", "date_format": "CYYMMDD", "time_column": "CHGTIM", "rename": "CHANGED"},
    {"name": "ITEM", "convert": "text"},
]
ORDHDR_COLUMNS = [
    {"name": "ORDDAT", "convert": "date", "date_format": "CYYMMDD"},
    {"name": "ORDTIM", "convert": "time"},
    {"name": "SHPDAT", "convert": "date", "date_format": "YYYYMMDD"},
    {"name": "PRMDAT", "convert": "date", "date_format": "YYMMDD"},
    {"name": "INVJUL", "convert": "date", "date_format": "CYYDDD"},
    {"name": "CUSNUM", "convert": "code", "width": 6},
    {"name": "ORDNOTE", "convert": "ebcdic", "ccsid": 37},
]


@pytest.fixture
def library() -> dict[str, pa.Table]:
    return sandbox.library(LINES)


@pytest.fixture
def acme_pg(pg_url: str, env: pytest.MonkeyPatch, library: dict[str, pa.Table]) -> str:
    sandbox.load(pg_url, library)
    return "test_pg"


@pytest.fixture
def acme_mariadb(mariadb_url: str, env: pytest.MonkeyPatch, library: dict[str, pa.Table]) -> str:
    sandbox.load(mariadb_url, {k: v for k, v in library.items() if k == "ORDLIN"})
    return "test_mariadb"


def spec_for(conn_id: str, name: str, target: str = "sqlite", **options: Any) -> Any:
    return pipeline(
        [
            {
                "name": name,
                "source": {"kind": "ibmi", "conn_id": conn_id, "options": {"batch_size": 1000, **options}},
                "target": {"kind": target, "conn_id": "test_pg" if target == "postgres" else "w", "table": name},
            }
        ]
    )


def staged(spec: Any, window: Window) -> pa.Table:
    ds = spec.datasets[0]
    part = stages.partition_for(spec, ds, window)
    manifest = read_manifest(part, "extract")
    return pa.Table.from_batches(list(iter_batches(part, manifest)), schema=manifest.read_schema())


def digest(table: pa.Table, key: str) -> str:
    rows = table.sort_by(key).to_pylist()
    return hashlib.sha256(repr([tuple(r.values()) for r in rows]).encode()).hexdigest()


def ctx(window: Window = Window(), run: str = "r1") -> stages.RunContext:
    return stages.RunContext(run_id=run, window=window, try_number=1)


@pytest.mark.parametrize("split", ["minmax", "quantiles"])
def test_chunked_extract_equals_the_full_extract(acme_pg: str, split: str, library: dict[str, pa.Table]) -> None:
    full = spec_for(acme_pg, "full", file="ACMELIB/ORDLIN", columns=ORDLIN_COLUMNS)
    stages.extract_all(full, full.datasets[0], ctx())
    chunked = spec_for(
        acme_pg,
        "chunked",
        file="ACMELIB/ORDLIN",
        columns=ORDLIN_COLUMNS,
        chunking={"key": "LINSEQ", "chunks": 5, "split": split},
    )
    manifest = stages.extract_all(chunked, chunked.datasets[0], ctx())
    assert manifest.extra["chunks"] == 5
    assert manifest.rows == manifest.source_count == LINES
    assert min(manifest.extra["chunk_rows"]) > 0
    a, b = staged(full, Window()), staged(chunked, Window())
    assert digest(a, "LINSEQ") == digest(b, "LINSEQ")
    # and both match the generated library, converted independently here
    src = library["ORDLIN"].sort_by("LINSEQ")
    assert a.sort_by("LINSEQ")["AMOUNT"].to_pylist() == src["AMOUNT"].to_pylist()
    assert a.sort_by("LINSEQ")["DLVDAT"].to_pylist() == [_cyymmdd(v) for v in src["DLVDAT"].to_pylist()]


def test_chunk_size_decides_the_number_of_chunks(acme_pg: str) -> None:
    spec = spec_for(acme_pg, "sized", file="ACMELIB/ORDLIN", chunking={"key": "LINSEQ", "chunk_size": 2_000})
    chunks = stages.plan_extract(spec, spec.datasets[0], ctx())
    assert [(c["lo"], c["hi"]) for c in chunks] == [(None, 2001), (2001, 4001), (4001, None)]


def test_chunked_on_mariadb(acme_mariadb: str) -> None:
    full = spec_for(acme_mariadb, "full", file="ACMELIB/ORDLIN", columns=ORDLIN_COLUMNS)
    stages.extract_all(full, full.datasets[0], ctx())
    chunked = spec_for(
        acme_mariadb, "chunked", file="ACMELIB/ORDLIN", columns=ORDLIN_COLUMNS, chunking={"key": "LINSEQ", "chunks": 3}
    )
    manifest = stages.extract_all(chunked, chunked.datasets[0], ctx())
    assert manifest.rows == LINES
    assert digest(staged(full, Window()), "LINSEQ") == digest(staged(chunked, Window()), "LINSEQ")


def _cyymmdd(v: Decimal | int) -> dt.date | None:
    v = int(v)
    return None if v in (0, 9_999_999) else dt.date(1900 + v // 10_000, v // 100 % 100, v % 100)


def _changed(row: dict[str, Any]) -> dt.datetime:
    d, t = _cyymmdd(row["CHGDAT"]), int(row["CHGTIM"])
    assert d is not None
    return dt.datetime(d.year, d.month, d.day, t // 10_000, t // 100 % 100, t % 100, tzinfo=UTC)


def test_incremental_windows_across_midnight_partition_the_changes(acme_pg: str, library: dict[str, pa.Table]) -> None:
    edges = [dt.datetime(2025, 12, 31, 6, tzinfo=UTC) + dt.timedelta(hours=12 * i) for i in range(4)]
    rows = library["ORDHDR"].to_pylist()
    seen: list[int] = []
    for i, (start, end) in enumerate(itertools.pairwise(edges)):
        window = Window(start, end)
        options: dict[str, Any] = {
            "file": "ACMELIB.ORDHDR",
            "columns": ORDHDR_COLUMNS,
            "incremental": {"date": "CHGDAT", "time": "CHGTIM"},
        }
        if i == 1:  # the middle window also in chunks: window and key ranges combine
            options["chunking"] = {"key": "ORDNUM", "chunks": 3}
        spec = spec_for(acme_pg, "changes", **options)
        manifest = stages.extract_all(spec, spec.datasets[0], ctx(window, f"run{i}"))
        expected = sorted(int(r["ORDNUM"]) for r in rows if start <= _changed(r) < end)
        got = sorted(int(v) for v in staged(spec, window)["ORDNUM"].to_pylist())
        assert expected and got == expected
        assert manifest.source_count == len(expected)
        seen += got
    assert len(seen) == len(set(seen))


def test_member_across_the_century(acme_pg: str, library: dict[str, pa.Table]) -> None:
    window = Window(dt.datetime(1999, 11, 20, 12, tzinfo=UTC), dt.datetime(2000, 2, 10, 12, tzinfo=UTC))
    spec = spec_for(
        acme_pg,
        "archive",
        file="ACMELIB/ORDHDR(ARCHIVE)",
        columns=ORDHDR_COLUMNS,
        incremental={"date": "CHGDAT", "time": "CHGTIM"},
    )
    stages.extract_all(spec, spec.datasets[0], ctx(window))
    rows = library["ORDHDR__ARCHIVE"].to_pylist()
    expected = {int(r["ORDNUM"]): _cyymmdd(r["ORDDAT"]) for r in rows if window.start <= _changed(r) < window.end}
    table = staged(spec, window)
    got = dict(zip((int(v) for v in table["ORDNUM"].to_pylist()), table["ORDDAT"].to_pylist(), strict=True))
    assert got == expected
    assert {d.year for d in got.values()} == {1999, 2000}


def test_column_text_becomes_postgres_column_comments(acme_pg: str, pg_url: str) -> None:
    spec = spec_for(acme_pg, "orders", target="postgres", file="ACMELIB/ORDHDR", columns=ORDHDR_COLUMNS)
    ds = spec.datasets[0]
    stages.extract_all(spec, ds, ctx())
    stages.transform(spec, ds, ctx())
    result = stages.load(spec, ds, ctx())
    assert result.inserted == LINES // 4
    with sa.create_engine(pg_url).connect() as conn:
        comments = dict(
            conn.exec_driver_sql(
                "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                "WHERE a.attrelid = 'public.orders'::regclass AND a.attnum > 0"
            ).fetchall()
        )
        types = dict(
            conn.exec_driver_sql(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'"
            ).fetchall()
        )
    assert comments["ORDTOT"] == "Order total (packed)"
    assert comments["ORDDAT"] == "Order date CYYMMDD"
    assert comments["ORDNOTE"] == "Note, CCSID 65535 (EBCDIC 37)"
    assert comments["_bulksync_run_id"] is None
    assert types["ORDDAT"] == "date" and types["ORDTOT"] == "numeric" and types["ORDNOTE"] == "text"
