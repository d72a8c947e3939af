"""A corpus of malformed file drops, generated on the fly into a landing folder.

Every case writes the same two good CSV files (``good_1.csv``, ``good_2.csv``) plus what makes it
malformed, and says what must happen to each file: ``(ledger status, reason code)`` and a fragment
the reason message must hold (line, column, value …). Files not listed in ``expect`` must not
reach the ledger (e.g. a file still being written stays in the landing folder).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import sqlite3
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bulksync import stages
from bulksync.staging.partition import Window
from tests.helpers import DAY, pipeline

COLUMNS = [
    {"name": "id", "type": "int64", "nullable": False},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": "decimal(9,2)"},
]
GOOD = {
    "good_1.csv": [(1, "Anna", "10.50"), (2, "Bob", "-3.00")],
    "good_2.csv": [(3, "Chloé", "0.01"), (4, "Dan, Jr.", "12345.67")],
}
OLD = time.time() - 3600  # arrived an hour ago: stable under every arrival rule


def csv_text(rows: list[tuple[Any, ...]], header: bool = True, trailer: str | None = None) -> str:
    """CSV of ``(id, name, amount)`` rows with RFC 4180 quoting."""

    def q(v: Any) -> str:
        s = str(v)
        return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s

    lines = (["id,name,amount"] if header else []) + [",".join(q(v) for v in r) for r in rows]
    if trailer is not None:
        lines.append(trailer)
    return "\n".join(lines) + "\n"


def good_rows(*names: str) -> list[dict[str, Any]]:
    """The rows the good files load, as the target returns them."""
    return [{"id": i, "name": n, "amount": Decimal(a)} for name in names or tuple(GOOD) for i, n, a in GOOD[name]]


def write(path: Path, data: str | bytes, mtime: float = OLD) -> Path:
    """Write a file and date it."""
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.utime(path, (mtime, mtime), follow_symlinks=False)
    return path


def write_good(landing: Path, trailer: bool = False) -> None:
    """The two good files of every drop."""
    for name, rows in GOOD.items():
        write(landing / name, csv_text(rows, trailer=f"TRL{len(rows):06d}" if trailer else None))


@dataclass
class Case:
    """One malformed drop.

    Attributes:
        build: writes the bad part of the drop (``landing``, ``outside`` folder).
        expect: file name → (ledger status, reason code, message fragment).
        options: source option overrides.
        stays: files that must still be in the landing folder afterwards.
    """

    build: Callable[[Path, Path], None]
    expect: dict[str, tuple[str, str, str]]
    options: dict[str, Any] = field(default_factory=dict)
    stays: list[str] = field(default_factory=list)
    trailer: bool = False


def _bad(text: str | bytes, name: str = "bad.csv") -> Callable[[Path, Path], None]:
    def build(landing: Path, outside: Path) -> None:
        write(landing / name, text)

    return build


def _gzip_bomb(landing: Path, outside: Path) -> None:
    big = csv_text([(i, "x" * 50, "1.00") for i in range(40_000)])  # ~2.3 MB expanded
    write(landing / "bad.csv.gz", gzip.compress(big.encode()))


def _zip_two(landing: Path, outside: Path) -> None:
    path = landing / "bad.csv.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.csv", csv_text(GOOD["good_1.csv"]))
        z.writestr("b.csv", csv_text(GOOD["good_2.csv"]))
    os.utime(path, (OLD, OLD))


def _symlink_out(landing: Path, outside: Path) -> None:
    target = write(outside / "secret.csv", csv_text([(9, "secret", "1.00")]))
    (landing / "bad.csv").symlink_to(target)


def _directory(landing: Path, outside: Path) -> None:
    (landing / "bad.csv").mkdir()
    write(landing / "bad.csv" / "inner.csv", csv_text([(9, "x", "1.00")]))


def _fifo(landing: Path, outside: Path) -> None:
    os.mkfifo(landing / "bad.csv")


def _still_writing(landing: Path, outside: Path) -> None:
    write(landing / "late.csv", csv_text([(9, "half", "1.0")])[:20], mtime=time.time())


def _checksum(good: bool) -> Callable[[Path, Path], None]:
    def build(landing: Path, outside: Path) -> None:
        data = csv_text([(5, "Eve", "1.00")]).encode()
        write(landing / "bad.csv", data)
        digest = hashlib.sha256(data if good else data + b"x").hexdigest()
        write(landing / "bad.csv.sha256", f"{digest}  bad.csv\n")

    return build


def _control_file(extra: str) -> Callable[[Path, Path], None]:
    def build(landing: Path, outside: Path) -> None:
        write(landing / "bad.csv", csv_text([(5, "Eve", "1.00"), (6, "Fay", "2.00")]))
        write(outside / "outside.csv", csv_text([(9, "x", "1.00")]))
        write(landing / "drop.ctl", f"# drop of the night\ngood_1.csv|2\ngood_2.csv|2\n{extra}\n")

    return build


CONTROL = {"arrival": {"mode": "control_file", "control_pattern": "*.ctl"}, "pattern": "*.csv"}

CASES: dict[str, Case] = {
    "empty_file": Case(_bad(b""), {"bad.csv": ("quarantined", "empty_file", "0 bytes")}),
    "header_only_wrong": Case(
        _bad("id,nom,amount\n1,x,1.00\n"), {"bad.csv": ("quarantined", "header_mismatch", "missing ['name']")}
    ),
    "unbalanced_quote": Case(
        _bad('id,name,amount\n5,"Eve,1.00\n6,Fay,2.00\n'),
        {"bad.csv": ("quarantined", "unbalanced_quote", "bad.csv, line 2")},
    ),
    "unbalanced_quote_swallowing_the_end": Case(
        # with a text column last, pyarrow reads '2.00\n7,Gus,3.00\n' as one value without complaint
        _bad('id,name,amount\n5,Eve,1.00\n6,Fay,"2.00\n7,Gus,3.00\n'),
        {"bad.csv": ("quarantined", "unbalanced_quote", "bad.csv, line 3: a quoted field starts here")},
        options={"columns": [*COLUMNS[:2], {"name": "amount", "type": "string"}]},
    ),
    "extra_column": Case(
        _bad("id,name,amount\n5,Eve,1.00\n6,Fay,2.00,oops\n"),
        {"bad.csv": ("quarantined", "column_count", "line 3: 4 fields but 3 columns")},
    ),
    "missing_column": Case(
        _bad("id,name,amount\n5,Eve\n"), {"bad.csv": ("quarantined", "column_count", "line 2: 2 fields but 3")}
    ),
    "value_not_a_number": Case(
        _bad("id,name,amount\n5,Eve,1.00\nsix,Fay,2.00\n"),
        {"bad.csv": ("quarantined", "bad_value", "line 3, column 'id': value 'six' is not a valid int64")},
    ),
    "value_too_big_for_decimal": Case(
        _bad("id,name,amount\n5,Eve,12345678.90\n"),
        {"bad.csv": ("quarantined", "bad_value", "column 'amount': value '12345678.90' is not a valid decimal(9,2)")},
    ),
    "value_too_big_for_int64": Case(
        _bad("id,name,amount\n99999999999999999999,Eve,1.00\n"),
        {"bad.csv": ("quarantined", "bad_value", "value '99999999999999999999' is not a valid int64")},
    ),
    "required_value_empty": Case(
        _bad("id,name,amount\n,Eve,1.00\n"),
        {"bad.csv": ("quarantined", "missing_value", "line 2, column 'id': empty value")},
    ),
    "binary_garbage": Case(
        _bad(b"id,name,amount\n" + bytes(range(256)) * 8),
        {"bad.csv": ("quarantined", "binary_content", "binary data (a NUL byte at offset")},
    ),
    "invalid_utf8": Case(
        _bad("id,name,amount\n5,Ren\xe9e,1.00\n".encode("cp1252")),
        {"bad.csv": ("quarantined", "encoding", "not utf-8 (invalid continuation byte")},
    ),
    "utf16_without_bom_declared_utf8": Case(
        _bad(csv_text([(5, "Eve", "1.00")]).encode("utf-16-le")),
        {"bad.csv": ("quarantined", "utf16_without_bom", "looks like UTF-16")},
    ),
    "still_being_written": Case(
        _still_writing, {}, options={"arrival": {"mode": "stable_size", "stable_seconds": 300}}, stays=["late.csv"]
    ),
    "checksum_mismatch": Case(
        _checksum(good=False), {"bad.csv": ("quarantined", "checksum_mismatch", "the file was damaged")}
    ),
    "checksum_required_missing": Case(
        _bad(csv_text([(5, "Eve", "1.00")])),
        {
            "bad.csv": ("quarantined", "checksum_missing", "no bad.csv.sha256"),
            "good_1.csv": ("quarantined", "checksum_missing", "no good_1.csv.sha256"),
            "good_2.csv": ("quarantined", "checksum_missing", "no good_2.csv.sha256"),
        },
        options={"checksum": "sha256"},
    ),
    "trailer_count_mismatch": Case(
        _bad(csv_text([(5, "Eve", "1.00"), (6, "Fay", "2.00")], trailer="TRL000003")),
        {"bad.csv": ("quarantined", "control_total_mismatch", "2 records read but its trailer record says 3")},
        options={"control_total": {"kind": "trailer"}},
        trailer=True,
    ),
    "trailer_missing": Case(
        _bad(csv_text([(5, "Eve", "1.00"), (6, "Fay", "2.00")])),
        {"bad.csv": ("quarantined", "trailer_missing", "is not a trailer record")},
        options={"control_total": {"kind": "trailer"}},
        trailer=True,
    ),
    "control_file_count_mismatch": Case(
        _control_file("bad.csv|3"),
        {"bad.csv": ("quarantined", "control_total_mismatch", "2 records read but the control file says 3")},
        options={**CONTROL, "control_total": {"kind": "control_file"}},
    ),
    "control_file_names_parent": Case(
        _control_file("../outside.csv|1"),
        {"../outside.csv": ("rejected", "unsafe_name", "climbs out of the landing zone")},
        options=CONTROL,
        stays=["bad.csv"],
    ),
    "symlink_outside_landing": Case(
        _symlink_out, {"bad.csv": ("quarantined", "symlink_outside_landing", "pointing outside the landing zone")}
    ),
    "directory_matching_pattern": Case(
        _directory, {"bad.csv": ("quarantined", "not_a_regular_file", "is a directory matching")}
    ),
    "fifo_matching_pattern": Case(_fifo, {"bad.csv": ("quarantined", "not_a_regular_file", "is a FIFO")}),
    "gzip_over_size_limit": Case(
        _gzip_bomb,
        {"bad.csv.gz": ("quarantined", "size_limit_exceeded", "expands to more than 1 MiB")},
        options={"max_uncompressed_mb": 1, "pattern": ["*.csv", "*.csv.gz"]},
    ),
    "zip_with_two_members": Case(
        _zip_two,
        {"bad.csv.zip": ("quarantined", "zip_members", "holds 2 (a.csv, b.csv)")},
        options={"pattern": ["*.csv", "*.csv.zip"]},
    ),
    "not_a_zip": Case(
        _bad(b"PK not really", "bad.csv.zip"),
        {"bad.csv.zip": ("quarantined", "bad_archive", "not a valid zip")},
        options={"pattern": ["*.csv", "*.csv.zip"]},
    ),
    "utf16_without_bom_declared_utf16": Case(
        _bad(csv_text([(5, "Eve", "1.00")]).encode("utf-16-le")),
        {
            "bad.csv": ("quarantined", "utf16_without_bom", "no byte order mark"),
            # the good files are UTF-8, so under utf-16 they are refused as well (no BOM)
            "good_1.csv": ("quarantined", "utf16_without_bom", "no byte order mark"),
            "good_2.csv": ("quarantined", "utf16_without_bom", "no byte order mark"),
        },
        options={"encoding": "utf-16"},
    ),
}


# -- running a drop through the real stages -------------------------------------------------------------

NEXT_DAY = Window(DAY.end, DAY.end + dt.timedelta(days=1))  # type: ignore[operator]


def drop_spec(landing: Path, **options: Any) -> Any:
    """A pipeline with one file_drop dataset loading ``drops`` into the SQLite warehouse."""
    opts = {
        "landing": str(landing),
        "pattern": "*.csv",
        "arrival": {"mode": "immediate"},
        "columns": COLUMNS,
        **options,
    }
    return pipeline(
        [
            {
                "name": "drops",
                "source": {"kind": "file_drop", "options": opts},
                "target": {"kind": "sqlite", "conn_id": "test_sqlite", "table": "drops", "mode": "append"},
            }
        ]
    )


def run(spec: Any, window: Window = DAY, run_id: str = "run-1") -> Any:
    """Extract, transform and load the dataset for a window."""
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=window, try_number=1)
    manifest = stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    stages.load(spec, ds, ctx)
    return manifest


def loaded(db: Path) -> list[dict[str, Any]]:
    """Rows of the warehouse table (without bulksync's load columns), ordered by id."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT id, name, amount FROM drops ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()
    return [{"id": i, "name": n, "amount": Decimal(str(a)).quantize(Decimal("0.01"))} for i, n, a in rows]


def ledger(db: Path) -> list[tuple[Any, ...]]:
    """(file name, status, reason, rows, location) of every ledger row, in insertion order."""
    return sqlite_rows(
        db, "SELECT file_name, status, reason, rows, location, size, sha256 FROM bulksync_files ORDER BY id"
    )


def sqlite_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one SQL query on the SQLite warehouse."""
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def query(pg_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one SQL query, as tuples."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(sql))]
    finally:
        engine.dispose()
