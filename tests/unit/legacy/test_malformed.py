"""The copybook-related malformed inputs of the bad-input corpus: each fails with a specific, named error.

Structural problems raise a ``DataError`` subclass naming the file, the record number and the byte offset;
invalid values name the record, the field and the raw bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from bulksync.errors import DataError, SpecError
from bulksync.legacy.encode import encode_file
from bulksync.legacy.errors import (
    CodePageError,
    InvalidRdwError,
    RdwPastEofError,
    RecordLengthMismatchError,
    TruncatedRecordError,
)
from bulksync.legacy.plan import compile_plan
from bulksync.legacy.reader import CopybookOptions, load_layout, read_records
from tests.unit.legacy import gen

COPYBOOKS = Path(__file__).resolve().parents[3] / "include" / "copybooks"


def options(name: str, **kw: Any) -> CopybookOptions:
    return CopybookOptions(copybook=str(COPYBOOKS / name), **kw)


def encoded(o: CopybookOptions, rows: list[dict[str, Any]]) -> bytes:
    return encode_file(compile_plan(load_layout(o), o), rows)


class Unseekable(io.RawIOBase):
    """A pipe-like stream: no size known in advance."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self.inner.readinto(b)

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("not seekable")


def drain(stream: Any, o: CopybookOptions, name: str = "cust.dat") -> list[dict[str, Any]]:
    return [r for b in read_records(stream, o, name=name) for r in b.batch.to_pylist()]


def test_truncated_last_record_fails_before_any_record() -> None:
    o = options("custmast.cpy")
    data = encoded(o, gen.customer_rows(30))[:-60]
    with pytest.raises(TruncatedRecordError) as err:
        drain(io.BytesIO(data), o)
    e = err.value
    assert (e.file, e.record, e.offset, e.reason) == ("cust.dat", 30, 5800, "truncated_record")
    assert "cust.dat: record 30 at byte 5800: the last record has only 140 of 200 bytes" in str(e)
    assert "ask the sender for the file again" in str(e)
    assert isinstance(e, DataError) and e.terminal


def test_truncated_last_record_of_a_stream_fails_at_the_end() -> None:
    o = options("custmast.cpy", block_records=8)
    data = encoded(o, gen.customer_rows(30))[:-60]
    seen: list[int] = []
    with pytest.raises(TruncatedRecordError, match="record 30 at byte 5800: the last record has only 140 of 200"):
        for block in read_records(Unseekable(data), o, name="cust.dat"):  # type: ignore[arg-type]
            seen.append(block.records)
    assert sum(seen) == 29


def test_record_length_not_dividing_the_file_line_breaks() -> None:
    o = options("custmast.cpy")
    records = encoded(o, gen.customer_rows(30))
    data = b"".join(records[i : i + 200] + b"\r\n" for i in range(0, len(records), 200))
    data += records[:10]
    with pytest.raises(RecordLengthMismatchError) as err:
        drain(io.BytesIO(data), o)
    msg = str(err.value)
    assert "is not a multiple of the 200-byte record length of custmast.cpy" in msg
    assert "the record length is 202?" in msg
    assert err.value.reason == "length_mismatch"


def test_variable_file_read_as_fixed_suggests_rdw() -> None:
    o_rdw = options("orders.cpy", record_format="rdw")
    data = encoded(o_rdw, gen.order_rows(7))
    o_fixed = options("orders.cpy")
    with pytest.raises(RecordLengthMismatchError, match="starts like a variable-length file with RDWs"):
        drain(io.BytesIO(data), o_fixed, "orders.dat")


def test_rdw_longer_than_the_file() -> None:
    o = options("orders.cpy", record_format="rdw")
    data = encoded(o, gen.order_rows(10))
    cut = data[:-25]
    with pytest.raises(RdwPastEofError) as err:
        drain(io.BytesIO(cut), o, "orders.dat")
    e = err.value
    assert (e.file, e.record, e.reason) == ("orders.dat", 10, "rdw_past_eof")
    last_len = int.from_bytes(cut[e.offset : e.offset + 2], "big")
    assert f"the record header says {last_len} bytes but only {last_len - 25} remain" in str(e)


def test_rdw_with_garbage_reserved_bytes() -> None:
    o = options("orders.cpy", record_format="rdw")
    data = bytearray(encoded(o, gen.order_rows(3)))
    second = int.from_bytes(data[:2], "big")
    data[second + 2] = 0x40
    with pytest.raises(
        InvalidRdwError, match=f"record 2 at byte {second}: RDW x'.*' has non-zero bytes where bytes 2-3 should be zero"
    ):
        drain(io.BytesIO(bytes(data)), o, "orders.dat")


