"""Record framing: split a binary stream into blocks of records (``uint8[records, width]``).

Formats: fixed length; variable with a 4-byte RDW (IBM standard: big-endian length including the header,
two reserved zero bytes; little-endian and length-excludes-header variants); a length read from a field
of each record. Header and trailer bytes are skipped. Blocks stream: memory is bounded by the block
size whatever the file size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np

from bulksync.legacy.errors import InvalidRdwError, RdwPastEofError, RecordFormatError, TruncatedRecordError

log = logging.getLogger(__name__)
_READ = 8 << 20


@dataclass
class RawBlock:
    """A block of records.

    Attributes:
        data: the records, one per row, zero padded to the widest layout (``uint8[n, width]``).
        lengths: each record's own length (variable formats), ``None`` for fixed records.
        first: 1-based number of the first record in the file.
        offsets: byte offset of each record (of its RDW for RDW files) in the file.
        numbers: 1-based record number of each row when records were left out (else ``first`` + row).
    """

    data: np.ndarray
    lengths: np.ndarray | None
    first: int
    offsets: np.ndarray
    numbers: np.ndarray | None = None

    def record_numbers(self) -> np.ndarray:
        """1-based number in the file of each row."""
        if self.numbers is not None:
            return self.numbers
        return self.first + np.arange(len(self.data), dtype=np.int64)

    def subset(self, keep: np.ndarray | slice) -> RawBlock:
        """The rows ``keep`` (a mask, indices or a slice), keeping their record numbers."""
        numbers = self.record_numbers()[keep]
        return RawBlock(
            self.data[keep],
            None if self.lengths is None else self.lengths[keep],
            int(numbers[0]) if len(numbers) else self.first,
            self.offsets[keep],
            numbers,
        )


def skip_records(blocks: Iterator[RawBlock], head: int, tail: int) -> Iterator[RawBlock]:
    """Leave out the first ``head`` and the last ``tail`` records of a stream of blocks."""
    held: RawBlock | None = None
    for block in blocks:
        if head:
            drop = min(head, len(block.data))
            head -= drop
            block = block.subset(slice(drop, None))
        if held is not None and len(held.data):
            block = RawBlock(
                np.concatenate([held.data, block.data])
                if block.data.shape[1] == held.data.shape[1]
                else np.concatenate([_widen(held.data, block.data.shape[1]), _widen(block.data, held.data.shape[1])]),
                None
                if block.lengths is None or held.lengths is None
                else np.concatenate([held.lengths, block.lengths]),
                held.first,
                np.concatenate([held.offsets, block.offsets]),
                np.concatenate([held.record_numbers(), block.record_numbers()]),
            )
        if not tail:
            if len(block.data):
                yield block
            continue
        cut = max(len(block.data) - tail, 0)
        held = block.subset(slice(cut, None))
        held = RawBlock(held.data.copy(), held.lengths, held.first, held.offsets, held.numbers)
        if cut:
            yield block.subset(slice(0, cut))


def _widen(a: np.ndarray, width: int) -> np.ndarray:
    if a.shape[1] >= width:
        return a
    out = np.zeros((a.shape[0], width), dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


class NeedMore(Exception):
    """A :data:`LengthOf` needs ``need`` bytes from the record start to tell the length."""

    def __init__(self, need: int) -> None:
        super().__init__(need)
        self.need = need


class BadLength(Exception):
    """A record length that cannot be right (raised by a :data:`LengthOf`)."""

    def __init__(self, message: str, kind: type[RecordFormatError] = InvalidRdwError) -> None:
        super().__init__(message)
        self.kind = kind


class _Framed:
    """A stream with ``header`` bytes skipped and the last ``trailer`` bytes withheld."""

    def __init__(self, stream: BinaryIO, name: str, header: int, trailer: int) -> None:
        self.stream = stream
        self.trailer = trailer
        self.tail = b""
        self.eof = False
        if header:
            skipped = stream.read(header)
            if len(skipped) < header:
                raise TruncatedRecordError(
                    name,
                    1,
                    0,
                    f"the file has {len(skipped)} bytes, fewer than the {header} header bytes to skip (header_bytes)",
                )

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end of the data (before the trailer)."""
        if self.eof and not self.tail:
            return b""
        if not self.trailer and not self.tail:
            data = self.stream.read(n)
            while 0 < len(data) < n:  # a pipe may return short reads
                more = self.stream.read(n - len(data))
                if not more:
                    break
                data += more
            if len(data) < n:
                self.eof = True
            return data
        parts = [self.tail]
        have = len(self.tail)
        while have < n + self.trailer and not self.eof:
            chunk = self.stream.read(max(n + self.trailer - have, 1 << 16))
            if not chunk:
                self.eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if self.eof and self.trailer:
            data = data[: max(len(data) - self.trailer, 0)]
            self.trailer = 0
        out, self.tail = data[:n], data[n:]
        return out


