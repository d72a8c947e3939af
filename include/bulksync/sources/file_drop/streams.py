"""Byte streams under the file readers: hashing, decompression with a size limit, trailer records, spooling.

A file is read once: the raw bytes pass through :class:`HashingReader` (sha256 and md5 on the way),
then gzip / zip decompression capped by :class:`LimitedReader`, then :class:`TrailerHolder`, which
holds back the last line so a trailer record is checked, not loaded. A file's batches go to a
:class:`Spool` (memory, then an Arrow IPC file on disk) and are passed on only once the whole file
proved good, so a file rejected at its last line leaves nothing behind in the partition.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import queue
import re
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from bulksync.errors import FileRejectedError

SNIFF_BYTES = 64 * 1024


class HashingReader(io.RawIOBase):
    """Pass bytes through while a helper thread computes their sha256 (hashlib releases the GIL, so
    hashing overlaps with parsing instead of adding to it)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.eof = False
        self._stopped = False
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._hash, name="bulksync-sha256", daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self.sha256.update(chunk)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        if not data:
            self.eof = True
            self._stop()
            return 0
        n = len(data)
        b[:n] = data
        self._queue.put(data)
        self.bytes += n
        return n

    def hexdigest(self) -> str:
        """The sha256 of everything read (waits for the helper thread)."""
        self._finish()
        return self.sha256.hexdigest()

    def _stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._queue.put(None)

    def _finish(self) -> None:
        self._stop()
        self._thread.join()

    def close(self) -> None:
        if not self.closed:
            self._finish()
            self.raw.close()
        super().close()


class LimitedReader(io.RawIOBase):
    """Refuse to expand a compressed file beyond ``limit`` bytes (a zip bomb, a wrong file)."""

    def __init__(self, inner: IO[bytes], limit: int, name: str) -> None:
        self.inner, self.limit, self.name, self.bytes = inner, limit, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.inner.read(len(b))
        n = len(data)
        self.bytes += n
        if self.bytes > self.limit:
            raise FileRejectedError(
                "size_limit_exceeded",
                f"{self.name}: expands to more than {self.limit >> 20} MiB (options.max_uncompressed_mb); "
                "raise the limit if the file is genuine",
            )
        b[:n] = data
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