def test_bad_packed_nibble_names_record_field_and_bytes() -> None:
    o = options("custmast.cpy")
    data = bytearray(encoded(o, gen.customer_rows(10)))
    data[6 * 200 + 103] = 0x4A  # CUST-BALANCE of record 7
    block = next(read_records(io.BytesIO(bytes(data)), o, name="cust.dat"))
    assert [(e.record, e.offset, e.field, e.reason) for e in block.errors] == [
        (7, 1200, "cust_balance", "bad packed nibble")
    ]
    assert block.errors[0].raw == data[1301:1307].hex().upper()
    assert block.batch.column("cust_balance")[6].as_py() is None


def test_bad_zoned_sign_names_record_and_field() -> None:
    o = options("custmast.cpy", strict=True)
    data = bytearray(encoded(o, gen.customer_rows(10)))
    data[3 * 200 + 119] = 0x7A  # last byte of CUST-DISCOUNT-PCT of record 4
    block = next(read_records(io.BytesIO(bytes(data)), o, name="cust.dat"))
    assert block.rejected is not None
    assert block.rejected.to_pylist()[0]["_reason"] == "cust_discount_pct: bad zoned sign"
    assert block.batch.num_rows == 9


@pytest.mark.parametrize(("written", "declared", "guess"), [("ascii", "cp037", "ascii"), ("cp037", "ascii", "cp037")])
def test_wrong_code_page(written: str, declared: str, guess: str) -> None:
    rows = [{k: v.encode("ascii", "replace").decode() if isinstance(v, str) else v for k, v in r.items()}
            for r in gen.customer_rows(20)]  # fmt: skip
    data = encoded(options("custmast.cpy", code_page=written), rows)
    with pytest.raises(CodePageError) as err:
        drain(io.BytesIO(data), options("custmast.cpy", code_page=declared))
    msg = str(err.value)
    assert msg.startswith("cust.dat: ")
    assert f"unprintable in code page {declared}" in msg
    assert f"the text reads best as {guess}" in msg
    assert err.value.reason == "wrong_code_page"


def test_copybook_syntax_error_through_the_reader(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cpy"
    bad.write_text("       01  REC.\n           05  A  PIC X(3)\n           05  B  PIC 9.\n")
    o = CopybookOptions(copybook=str(bad))
    with pytest.raises(SpecError, match=r"bad.cpy: line 3: unexpected '05' in the entry of A \(is the previous entry"):
        drain(io.BytesIO(b""), o)


def test_odo_count_out_of_range_is_a_record_error() -> None:
    o = options("orders.cpy", record_format="rdw", redefines={"ORD-PAYMENT": "ORD-CARD"})
    rows = gen.order_rows(4)
    data = bytearray(encoded(o, rows))
    data[4 + 87 : 4 + 89] = (99).to_bytes(2, "big")  # ORD-ITEM-COUNT of record 1 (RDW + offset 87)
    block = next(read_records(io.BytesIO(bytes(data)), o, name="orders.dat"))
    assert [(e.record, e.offset, e.field, e.field_offset, e.raw, e.reason) for e in block.errors] == [
        (1, 0, "ord_item_count", 87, "0063", "the OCCURS DEPENDING ON counter ORD-ITEM-COUNT = 99 is outside 1..20 "
         "(table ORD-ITEMS): the fields after it cannot be located")
    ]  # fmt: skip
    assert block.batch.to_pylist()[0]["ord_no"] is None
    assert block.batch.to_pylist()[1]["ord_no"] == rows[1]["ord_no"]


def test_unknown_segment_value_is_a_record_error() -> None:
    seg = {"field": "BH-REC-TYPE", "when": {"H": "BANK-HEADER", "D": "BANK-DETAIL", "T": "BANK-TRAILER"}}
    o = options("bankfile.cpy", segments=seg)
    data = bytearray(encoded(o, gen.bank_rows(3)))
    data[2 * 80] = "X".encode("cp037")[0]
    block = next(read_records(io.BytesIO(bytes(data)), o, name="bank.dat"))
    assert [(e.record, e.offset, e.reason) for e in block.errors] == [
        (3, 160, "BH-REC-TYPE has a value not listed in segments.when")
    ]
    assert block.batch.to_pylist()[2] == dict.fromkeys(block.batch.schema.names)


def test_header_longer_than_the_file() -> None:
    with pytest.raises(TruncatedRecordError, match="fewer than the 100 header bytes"):
        drain(io.BytesIO(b"x" * 40), options("custmast.cpy", header_bytes=100))