def fixed_blocks(
    stream: BinaryIO, name: str, record_length: int, block_records: int, header: int = 0, trailer: int = 0
) -> Iterator[RawBlock]:
    """Blocks of fixed-length records (a block's ``data`` is valid until the next block is read).

    Raises:
        TruncatedRecordError: the data does not end on a record boundary.
    """
    framed = _Framed(stream, name, header, trailer)
    want = record_length * block_records
    first = 1
    reuse = np.empty(want, dtype=np.uint8) if not trailer and hasattr(stream, "readinto") else None
    while True:
        data = framed.read(want) if reuse is None else _read_into(stream, reuse)
        if not len(data):
            return
        n, rest = divmod(len(data), record_length)
        if rest:
            nxt = framed.read(1)
            if nxt:  # pragma: no cover - _Framed returns full reads before the end
                raise RuntimeError("short read inside the file")
            offset = header + (first - 1 + n) * record_length
            if n:
                yield _fixed(data[: n * record_length], n, record_length, first, header)
            raise TruncatedRecordError(
                name, first + n, offset,
                f"the last record has only {rest} of {record_length} bytes (the file ends at byte "
                f"{offset + rest}): the file is cut short or the record length is wrong; ask for the file again "
                "or check the copybook / record_length",
            )  # fmt: skip
        yield _fixed(data, n, record_length, first, header)
        first += n


def _read_into(stream: BinaryIO, buf: np.ndarray) -> memoryview:
    """Fill ``buf`` from the stream (one buffer reused for every block: no allocation churn)."""
    view = buf.data
    filled = 0
    while filled < len(buf):
        got = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            break
        filled += got
    return view[:filled]


def _fixed(data: bytes | memoryview, n: int, record_length: int, first: int, header: int) -> RawBlock:
    arr = np.frombuffer(data, dtype=np.uint8).reshape(n, record_length)
    offsets = header + (np.arange(n, dtype=np.int64) + (first - 1)) * record_length
    return RawBlock(arr, None, first, offsets)


LengthOf = Callable[[bytes, int, int], int]
"""(buffer, record start, record number) -> the record's total length in bytes, or raises."""


def variable_blocks(
    stream: BinaryIO,
    name: str,
    width: int,
    block_records: int,
    prefix: int,
    length_of: LengthOf,
    header: int = 0,
    trailer: int = 0,
    min_bytes: int = 4,
    bdw: bool = False,
) -> Iterator[RawBlock]:
    """Blocks of variable-length records; ``prefix`` bytes (the RDW) precede each record's data.

    ``length_of`` returns the bytes of a record including the prefix; it needs ``min_bytes`` bytes
    from the record start to tell (or raises :class:`NeedMore`). ``bdw``: the records come in blocks, each
    starting with a 4-byte block descriptor word (variable blocked, VB, files); a record may not cross the
    end of its block.
    """
    framed = _Framed(stream, name, header, trailer)
    buf = b""
    pos = 0
    base = header  # file offset of buf[0]
    number = 1
    out = np.zeros((block_records, width), dtype=np.uint8)
    lengths = np.zeros(block_records, dtype=np.int64)
    offsets = np.zeros(block_records, dtype=np.int64)
    k = 0
    eof = False
    want = max(min_bytes, 1)
    block_end = -1  # file offset where the current BDW block ends
    while True:
        if len(buf) - pos < want and not eof:
            more = framed.read(max(_READ, want))
            eof = not more
            buf, base, pos = buf[pos:] + more, base + pos, 0
            continue
        if pos >= len(buf):
            if bdw and block_end > base + pos:
                raise RdwPastEofError(name, number, base + pos, f"the file ends inside a block that the BDW says "
                                      f"runs to byte {block_end}: the file is cut short; ask for it again")  # fmt: skip
            break
        if bdw and base + pos >= block_end:
            if len(buf) - pos < 4:
                if not eof:
                    want = 4
                    continue
                raise RdwPastEofError(name, number, base + pos, "the file ends inside a block descriptor word (BDW)")
            block_end = base + pos + _bdw_length(buf, pos, name, number, base + pos)
            pos += 4
            want = max(min_bytes, 1)
            continue
        if len(buf) - pos < want:
            raise RdwPastEofError(
                name,
                number,
                base + pos,
                f"the file ends {len(buf) - pos} bytes into the "
                "record header: the file is cut short; ask for the file again",
            )
        try:
            total = length_of(buf, pos, number)
        except NeedMore as e:
            if eof:
                raise RdwPastEofError(name, number, base + pos, f"the file ends {len(buf) - pos} bytes into a "
                                      f"record that needs at least {e.need}: the file is cut short "
                                      "(ask for it again) or the copybook does not describe it") from None  # fmt: skip
            want = e.need
            continue
        except BadLength as e:
            raise e.kind(name, number, base + pos, str(e)) from None
        want = max(min_bytes, 1)
        if total < max(prefix, 1):
            raise InvalidRdwError(name, number, base + pos, f"record length {total} is too small")
        if bdw and base + pos + total > block_end:
            raise InvalidRdwError(name, number, base + pos, f"the record ({total} bytes) runs past the end of its "
                                  f"block at byte {block_end} (BDW): not a VB file, or it is damaged; check "
                                  "record_format")  # fmt: skip
        if pos + total > len(buf):
            if not eof:
                more = framed.read(max(_READ, total))
                eof = not more
                buf, base, pos = buf[pos:] + more, base + pos, 0
                continue
            raise RdwPastEofError(
                name, number, base + pos,
                f"the record header says {total} bytes but only {len(buf) - pos} remain in the file: the file is "
                "cut short (ask for it again) or the record format is wrong (check record_format, "
                "rdw_byte_order, rdw_includes_header, rdw_length_at)",
            )  # fmt: skip
        body = total - prefix
        take = min(body, width)
        out[k, :take] = np.frombuffer(buf, dtype=np.uint8, count=take, offset=pos + prefix)
        lengths[k] = body
        offsets[k] = base + pos
        k += 1
        pos += total
        number += 1
        if k == block_records:
            yield RawBlock(out, lengths, number - k, offsets)
            out = np.zeros((block_records, width), dtype=np.uint8)
            lengths = np.zeros(block_records, dtype=np.int64)
            offsets = np.zeros(block_records, dtype=np.int64)
            k = 0
    if k:
        yield RawBlock(out[:k], lengths[:k], number - k, offsets[:k])


