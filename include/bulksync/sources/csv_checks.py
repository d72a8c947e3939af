"""Checks of a CSV file's bytes on their way into pyarrow's reader: the whole file, in the one streaming pass.

:class:`CheckedCsvBytes` wraps the byte stream pyarrow parses and refuses, with the physical line
and the absolute byte offset (of the uncompressed data):

- a NUL byte (binary content, or UTF-16 read as an 8-bit encoding);
- bytes that are not UTF-8, when the file is declared UTF-8 (a sequence cut by the end of the file
  included);
- RFC 4180 quoting that pyarrow would read in a third, silent way: text after a closing quote
  (``a,"b"c,d`` would become ``bc``), blanks after a quoted field (``"B" ,`` would keep ``B ``) or
  before one, a quote in the middle of an unquoted field (``ab"cd``). ``lenient_quotes: true`` reads
  such files as pyarrow does instead (text after a closing quote is appended to the field, blanks are
  kept, a quote that does not open a field is text).

In RFC 4180 CSV a quote is always next to another quote (a doubled one), the delimiter or a line
break: it opens a field, closes one, or is doubled. A quote with ordinary text on *both* sides is
therefore malformed, whatever the quoting state, and finding one needs no parsing: each block is
compared byte-wise with NumPy (quote, delimiter-or-line-break, other) and searched for ``other,
quote, other`` (about 1 GB/s). A quote with a delimiter on one side and text
on the other (``5'6",``) is read the same way by every reader, so it is let through.
"""

from __future__ import annotations

import codecs
import io
import queue
import threading
from typing import IO, Any

import numpy as np

from bulksync.errors import FileRejectedError

DELIMITERS = ",;|\t^`"
"""The delimiters bulksync detects (csv.Sniffer's candidates, the delimiter hint's)."""


def likely_delimiter(lines: list[str], given: str) -> str | None:
    """A delimiter other than ``given`` that appears equally often (at least once) in every sampled line."""
    for candidate in DELIMITERS:
        if candidate == given or not lines:
            continue
        counts = {ln.count(candidate) for ln in lines}
        if len(counts) == 1 and counts.pop() > 0:
            return candidate
    return None


_LF, _CR = 10, 13


