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
    """

    data: np.ndarray
    lengths: np.ndarray | None
    first: int
    offsets: np.ndarray


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
) -> Iterator[RawBlock]:
    """Blocks of variable-length records; ``prefix`` bytes (the RDW) precede each record's data.

    ``length_of`` returns the bytes of a record including the prefix; it needs ``min_bytes`` bytes
    from the record start to tell.
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
    while True:
        if len(buf) - pos < max(min_bytes, 1) and not eof:
            more = framed.read(_READ)
            eof = not more
            buf, base, pos = buf[pos:] + more, base + pos, 0
            continue
        if pos >= len(buf):
            break
        if len(buf) - pos < min_bytes:
            raise RdwPastEofError(
                name,
                number,
                base + pos,
                f"the file ends {len(buf) - pos} bytes into the "
                "record header: the file is cut short; ask for the file again",
            )
        try:
            total = length_of(buf, pos, number)
        except BadLength as e:
            raise e.kind(name, number, base + pos, str(e)) from None
        if total < max(prefix, 1):
            raise InvalidRdwError(name, number, base + pos, f"record length {total} is too small")
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
                "rdw_byte_order, rdw_includes_header)",
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


def rdw_length(name: str, big_endian: bool, includes_header: bool) -> LengthOf:
    """A :data:`LengthOf` reading a 4-byte RDW (length, then two reserved zero bytes)."""
    order: Literal["big", "little"] = "big" if big_endian else "little"

    def length_of(buf: bytes, pos: int, number: int) -> int:
        n = int.from_bytes(buf[pos : pos + 2], order)
        if buf[pos + 2] or buf[pos + 3]:
            raise BadLength(
                f"RDW x'{buf[pos : pos + 4].hex().upper()}' has non-zero reserved bytes: not an RDW (spanned "
                "records, block descriptors, or not a variable-length file; check record_format)"
            )
        total = n + 4 if not includes_header else n
        if total <= 4 and includes_header:
            raise BadLength(
                f"RDW length {n} is below 5 (an RDW counts its own 4 bytes; "
                "set rdw_includes_header: false if this file's lengths exclude them)"
            )
        return total

    return length_of
