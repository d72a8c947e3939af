"""Byte streams and small parsers under the file drop: trailer hold-back, size limit, spool, names, control files."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pyarrow as pa
import pytest

from bulksync.errors import FileRejectedError
from bulksync.sources.file_drop.landing import parse_control_file
from bulksync.sources.file_drop.store import LocalLandingStore, unsafe_name
from bulksync.sources.file_drop.streams import (
    HashingReader,
    Spool,
    TrailerHolder,
    check_text,
    decompressed,
    parse_trailer,
    unclosed_quote_line,
)


@pytest.mark.parametrize("read_size", [1, 3, 7, 64, 1 << 16])
@pytest.mark.parametrize(
    ("data", "body", "trailer"),
    [
        (b"a,1\nb,2\nTRL2\n", b"a,1\nb,2\n", b"TRL2"),
        (b"a,1\nb,2\nTRL2", b"a,1\nb,2\n", b"TRL2"),
        (b"a,1\r\nTRL1\r\n", b"a,1\r\n", b"TRL1"),
        (b"TRL0\n", b"", b"TRL0"),
        (b"", b"", b""),
    ],
)
def test_trailer_holder_passes_all_but_the_last_line(data: bytes, body: bytes, trailer: bytes, read_size: int) -> None:
    holder = TrailerHolder(io.BytesIO(data))
    out = b""
    while chunk := holder.read(read_size):
        out += chunk
    assert (out, holder.trailer) == (body, trailer)


def test_parse_trailer() -> None:
    assert parse_trailer(b"TRL000123", r"^TRL(\d+)", "f.csv") == 123
    with pytest.raises(FileRejectedError, match=r"f.csv: the last line '9,x' is not a trailer record") as exc:
        parse_trailer(b"9,x", r"^TRL(\d+)", "f.csv")
    assert exc.value.reason == "trailer_missing"


def test_gzip_size_limit_stops_reading() -> None:
    data = gzip.compress(b"x" * (3 << 20))
    stream = decompressed(io.BytesIO(data), "gzip", 1 << 20, "big.csv.gz")
    with pytest.raises(FileRejectedError, match=r"big.csv.gz: expands to more than 1 MiB") as exc:
        while stream.read(1 << 16):
            pass
    assert exc.value.reason == "size_limit_exceeded"


def test_hashing_reader_counts_and_hashes() -> None:
    import hashlib

    h = HashingReader(io.BytesIO(b"hello world"))
    assert io.BufferedReader(h).read() == b"hello world"
    assert (h.bytes, h.eof, h.hexdigest()) == (11, True, hashlib.sha256(b"hello world").hexdigest())


@pytest.mark.parametrize(
    ("head", "encoding", "reason"),
    [
        (b"", "utf-8", "empty_file"),
        ("id,name\n1,x\n".encode("utf-16-le"), "utf-16", "utf16_without_bom"),
        ("id,name\n1,x\n".encode("utf-16-le"), "utf-8", "utf16_without_bom"),
        (b"id,name\n\x00\x17\xff\x01\x02binary", "utf-8", "binary_content"),
    ],
)
def test_check_text_refuses(head: bytes, encoding: str, reason: str) -> None:
    with pytest.raises(FileRejectedError) as exc:
        check_text(head, encoding, "f.csv")
    assert exc.value.reason == reason


def test_check_text_accepts_text_and_utf16_with_bom() -> None:
    check_text(b"id,name\n1,x\n", "utf-8", "f.csv")
    check_text("id\n1\n".encode("utf-16"), "utf-16", "f.csv")
    check_text("id\n1\n".encode("utf-16-be"), "utf-16-be", "f.csv")


def test_spool_spills_to_disk_and_gives_batches_back_in_order() -> None:
    batches = [pa.record_batch({"i": list(range(n * 1000, n * 1000 + 1000))}) for n in range(20)]
    spool = Spool(memory_bytes=20_000)
    for b in batches:
        spool.add(b)
    assert spool._writer is not None  # spilled
    got = pa.Table.from_batches(list(spool.drain()))
    assert got.column("i").to_pylist() == list(range(20_000)) and spool.rows == 20_000
    assert spool._dir is None  # the temporary file is gone


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../x.csv", "climbs out"),
        ("a/../../x", "climbs out"),
        ("/etc/passwd", "absolute"),
        ("a\\b", "backslash"),
        ("", "empty"),
        ("ok.csv", None),
        ("sub/ok.csv", None),
    ],
)
def test_unsafe_names(name: str, problem: str | None) -> None:
    got = unsafe_name(name)
    assert (got is None) if problem is None else (problem in (got or ""))


def test_local_store_refuses_escaping_names_and_claims_once(tmp_path: Path) -> None:
    store = LocalLandingStore(tmp_path)
    (tmp_path / "a.csv").write_text("x")
    with pytest.raises(ValueError, match="climbs out"):
        store.open("../a.csv")
    assert store.claim("a.csv", "processing/k/a.csv") is True
    assert store.claim("a.csv", "processing/j/a.csv") is False
    os.symlink("/etc/hostname", tmp_path / "link.csv")
    entry = store.stat("link.csv")
    assert entry is not None and (entry.kind, entry.inside) == ("symlink", False)


def test_control_file_lines() -> None:
    text = "# header\n\na.csv|10\nb.csv, 3\nc.csv\n  d.csv 7  \n../e.csv;1\n"
    assert parse_control_file(text) == [("a.csv", 10), ("b.csv", 3), ("c.csv", None), ("d.csv", 7), ("../e.csv", 1)]


def test_unclosed_quote_line() -> None:
    assert unclosed_quote_line(io.StringIO('a,b\n1,"x\n2,y\n'), ",", '"', True) == 2
    assert unclosed_quote_line(io.StringIO('a,b\n1,"x\n"\n2,y\n'), ",", '"', True) is None
