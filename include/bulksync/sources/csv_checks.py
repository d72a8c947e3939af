"""Checks of a CSV file's bytes on their way into pyarrow's reader: the whole file, in the one streaming pass.

:class:`CheckedCsvBytes` wraps the byte stream pyarrow parses and refuses, with the physical line
and the absolute byte offset (of the uncompressed data):

- a NUL byte (binary content, or UTF-16 read as an 8-bit encoding);
- bytes that are not UTF-8, when the file is declared UTF-8 (a sequence cut by the end of the file
  included);
- RFC 4180 quoting that pyarrow would read in a third, silent way: text after a closing quote
  (``a,"b"c,d`` would become ``bc``), blanks after a quoted field (``"B" ,`` would keep ``B ``), a
  quote inside an unquoted field. ``lenient_quotes: true`` reads such files as pyarrow does instead
  (text after a closing quote is appended to the field, a quote inside an unquoted field is kept).

Quotes are checked by parity: in RFC 4180 CSV every quote inside a quoted field is doubled, so the
running count of quotes is odd exactly inside quoted fields. A quote that closes (the count turns
even) must be followed by another quote (a doubled one), the delimiter or the end of a line; one that
opens must follow the delimiter, the start of a line or another quote. NumPy finds the quotes of each
block; only they are looked at.
"""

from __future__ import annotations

import codecs
import io
from typing import IO, Any

import numpy as np

from bulksync.errors import FileRejectedError

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
        self.parity = 0  # quotes seen so far, mod 2
        self.last = _LF  # the byte before the current block (a start of line at the start of the file)
        self.closing_at_end = False  # the previous block ended in a closing quote: its follower is this block's first
        self._utf8_tail = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        if not data:
            self._at_end()
            return 0
        if not self.wide:
            self._check(data)
        n = len(data)
        b[:n] = data
        self.offset += n
        self.lines += data.count(b"\n")
        self.last = data[-1]
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()

    # -- checks -----------------------------------------------------------------------------

    def _where(self, data: bytes, i: int) -> str:
        line = self.lines + data.count(b"\n", 0, max(i, 0)) + 1
        return f"{self.name}, line {line} (byte {self.offset + i:,})"

    def _check(self, data: bytes) -> None:
        nul = data.find(b"\x00")
        if nul >= 0:
            raise FileRejectedError(
                "binary_content",
                f"{self._where(data, nul)}: a NUL byte, which no text holds: the file is binary, truncated by a "
                "transfer in binary mode, or UTF-16 (then set the encoding to utf-16). Ask the client to resend it",
            )
        if self.utf8:
            self._check_utf8(data)
        if self.quote is not None:
            self._check_quotes(data)

    def _check_utf8(self, data: bytes) -> None:
        buf = self._utf8_tail + data
        try:
            _, used = codecs.utf_8_decode(buf, "strict", False)
        except UnicodeDecodeError as exc:
            at = exc.start - len(self._utf8_tail)
            bad = buf[exc.start : exc.start + 4]
            raise FileRejectedError(
                "encoding",
                f"{self._where(data, at)}: not UTF-8 ({exc.reason}, bytes {bad!r}). Set the encoding the client "
                "uses (cp1252 and latin-1 are common), or ask for UTF-8",
            ) from None
        self._utf8_tail = buf[used:]

    def _check_quotes(self, data: bytes) -> None:
        arr = np.frombuffer(data, dtype=np.uint8)
        if self.closing_at_end:
            self.closing_at_end = False
            self._after_close(data, -1, arr[0])
        quotes = np.flatnonzero(arr == self.quote)
        if not len(quotes):
            return
        after = (self.parity + np.arange(1, len(quotes) + 1)) % 2  # 1: the quote opens, 0: it closes
        self.parity = int(after[-1])
        before = np.where(quotes > 0, arr[np.maximum(quotes - 1, 0)], self.last)
        ok_before = (before == self.delimiter) | (before == _LF) | (before == _CR) | (before == self.quote)
        if self.offset == 0:  # a UTF-8 byte order mark before the first field
            ok_before |= (quotes == 3) & data.startswith(codecs.BOM_UTF8)
        bad_open = np.flatnonzero((after == 1) & ~ok_before)
        closes = quotes[after == 0]
        inside = closes[closes < len(arr) - 1]
        follower = arr[inside + 1]
        ok_after = (follower == self.delimiter) | (follower == _LF) | (follower == _CR) | (follower == self.quote)
        bad_close = inside[~ok_after]
        first_open = int(quotes[bad_open[0]]) if len(bad_open) else None
        first_close = int(bad_close[0]) if len(bad_close) else None
        if first_open is not None and (first_close is None or first_open < first_close):
            raise FileRejectedError(
                "bad_quoting",
                f"{self._where(data, first_open)}: a quote inside an unquoted field (RFC 4180 wants such a field "
                "quoted and its quotes doubled). Ask the client to quote the field, set quote_char: null if the file "
                "uses no quoting, or lenient_quotes: true to keep such quotes as text",
            )
        if first_close is not None:
            self._after_close(data, first_close, arr[first_close + 1])
        if len(closes) and closes[-1] == len(arr) - 1:
            self.closing_at_end = True

    def _after_close(self, data: bytes, at: int, follower: int) -> None:
        if follower in (self.delimiter, _LF, _CR, self.quote):
            return
        what = "blanks after a quoted field" if follower in (32, 9) else "text after a closing quote"
        snippet = data[max(at - 20, 0) : at + 12].decode("utf-8", "replace") if at >= 0 else ""
        raise FileRejectedError(
            "bad_quoting",
            f"{self._where(data, at + 1)}: {what} ({snippet!r}), which RFC 4180 does not allow. Ask the client to "
            "fix the quoting, or set lenient_quotes: true to read it as pyarrow does (the text after the closing "
            "quote is appended to the field, blanks are kept)",
        )

    def _at_end(self) -> None:
        if self._utf8_tail:
            raise FileRejectedError(
                "encoding",
                f"{self.name}, line {self.lines + 1} (byte {self.offset - len(self._utf8_tail):,}): the file ends "
                "inside a UTF-8 character (truncated?). Ask the client to resend it",
            )