class CheckedCsvBytes(io.RawIOBase):
    """A CSV file's bytes, checked block by block as pyarrow reads them.

    Args:
        raw: the (decompressed) data bytes.
        name: the file, for messages.
        encoding: the declared encoding (checks apply to UTF-8 and 8-bit encodings, not UTF-16/32).
        delimiter: the one-character delimiter.
        quote: the quote character, or ``None`` (no quote checks).
        check_quotes: refuse malformed quoting (``False``: the documented lenient reading).
    """

    def __init__(
        self, raw: IO[bytes], name: str, encoding: str, delimiter: str, quote: str | None, check_quotes: bool
    ) -> None:
        self.raw = raw
        self.name = name
        enc = codecs.lookup(encoding).name
        self.wide = enc.startswith(("utf-16", "utf-32"))
        self.utf8 = enc == "utf-8"
        self.delimiter = delimiter.encode(encoding)[0] if not self.wide else 0
        self.quote = quote.encode(encoding)[0] if quote and check_quotes and not self.wide else None
        self.offset = 0  # bytes before the current block
        self.lines = 0  # line feeds before the current block
        self._tail = b"\n"  # the last two bytes before the current block (the file starts a line)
        self._utf8_tail = b""

        self.error: FileRejectedError | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        """Pass the next block through; its checks run in a helper thread (NumPy releases the GIL)."""
        if self.error is not None:
            raise self.error
        fill = getattr(self.raw, "readinto", None)
        if fill is not None:  # straight into the reader's buffer
            n = fill(b) or 0
        else:
            chunk = self.raw.read(len(b))
            n = len(chunk)
            b[:n] = chunk
        if not n:
            self.finish()
            return 0
        if not self.wide:
            self._start()
            self._queue.put(bytes(memoryview(b).cast("B")[:n]))
        return n

    def drain_in_background(self) -> None:
        """Read ``raw`` to its end in the helper thread and check it (when another reader parses the file)."""
        if not self.wide:
            self._thread = threading.Thread(target=self._drain, name="bulksync-csv-check", daemon=True)
            self._thread.start()

    def finish(self) -> None:
        """Wait for the checks of everything read; raise the first problem found."""
        if not self._done:
            self._done = True
            if self._thread is not None:
                if not self._draining:
                    self._queue.put(None)
                self._thread.join()
            elif self.error is None and not self.wide:
                self._at_end()
        if self.error is not None:
            raise self.error

    _draining = False

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._consume, name="bulksync-csv-check", daemon=True)
            self._thread.start()

    def _consume(self) -> None:
        while (block := self._queue.get()) is not None:
            self._block(block)
        self._guard(self._at_end)

    def _drain(self) -> None:
        self._draining = True
        while self.error is None and (block := self.raw.read(4 << 20)):
            self._block(block)
        self._guard(self._at_end)

    def _block(self, block: bytes) -> None:
        if self.error is None:
            self._guard(lambda: self._check_block(block))

    def _guard(self, check: Any) -> None:
        try:
            check()
        except FileRejectedError as exc:
            self.error = exc

    def _check_block(self, block: bytes) -> None:
        view = memoryview(block)
        arr = np.frombuffer(block, dtype=np.uint8)
        newlines = arr == _LF
        self._check(view, arr, newlines)
        self.offset += len(block)
        self.lines += int(np.count_nonzero(newlines))

    def close(self) -> None:
        self.raw.close()
        super().close()

    # -- checks -----------------------------------------------------------------------------

    def _where(self, data: Any, i: int) -> str:
        line = self.lines + bytes(data[: max(i, 0)]).count(b"\n") + 1
        return f"{self.name}, line {line} (byte {self.offset + i:,})"

    def _check(self, data: memoryview, arr: np.ndarray, newlines: np.ndarray) -> None:
        zero = arr == 0
        if zero.any():
            nul = int(np.argmax(zero))
            raise FileRejectedError(
                "binary_content",
                f"{self._where(data, nul)}: a NUL byte, which no text holds: the file is binary, truncated by a "
                "transfer in binary mode, or UTF-16 (then set the encoding to utf-16). Ask the client to resend it",
            )
        if self.utf8:
            self._check_utf8(data)
        if self.quote is not None:
            self._check_quotes(data, arr, newlines)

    def _check_utf8(self, data: memoryview) -> None:
        buf: Any = self._utf8_tail + data if self._utf8_tail else data
        try:
            _, used = codecs.utf_8_decode(buf, "strict", False)
        except UnicodeDecodeError as exc:
            at = exc.start - len(self._utf8_tail)
            bad = bytes(buf[exc.start : exc.start + 4])
            raise FileRejectedError(
                "encoding",
                f"{self._where(data, at)}: not UTF-8 ({exc.reason}, bytes {bad!r}). Set the encoding the client "
                "uses (cp1252 and latin-1 are common), or ask for UTF-8",
            ) from None
        self._utf8_tail = buf[used:]

    def _check_quotes(self, data: memoryview, arr: np.ndarray, newlines: np.ndarray) -> None:
        quote = arr == self.quote
        ordinary = arr != self.delimiter
        ordinary &= ~newlines
        ordinary &= arr != _CR
        ordinary &= ~quote
        bad = quote[1:-1] & ordinary[:-2]
        bad &= ordinary[2:]
        # quotes next to a block boundary: the last bytes of the previous block and the first two of this one
        edge = self._tail + bytes(data[:2])
        before_block = len(self._tail)
        self._tail = (self._tail + bytes(data[-2:]))[-2:]
        at = None
        for i in range(1, len(edge) - 1):
            if edge[i] == self.quote and self._ordinary(edge[i - 1]) and self._ordinary(edge[i + 1]):
                at, before, after = i - before_block, edge[i - 1], edge[i + 1]
                break
        if at is None and bad.any():
            at = int(np.argmax(bad)) + 1
            before, after = int(arr[at - 1]), int(arr[at + 1])
        if at is None:
            return
        if after in (32, 9):
            what = "blanks after a quoted field"
        elif before in (32, 9):
            what = "blanks before a quoted field"
        else:
            what = "a quote inside a field (text after a closing quote, or a quote in an unquoted field)"
        snippet = bytes(data[max(at - 20, 0) : max(at + 12, 0)]).decode("utf-8", "replace")
        raise FileRejectedError(
            "bad_quoting",
            f"{self._where(data, at)}: {what} ({snippet!r}), which RFC 4180 does not allow. Ask the client to fix "
            "the quoting (quote the field, double its quotes), set quote_char: null if the file uses no quoting, "
            "or lenient_quotes: true to read it as pyarrow does (text after a closing quote appended to the field, "
            "blanks kept, other quotes kept as text)",
        )

    def _ordinary(self, byte: int) -> bool:
        return byte not in (self.delimiter, _LF, _CR, self.quote)

    def _at_end(self) -> None:
        if self._utf8_tail:
            raise FileRejectedError(
                "encoding",
                f"{self.name}, line {self.lines + 1} (byte {self.offset - len(self._utf8_tail):,}): the file ends "
                "inside a UTF-8 character (truncated?). Ask the client to resend it",
            )