class TrailerHolder(io.RawIOBase):
    """Hold back the last line of a stream; at the end, :attr:`trailer` holds it (without newline).

    The trailer line is not passed on. Works on ASCII-compatible encodings (the newline is ``\\n``).
    """

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.pending = b""
        self.out = b""
        self.trailer: bytes | None = None
        self.done = False

    def readable(self) -> bool:
        return True

    def _fill(self, n: int) -> None:
        while not self.out and not self.done:
            data = self.inner.read(max(n, 1 << 16))
            if not data:
                self.done = True
                self.trailer = self.pending.rstrip(b"\r\n")
                self.pending = b""
                return
            buf = self.pending + data
            cut = buf.rfind(b"\n", 0, len(buf) - 1 if buf.endswith(b"\n") else len(buf))
            if cut < 0:
                self.pending = buf
                continue
            self.out, self.pending = buf[: cut + 1], buf[cut + 1 :]

    def readinto(self, b: Any) -> int:
        self._fill(len(b))
        n = min(len(b), len(self.out))
        b[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


def compression_of(name: str, setting: str) -> str:
    """``gzip``, ``zip`` or ``none`` for a file name under ``options.compression``."""
    if setting != "auto":
        return setting
    lower = name.lower()
    if lower.endswith((".gz", ".gzip")):
        return "gzip"
    if lower.endswith(".zip"):
        return "zip"
    return "none"


def decompressed(raw: IO[bytes], compression: str, limit: int, name: str) -> IO[bytes]:
    """The data bytes of a raw stream (gzip or single-member zip), capped at ``limit`` bytes."""
    if compression == "gzip":
        unzipped: Any = gzip.GzipFile(fileobj=raw, mode="rb")
        return io.BufferedReader(LimitedReader(unzipped, limit, name), 1 << 20)
    if compression == "zip":
        try:
            zf = zipfile.ZipFile(raw)
        except zipfile.BadZipFile:
            raise FileRejectedError("bad_archive", f"{name}: not a valid zip archive") from None
        members = [i for i in zf.infolist() if not i.is_dir()]
        if len(members) != 1:
            listing = ", ".join(i.filename for i in members[:10]) or "none"
            raise FileRejectedError(
                "zip_members",
                f"{name}: a zip must hold exactly one file, this one holds {len(members)} ({listing}). "
                "Ask the client to send one file per zip",
            )
        return io.BufferedReader(LimitedReader(zf.open(members[0]), limit, name), 1 << 20)
    return raw


def check_text(head: bytes, encoding: str, name: str) -> None:
    """Refuse bytes that are not text in ``encoding``: UTF-16 without a BOM, binary content.

    Args:
        head: the first bytes of the (decompressed) file.
        encoding: the declared encoding.
        name: the file, for messages.
    """
    if not head:
        raise FileRejectedError("empty_file", f"{name}: the file is empty (0 bytes). Ask the client to resend it")
    enc = encoding.lower().replace("_", "-")
    bom16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if enc in ("utf-16", "utf16"):
        if not bom16:
            raise FileRejectedError(
                "utf16_without_bom",
                f"{name}: declared utf-16 but the file has no byte order mark, so its byte order is unknown. "
                "Set options.encoding to utf-16-le or utf-16-be",
            )
        return
    if enc.startswith(("utf-16", "utf16", "utf-32", "utf32")):
        return
    if b"\x00" in head:
        sample = head[:4096]
        zeros_odd = sample[1::2].count(0)
        zeros_even = sample[0::2].count(0)
        if bom16 or max(zeros_odd, zeros_even) > len(sample) // 4:
            raise FileRejectedError(
                "utf16_without_bom" if not bom16 else "encoding",
                f"{name}: looks like UTF-16 text but options.encoding is {encoding!r}. "
                "Set options.encoding to utf-16 (with a BOM) or utf-16-le / utf-16-be",
            )
        raise FileRejectedError(
            "binary_content",
            f"{name}: holds binary data (a NUL byte at offset {head.index(0)}), not {encoding} text. "
            "Check that the client sent the right file",
        )


def parse_trailer(trailer: bytes | None, pattern: str, name: str) -> int:
    """The record count of a trailer line, or a rejection naming what was found."""
    text = (trailer or b"").decode("latin-1")
    m = re.search(pattern, text)
    if not m:
        raise FileRejectedError(
            "trailer_missing",
            f"{name}: the last line {text[:80]!r} is not a trailer record matching {pattern!r} "
            "(options.control_total.trailer_pattern)",
        )
    return int(m.group(1))


class Spool:
    """Record batches of one file held until the file is accepted: in memory, then in an IPC file.

    Args:
        memory_bytes: bytes kept in memory before spilling to a temporary file.
    """

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.batches: list[pa.RecordBatch] = []
        self.held = 0
        self.rows = 0
        self.last: pa.RecordBatch | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._path: Path | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        """Keep a batch."""
        self.rows += batch.num_rows
        if batch.num_rows:
            self.last = batch
        if self._writer is not None:
            self._writer.write_batch(batch)
            return
        self.batches.append(batch)
        self.held += batch.nbytes
        if self.held > self.memory_bytes:
            self._dir = tempfile.TemporaryDirectory(prefix="bulksync-spool-")
            self._path = Path(self._dir.name) / "spool.arrow"
            self._writer = pa.ipc.new_stream(str(self._path), batch.schema)
            for b in self.batches:
                self._writer.write_batch(b)
            self.batches, self.held = [], 0

    def drain(self) -> Iterator[pa.RecordBatch]:
        """Yield every kept batch in order, then free them."""
        if self._writer is None:
            batches, self.batches = self.batches, []
            yield from batches
            return
        self._writer.close()
        self._writer = None
        assert self._path is not None
        # plain reads, not a memory map: mapped pages would count as this process's memory
        with pa.OSFile(str(self._path), "rb") as src:
            yield from pa.ipc.open_stream(src)
        self.close()

    def close(self) -> None:
        """Drop everything kept."""
        self.batches = []
        self.last = None
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def unclosed_quote_line(text: IO[str], delimiter: str, quote: str, header: bool) -> int | None:
    """The line where a quoted field starts that is never closed, or ``None`` (csv module, strict)."""
    import csv

    reader = csv.reader(text, delimiter=delimiter, quotechar=quote, strict=True)
    start = 1
    try:
        while True:
            start = reader.line_num + 1
            next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        return start if "end of data" in str(exc) else None
