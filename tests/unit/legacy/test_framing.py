"""Record framing: RDW variants, VB blocks (BDW), records without delimiter, header and trailer records.

Files are built by hand from IBM's documented formats (z/OS DFSMS "Using Data Sets": an RDW is a 2-byte
big-endian length that counts the RDW, then two zero bytes; a BDW the same for a block; an extended BDW sets
the top bit and holds a 31-bit length).
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from bulksync.legacy.errors import InvalidRdwError, OdoCounterError, RdwPastEofError
from tests.unit.legacy.conftest import Decode, copybook

REC = copybook("T PIC X", "N PIC 9(3)", "NAME PIC X(4)")  # 8 bytes


def e(text: str) -> bytes:
    return text.encode("cp037")


RECORDS = [e("D001ANNA"), e("D002BOB "), e("D003CARL")]
ROWS = [{"t": "D", "n": 1, "name": "ANNA"}, {"t": "D", "n": 2, "name": "BOB"}, {"t": "D", "n": 3, "name": "CARL"}]


def rdw(body: bytes, at: int = 0, order: str = "big", include: bool = True) -> bytes:
    n = (len(body) + (4 if include else 0)).to_bytes(2, order)  # type: ignore[arg-type]
    return (n + b"\0\0" if at == 0 else b"\0\0" + n) + body


@pytest.mark.parametrize(
    ("kw", "frame"),
    [
        ({}, {}),
        ({"rdw_includes_header": False}, {"include": False}),
        ({"rdw_byte_order": "little"}, {"order": "little"}),
        ({"rdw_length_at": 2}, {"at": 2}),
        ({"rdw_length_at": 2, "rdw_byte_order": "little", "rdw_includes_header": False},
         {"at": 2, "order": "little", "include": False}),
    ],
    ids=["ibm", "excludes_header", "little_endian", "length_at_2", "all_three"],
)  # fmt: skip
def test_rdw_variants(decode: Decode, kw: dict[str, Any], frame: dict[str, Any]) -> None:
    rows, blocks = decode(REC, b"".join(rdw(r, **frame) for r in RECORDS), record_format="rdw", **kw)
    assert rows == ROWS and blocks[0].error_count == 0


def test_rdw_length_at_the_wrong_end_says_which_option(decode: Decode) -> None:
    with pytest.raises(InvalidRdwError, match=r"record 1 at byte 0: .*bytes 2-3 should be zero.*rdw_length_at"):
        decode(REC, b"".join(rdw(r, at=2) for r in RECORDS), record_format="rdw")


def bdw(records: list[bytes], extended: bool = False) -> bytes:
    body = b"".join(records)
    n = len(body) + 4
    head = (n | 0x80000000).to_bytes(4, "big") if extended else n.to_bytes(2, "big") + b"\0\0"
    return head + body


def test_vb_blocks_with_plain_and_extended_bdws(decode: Decode) -> None:
    framed = [rdw(r) for r in RECORDS]
    data = bdw(framed[:2]) + bdw(framed[2:], extended=True) + bdw([])
    rows, blocks = decode(REC, data, record_format="vb", block_records=2)
    assert rows == ROWS
    assert [int(o) for b in blocks for o in b.batch.num_rows * [0]] == [0, 0, 0]
    assert [x for b in blocks for x in b.errors] == []


def test_vb_record_crossing_its_block_is_refused(decode: Decode) -> None:
    framed = [rdw(r) for r in RECORDS]
    bad = (len(framed[0]) + 4 + 3).to_bytes(2, "big") + b"\0\0" + framed[0] + framed[1]  # BDW 3 bytes into rec 2
    with pytest.raises(InvalidRdwError, match=r"record 2 at byte 16: the record \(12 bytes\) runs past the end of its"):
        decode(REC, bad, record_format="vb")


def test_vb_block_past_the_end_of_the_file(decode: Decode) -> None:
    data = bdw([rdw(r) for r in RECORDS])[:-5]
    with pytest.raises(RdwPastEofError, match=r"record 3 at byte 28: the record header says 12 bytes but only 7"):
        decode(REC, data, record_format="vb")


def test_rdw_file_read_as_vb_says_so(decode: Decode) -> None:
    data = b"".join(rdw(r) for r in RECORDS)
    data = data[:2] + b"\x01\x00" + data[4:]
    with pytest.raises(InvalidRdwError, match=r"BDW x'000C0100' has non-zero reserved bytes.*record_format: rdw"):
        decode(REC, data, record_format="vb")


def test_header_and_trailer_records_by_count(decode: Decode) -> None:
    header, trailer = e("H2025XXX"), e("T003XXXX")
    for fmt, data in [("fixed", header + b"".join(RECORDS) + trailer),
                      ("rdw", b"".join(rdw(r) for r in [header, *RECORDS, trailer]))]:  # fmt: skip
        for block_records in (1, 2, 10):
            rows, blocks = decode(REC, data, record_format=fmt, header_records=1, trailer_records=1,
                                  block_records=block_records)  # fmt: skip
            assert rows == ROWS, (fmt, block_records)
            numbers = [x.record for b in blocks for x in b.errors]
            assert numbers == []


def test_record_numbers_count_the_skipped_records(decode: Decode) -> None:
    bad = e("D00") + b"\x00\x00\x00\x00\x00"  # N = x'F0F000': a bad zoned digit in record 3 of the file
    data = e("H2025XXX") + RECORDS[0] + bad + e("T003XXXX")
    _rows, blocks = decode(REC, data, header_records=1, trailer_records=1, block_records=1)
    errors = [x for b in blocks for x in b.errors]
    assert [(x.record, x.offset, x.field) for x in errors] == [(3, 16, "n")]


def test_skip_records_by_field_value(decode: Decode) -> None:
    data = b"".join(rdw(r) for r in [e("H20251201"), *RECORDS, e("T3")])  # header and trailer of other lengths
    rows, blocks = decode(REC, data, record_format="rdw", skip_records={"field": "T", "values": ["H", "T"]},
                          strict=True)  # fmt: skip
    assert rows == ROWS
    assert sum(b.skipped for b in blocks) == 2 and [x for b in blocks for x in b.errors] == []


ODO = copybook("N PIC 9", "T OCCURS 0 TO 3 TIMES DEPENDING ON N PIC X(2)")


def test_odo_framing_counter_out_of_range_stops_the_file(decode: Decode) -> None:
    with pytest.raises(OdoCounterError, match=r"record 3 at byte 8: the OCCURS DEPENDING ON counter N \(byte 0 of the "
                                              r"record\) = 7 is outside 0..3"):  # fmt: skip
        decode(ODO, e("1aa") + e("2aabb") + e("7aa"), record_format="odo")


def test_odo_framing_counter_not_a_number(decode: Decode) -> None:
    with pytest.raises(OdoCounterError, match=r"record 2 at byte 3: .*N \(byte 0 of the record\) holds x'61', not a"):
        decode(ODO, e("1aa") + e("/aa"), record_format="odo")


def test_odo_framing_record_cut_short(decode: Decode) -> None:
    with pytest.raises(RdwPastEofError, match=r"record 2 at byte 3: the record header says 7 bytes but only 4 remain"):
        decode(ODO, e("1aa") + e("3aab"), record_format="odo")


def test_header_bytes_still_work_with_vb(decode: Decode) -> None:
    data = b"HEADER" + bdw([rdw(r) for r in RECORDS]) + b"TRL"
    rows, _ = decode(REC, data, record_format="vb", header_bytes=6, trailer_bytes=3)
    assert rows == ROWS


def test_stream_reader_sees_no_difference(decode: Decode) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            return self.inner.readinto(memoryview(b)[:3])  # short reads

    from bulksync.legacy.reader import CopybookOptions, read_records

    data = e("1aa") + e("0") + e("3aabbcc")
    o_rows = None
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "o.cpy"
        p.write_text(ODO)
        o = CopybookOptions(copybook=str(p), record_format="odo")
        o_rows = [r for b in read_records(Pipe(data), o, name="p") for r in b.batch.to_pylist()]  # type: ignore[arg-type]
    assert [r["n"] for r in o_rows] == [1, 0, 3]