def _bdw_length(buf: bytes, pos: int, name: str, number: int, offset: int) -> int:
    """The length of a block (including its 4-byte BDW) from its block descriptor word.

    IBM z/OS DFSMS "Using Data Sets", variable-length records: a BDW is a 2-byte big-endian block length
    (including the BDW) and two zero bytes; an extended BDW (for blocks over 32,760 bytes) sets the top bit
    and holds a 31-bit length in all four bytes.
    """
    word = buf[pos : pos + 4]
    if word[0] & 0x80:
        n = int.from_bytes(word, "big") & 0x7FFFFFFF
    else:
        if word[2] or word[3]:
            raise InvalidRdwError(
                name,
                number,
                offset,
                f"BDW x'{word.hex().upper()}' has non-zero reserved bytes: "
                "not a block descriptor word (is the file RDW only? try record_format: rdw)",
            )
        n = int.from_bytes(word[:2], "big")
    if n < 4:
        raise InvalidRdwError(name, number, offset, f"BDW x'{word.hex().upper()}' gives a block length of {n}, "
                              "below its own 4 bytes")  # fmt: skip
    return n


def rdw_length(name: str, big_endian: bool, includes_header: bool, length_at: int = 0) -> LengthOf:
    """A :data:`LengthOf` reading a 4-byte RDW: a 2-byte length at bytes 0-1 (IBM: then two reserved zero
    bytes) or at bytes 2-3 (a 4-byte length field whose high half is zero)."""
    order: Literal["big", "little"] = "big" if big_endian else "little"
    zero = slice(2, 4) if length_at == 0 else slice(0, 2)
    at = slice(length_at, length_at + 2)

    def length_of(buf: bytes, pos: int, number: int) -> int:
        word = buf[pos : pos + 4]
        n = int.from_bytes(word[at], order)
        if word[zero] != b"\x00\x00":
            raise BadLength(
                f"RDW x'{word.hex().upper()}' has non-zero bytes where bytes {zero.start}-{zero.stop - 1} should be "
                "zero: not an RDW (spanned records, block descriptors — try record_format: vb —, or a length at "
                "the other end — rdw_length_at —, or not a variable-length file; check record_format)"
            )
        total = n + 4 if not includes_header else n
        if total <= 4 and includes_header:
            raise BadLength(
                f"RDW length {n} is below 5 (an RDW counts its own 4 bytes; "
                "set rdw_includes_header: false if this file's lengths exclude them)"
            )
        return total

    return length_of
