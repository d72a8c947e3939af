"""Vectorised decoders: one field of a whole block of records at once (NumPy over ``uint8[records, bytes]``).

Each numeric decoder returns the Arrow array (invalid values null) and a ``uint8`` reason code per record
(0 = valid; see :data:`REASONS`). Values are exact: unscaled integers are built with NumPy and wrapped as
Arrow ``decimal128`` buffers (or ``int64`` when the scale is 0 and the precision at most 18).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.legacy.codepages import BAD_CODE, CodePage

REASONS = (
    "",
    "bad packed nibble",
    "bad packed sign nibble",
    "bad zoned digit",
    "bad zoned sign",
    "value exceeds its PIC",
    "negative sign in an unsigned field",
    "bad separate sign character",
    "binary value out of range",
    "bad character in a numeric-edited field",
)
OK, BAD_NIBBLE, BAD_PSIGN, BAD_DIGIT, BAD_ZSIGN, TOO_BIG, NEG_UNSIGNED, BAD_SEP, BIN_RANGE, BAD_EDITED = range(10)

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def _rows_any(mask: np.ndarray) -> np.ndarray:
    """``mask.any(axis=1)``, skipping the slow per-row reduction when nothing is set (the usual case)."""
    if not mask.any():
        return np.zeros(mask.shape[0], dtype=bool)
    return np.asarray(mask.any(axis=1), dtype=bool)


def _horner(d: np.ndarray) -> np.ndarray:
    """int64 value of a ``[n, k]`` array of decimal digits (k <= 18)."""
    v = np.zeros(d.shape[0], dtype=np.int64)
    for j in range(d.shape[1]):
        v *= 10
        v += d[:, j]
    return v


def _mul_add(hi: np.ndarray, lo: np.ndarray, m: int, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi:lo) * m + a on unsigned 128-bit numbers held as two uint64 arrays (m, a < 2**31)."""
    mm = np.uint64(m)
    p0 = (lo & _M32) * mm + a
    p1 = (lo >> _S32) * mm + (p0 >> _S32)
    return hi * mm + (p1 >> _S32), (p1 << _S32) | (p0 & _M32)


def _decimal_buffer(digits: np.ndarray, neg: np.ndarray, times: int) -> np.ndarray:
    """Little-endian 128-bit two's complement of sign * digits * 10**times, as ``uint64[n, 2]`` (lo, hi)."""
    n, k = digits.shape
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    for start in range(0, k, 9):
        chunk = digits[:, start : start + 9]
        hi, lo = _mul_add(hi, lo, 10 ** chunk.shape[1], _horner(chunk).astype(np.uint64))
    for _ in range(times):
        hi, lo = _mul_add(hi, lo, 10, np.zeros(n, dtype=np.uint64))
    nlo = ~lo + np.uint64(1)
    nhi = ~hi + (nlo == 0).astype(np.uint64)
    out = np.empty((n, 2), dtype=np.uint64)
    out[:, 0] = np.where(neg, nlo, lo)
    out[:, 1] = np.where(neg, nhi, hi)
    return out


def from_numpy(values: np.ndarray, typ: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """A primitive Arrow array over a NumPy array (no copy; ``pa.array`` would import pandas)."""
    if pa.types.is_boolean(typ):
        data = pa.py_buffer(np.packbits(values.astype(bool), bitorder="little"))
    else:
        data = pa.py_buffer(np.ascontiguousarray(values, dtype=typ.to_pandas_dtype()))
    return pa.Array.from_buffers(typ, len(values), [None if valid is None else _validity(valid), data])


def _validity(valid: np.ndarray) -> pa.Buffer | None:
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def number_array(digits: np.ndarray, neg: np.ndarray, valid: np.ndarray, typ: pa.DataType, times: int = 0) -> pa.Array:
    """Arrow array of ``sign * digits * 10**times`` (``digits``: ``uint8[n, k]`` of 0-9), as ``typ``.

    ``typ`` is ``int64`` or ``decimal128(p, s)``; the unscaled value is the integer of the digits (the scale
    only says where the point is), so the result is exact.
    """
    n = digits.shape[0]
    all_valid = bool(valid.all())
    if not all_valid:
        digits = np.where(valid[:, None], digits, 0).astype(np.uint8)
    if pa.types.is_integer(typ):
        v = _horner(digits) * (10**times)
        np.negative(v, out=v, where=neg)
        return from_numpy(v, pa.int64(), valid)
    if digits.shape[1] + times <= 18:
        v = _horner(digits) * (10**times)
        np.negative(v, out=v, where=neg)
        buf = np.empty((n, 2), dtype=np.int64)
        buf[:, 0] = v
        buf[:, 1] = v >> 63
    else:
        buf = _decimal_buffer(digits, neg, times).view(np.int64)
    return pa.Array.from_buffers(typ, n, [_validity(valid), pa.py_buffer(np.ascontiguousarray(buf))])


def int_array(values: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Arrow array of int64 unscaled ``values`` as ``typ`` (``int64`` or ``decimal128``)."""
    values = np.where(valid, values, 0).astype(np.int64)
    if pa.types.is_integer(typ):
        return from_numpy(values, pa.int64(), valid)
    buf = np.empty((len(values), 2), dtype=np.int64)
    buf[:, 0] = values
    buf[:, 1] = values >> 63
    return pa.Array.from_buffers(typ, len(values), [_validity(valid), pa.py_buffer(buf)])


def blank_valid(b: np.ndarray, cp: CodePage, low: bool, spaces: bool) -> np.ndarray | None:
    """Valid mask of fields that are not all LOW-VALUES (``low``) / all spaces (``spaces``); None: all valid."""
    mask = np.zeros(len(b), dtype=bool)
    if low:
        mask |= (b == 0).all(axis=1)
    if spaces:
        mask |= (b == cp.space).all(axis=1)
    return ~mask if mask.any() else None


def with_nulls(arr: pa.Array, valid: np.ndarray) -> pa.Array:
    """``arr`` with the rows where ``valid`` is False set to null."""
    return pc.if_else(from_numpy(valid, pa.bool_()), arr, pa.nulls(len(arr), arr.type))


def _clear_blanks(
    b: np.ndarray, reason: np.ndarray, cp: CodePage, nulls: tuple[bool, bool] = (True, True)
) -> np.ndarray:
    """Valid mask; fields of all LOW-VALUES / all spaces are null without an error when ``nulls`` allows it."""
    bad = np.flatnonzero(reason)
    if len(bad) and (nulls[0] or nulls[1]):
        sub = b[bad]
        blank = np.zeros(len(bad), dtype=bool)
        if nulls[1]:
            blank |= (sub == cp.space).all(axis=1)
        if nulls[0]:
            blank |= (sub == 0).all(axis=1)
        reason[bad[blank]] = OK
        valid = reason == OK
        valid[bad[blank]] = False
        return valid
    return reason == OK


def packed(
    b: np.ndarray, digits: int, signed: bool, cp: CodePage, nulls: tuple[bool, bool] = (True, True)
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode COMP-3: returns (digits ``uint8[n, digits]``, negative, valid, reason code)."""
    hi = b >> 4
    lo = b & 0x0F
    n, k = b.shape
    nib = np.empty((n, 2 * k), dtype=np.uint8)
    nib[:, 0::2] = hi
    nib[:, 1::2] = lo
    body = nib[:, : 2 * k - 1]
    sign = nib[:, 2 * k - 1]
    reason = np.zeros(n, dtype=np.uint8)
    neg = (sign == 0x0D) | (sign == 0x0B)
    extra = 2 * k - 1 - digits
    if extra > 0:
        reason[_rows_any(body[:, :extra] != 0)] = TOO_BIG
    if not signed:
        reason[neg] = NEG_UNSIGNED
    reason[sign < 0x0A] = BAD_PSIGN
    reason[_rows_any(body > 9)] = BAD_NIBBLE
    valid = _clear_blanks(b, reason, cp, nulls)
    return body[:, extra:], neg, valid, reason


def zoned_tables(cp: CodePage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """byte -> digit of a plain position, of a sign position (0xFF invalid), and negative flag."""
    plain = np.full(256, 0xFF, dtype=np.uint8)
    sign = np.full(256, 0xFF, dtype=np.uint8)
    neg = np.zeros(256, dtype=bool)
    if cp.ebcdic:
        for d in range(10):
            plain[0xF0 + d] = d
            for zone in (0xC, 0xA, 0xE, 0xF):
                sign[(zone << 4) + d] = d
            for zone in (0xD, 0xB):
                sign[(zone << 4) + d] = d
                neg[(zone << 4) + d] = True
    else:
        for d in range(10):
            plain[0x30 + d] = sign[0x30 + d] = d
            sign[0x70 + d] = d  # Micro Focus negative: p-y
            neg[0x70 + d] = True
        sign[ord("{")] = 0
        sign[ord("}")] = 0
        neg[ord("}")] = True
        for d in range(1, 10):
            sign[ord("A") + d - 1] = d
            sign[ord("J") + d - 1] = d
            neg[ord("J") + d - 1] = True
    return plain, sign, neg


_TABLES: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def cached_tables(cp: CodePage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if cp.name not in _TABLES:
        _TABLES[cp.name] = zoned_tables(cp)
    return _TABLES[cp.name]


def zoned(
    b: np.ndarray, signed: bool, leading: bool, separate: bool, cp: CodePage, nulls: tuple[bool, bool] = (True, True)
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode USAGE DISPLAY numbers (overpunch, SIGN LEADING / TRAILING [SEPARATE]).

    Returns (digits ``uint8[n, k]``, negative, valid, reason code).
    """
    _plain, sign_tab, neg_tab = cached_tables(cp)
    n, w = b.shape
    reason = np.zeros(n, dtype=np.uint8)
    d: np.ndarray
    if signed and separate:
        sb = b[:, 0] if leading else b[:, w - 1]
        body = b[:, 1:] if leading else b[:, : w - 1]
        if cp.ebcdic:
            d = body & 0x0F
            bad_digit = ((body >> 4) != 0x0F) | (d > 9)
        else:
            d = body - 0x30
            bad_digit = d > 9
        neg = sb == cp.minus
        reason[(sb != cp.plus) & ~neg] = BAD_SEP
        reason[_rows_any(bad_digit)] = BAD_DIGIT
    else:
        pos = 0 if leading else w - 1
        sb = b[:, pos]
        sd = sign_tab[sb]
        neg = neg_tab[sb]
        others = b[:, 1:] if leading else b[:, : w - 1]
        bad_digit = (others - np.uint8(0xF0 if cp.ebcdic else 0x30)) > 9  # uint8 wraps: one test per byte
        d = b & 0x0F if cp.ebcdic else b - np.uint8(0x30)
        d[:, pos] = sd
        if not signed:
            reason[neg] = NEG_UNSIGNED
        reason[sd == 0xFF] = BAD_ZSIGN
        if w > 1:
            reason[_rows_any(bad_digit)] = BAD_DIGIT
    valid = _clear_blanks(b, reason, cp, nulls)
    return d, neg, valid, reason


def binary(
    b: np.ndarray, signed: bool, big_endian: bool, digits: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode COMP / COMP-4 / BINARY / COMP-5: (int64 values, valid, reason); ``digits`` caps COMP (not COMP-5)."""
    n, k = b.shape
    dt = np.dtype(f"{'>' if big_endian else '<'}{'i' if signed else 'u'}{k}")
    raw: np.ndarray
    x = _u64_in_place(b, 0) if big_endian and n else None  # no copy of the field; sign-extended from k bytes
    if x is not None:
        if signed and k < 8:
            raw = (x << _U(64 - 8 * k)).view(np.int64) >> np.int64(64 - 8 * k)
        else:
            raw = x.view(np.int64) if signed else x
    else:
        raw = np.ascontiguousarray(b).view(dt).reshape(n)
    reason = np.zeros(n, dtype=np.uint8)
    if dt.kind == "u" and k == 8:
        reason[raw > np.uint64(2**63 - 1)] = BIN_RANGE
        raw = np.where(reason == OK, raw, 0)
    v = raw.astype(np.int64)
    if digits is not None and digits < 19:
        reason[(reason == OK) & (np.abs(v) >= 10**digits)] = TOO_BIG
    return v, reason == OK, reason


def ibm_float(b: np.ndarray, ieee: bool, little: bool = False) -> np.ndarray:
    """Decode COMP-1 (4 bytes) / COMP-2 (8 bytes), IBM hexadecimal or IEEE (big- or little-endian), to float64."""
    n, k = b.shape
    if ieee:
        return np.ascontiguousarray(b).view(f"{'<' if little else '>'}f{k}").reshape(n).astype(np.float64)
    u = np.ascontiguousarray(b).view(f">u{k}").reshape(n)
    bits = 8 * k - 8
    sign = (u >> np.uint64(8 * k - 1)).astype(bool) if k == 8 else (u >> 31).astype(bool)
    exp = ((u >> np.uint64(bits)) & np.uint64(0x7F)).astype(np.int64) if k == 8 else ((u >> 24) & 0x7F).astype(np.int64)
    frac = (u & np.uint64((1 << bits) - 1)).astype(np.float64)
    v = np.ldexp(frac, (4 * (exp - 64) - bits).astype(np.int32))
    return np.where(sign, -v, v)


def text(b: np.ndarray, cp: CodePage, trim: str) -> tuple[pa.Array, int]:
    """Decode text fields through the code page table and trim spaces by policy.

    The bytes are translated with ``bytes.translate`` into one-byte codes; pure ASCII (the usual case) is
    then already UTF-8; otherwise one Latin-1 decode and UTF-8 encode expand it, and the row offsets are
    computed from the (few) positions of codes >= 0x80 alone. Trimming runs in Arrow. Returns the Arrow
    string array and the number of unprintable characters (U+FFFD) it holds.
    """
    n, w = b.shape
    if cp.translate is None:
        return _text_charmap(b, cp, trim)
    codes = b.tobytes().translate(cp.translate)  # tobytes: one C-order copy
    t = np.frombuffer(codes, dtype=np.uint8)
    if n * w >= 2**31:  # pragma: no cover - needs > 2 GiB of text in one block
        raise ValueError("a block of more than 2 GiB of text: lower block_records")
    starts = np.arange(0, (n + 1) * w, w, dtype=np.int64) if w else np.zeros(n + 1, dtype=np.int64)
    bad = 0
    data: np.ndarray | bytes
    if w == 0 or int(t.max(initial=0)) < 0x80:  # plain ASCII: already UTF-8, nothing unprintable
        data = t
        offsets = starts.astype(np.int32)
    else:
        # Latin-1 codes to UTF-8 at C speed. Codes >= 0x80 are few, so the row offsets come from their
        # positions alone: row i starts at i * w plus the extra UTF-8 bytes of the codes before it (one per
        # Latin-1 letter, two for U+FFFD (unprintable bytes) and the euro sign)
        hi = np.flatnonzero(t >= 0x80)
        hi_codes = t[hi]
        bad = int(np.count_nonzero(hi_codes == BAD_CODE))
        per_row = np.bincount(hi // w, weights=cp.expand_len[hi_codes] - 1, minlength=n).astype(np.int64)
        offsets = starts.copy()
        np.cumsum(per_row, out=offsets[1:])
        offsets[1:] += starts[1:]
        offsets = offsets.astype(np.int32)
        chars = codes.decode("latin-1")
        present = set(np.unique(hi_codes).tolist())
        for code, char in cp.specials:
            if ord(code) in present:
                chars = chars.replace(code, char)
        data = chars.encode("utf-8")
    arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    # after translation the only ASCII white space left is the space (control characters read U+FFFD); a field
    # whose first / last byte is never a space has nothing to trim (one strided look at a column)
    if trim in ("right", "both") and w:
        rows = t.reshape(n, w)
        ends = rows[:, w - 1] == 0x20
        if trim == "both":
            ends |= rows[:, 0] == 0x20
        if ends.any():
            arr = pc.ascii_rtrim_whitespace(arr) if trim == "right" else pc.ascii_trim_whitespace(arr)
    return arr, bad


def _trim(arr: pa.Array, trim: str) -> pa.Array:
    if trim == "right":
        return pc.utf8_rtrim(arr, characters=" ")
    if trim == "both":
        return pc.utf8_trim(arr, characters=" ")
    return arr


def _text_charmap(b: np.ndarray, cp: CodePage, trim: str) -> tuple[pa.Array, int]:
    """Text of a code page with many characters outside Latin-1 (cp875): ``codecs.charmap_decode``."""
    import codecs

    n, w = b.shape
    raw = b.tobytes()
    chars = codecs.charmap_decode(raw, "strict", cp.decoding)[0]
    data = np.frombuffer(chars.encode("utf-8"), dtype=np.uint8)
    lens = cp.utf8_len[b].astype(np.int64).sum(axis=1) if w else np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    bad = int(np.count_nonzero(cp.bad[b]))
    arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])
    return _trim(arr, trim), bad


def _offsets_data(values: list[bytes]) -> tuple[np.ndarray, bytes]:
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    if values:
        np.cumsum([len(v) for v in values], out=offsets[1:])
    return offsets, b"".join(values)


def strings(values: list[str]) -> pa.Array:
    """A string array of Python strings, built from buffers (``pa.array`` would import pandas)."""
    offsets, data = _offsets_data([v.encode("utf-8") for v in values])
    return pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    )


def binaries(values: list[bytes]) -> pa.Array:
    """A binary array of ``bytes`` values, built from buffers (no pandas import)."""
    offsets, data = _offsets_data(values)
    if offsets[-1] >= 2**31:  # pragma: no cover - more than 2 GiB of rejected records in one block
        return pa.Array.from_buffers(pa.large_binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pa.Array.from_buffers(
        pa.binary(), len(values), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    )


def int_values(arr: pa.Array, default: int) -> np.ndarray:
    """An integer Arrow array as int64 NumPy values, nulls as ``default`` (``pc.fill_null`` with a Python
    scalar would import pandas)."""
    if arr.type != pa.int64():
        arr = pc.cast(arr, pa.int64())
    values = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + arr.offset)[arr.offset :]
    if not arr.null_count:
        return values.copy()
    bits = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bits, bitorder="little")[arr.offset : arr.offset + len(arr)].astype(bool)
    return np.where(valid, values, np.int64(default))


# -- fast paths: whole fields of up to 8 bytes read as one big-endian uint64 per record (SWAR) -----------------
# They return None unless every record of the block is valid, so the general decoders above (which locate and
# name invalid values) stay the only judges of bad data; the results are identical (tests compare both).

_U = np.uint64
_NIB_LO = _U(0x0F0F0F0F0F0F0F0F)
_SIX = _U(0x0606060606060606)
_ZONES = _U(0xF0F0F0F0F0F0F0F0)
_B16 = _U(0x00FF00FF00FF00FF)
_B32 = _U(0x0000FFFF0000FFFF)
_B64 = _U(0xFFFFFFFF)


def _u64(b: np.ndarray, pad: int) -> np.ndarray:
    """Each row of ``uint8[n, k<=8]`` as a big-endian uint64, left-padded with the byte ``pad``."""
    x = _u64_in_place(b, pad)
    if x is not None:
        return x
    n, k = b.shape
    buf = np.full((n, 8), pad, dtype=np.uint8)
    buf[:, 8 - k :] = b
    return buf.view(">u8").reshape(n).astype(np.uint64)


def _u64_in_place(b: np.ndarray, pad: int) -> np.ndarray | None:
    """:func:`_u64` from words read in place (:func:`_words`); None when the field is not a slice of a block."""
    k = b.shape[1]
    words = _words(b)
    if words is None:
        return None
    x, shift = words
    if shift:
        x >>= _U(shift)
    elif k < 8:
        x &= _U((1 << (8 * k)) - 1)
    if k < 8 and pad:
        x |= _U(int.from_bytes(bytes([pad]) * (8 - k), "big") << (8 * k))
    return x


def _words(b: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The 8 bytes around each row of a field ``uint8[n, k<=8]`` inside its block, as native uint64 words.

    A field is a column slice of the block's rows, so the 8 bytes that end where the field ends (or, near the
    start of the block, that start where it starts) are in the same buffer: one strided 8-byte load per row,
    with no copy of the field first. Returns the words and the right shift that aligns the field's last byte
    (0, or ``8 * (8 - k)`` for a word read from the field's start; a caller masks off the bytes before the
    field), or None when the field is not such a slice (the caller copies it).
    """
    n, k = b.shape
    base = b.base
    if (
        n == 0
        or not isinstance(base, np.ndarray)
        or base.dtype != np.uint8
        or not base.flags.c_contiguous
        or b.strides[1] != 1
        or b.strides[0] < 1
    ):
        return None
    flat = base.reshape(-1)
    start = b.__array_interface__["data"][0] - flat.__array_interface__["data"][0]
    step = b.strides[0]
    if start + k - 8 >= 0:
        first, shift = start + k - 8, 0
    else:
        first, shift = start, 8 * (8 - k)
    if first < 0 or first + (n - 1) * step + 8 > flat.size:
        return None
    rows = np.lib.stride_tricks.as_strided(flat[first:], shape=(n, 8), strides=(step, 1), writeable=False)
    return rows.view(">u8").reshape(n).astype(np.uint64), shift


def _bcd_pairs(d: np.ndarray) -> np.ndarray:
    """uint64 of 8 bytes, each a value 0-99 (most significant first) -> its integer value."""
    d = ((d >> _U(8)) & _B16) * _U(100) + (d & _B16)
    d = ((d >> _U(16)) & _B32) * _U(10000) + (d & _B32)
    return (d >> _U(32)) * _U(100000000) + (d & _B64)


def zoned_fast(b: np.ndarray, signed: bool, leading: bool, separate: bool, cp: CodePage) -> np.ndarray | None:
    """EBCDIC zoned fields of at most 8 digits, every record valid: signed int64 values.

    Trailing overpunch, no sign, or a separate sign (leading or trailing); not a leading overpunch.
    """
    n, k = b.shape
    if not cp.ebcdic or n == 0:
        return None
    if separate:
        if not signed or not 2 <= k <= 9:
            return None
        sb = b[:, 0] if leading else b[:, k - 1]
        x = _u64(b[:, 1:] if leading else b[:, : k - 1], 0xF0)
        d = x & _NIB_LO
        ok = ((x & _ZONES) == _ZONES) & (((d + _SIX) & _ZONES) == 0)  # every byte F0-F9
        neg = sb == cp.minus
        ok &= neg | (sb == cp.plus)
    else:
        if k > 8 or (leading and signed):
            return None
        x = _u64(b, 0xF0)
        d = x & _NIB_LO
        last_zone = (x >> _U(4)) & _U(0xF)
        ok = ((x & _U(0xF0F0F0F0F0F0F000)) == _U(0xF0F0F0F0F0F0F000)) & (((d + _SIX) & _ZONES) == 0)
        ok &= last_zone >= _U(0xA)
        neg = (last_zone == _U(0xD)) | (last_zone == _U(0xB))
        if not signed:
            ok &= ~neg
    if not ok.all():
        return None
    d = ((d >> _U(8)) & _B16) * _U(10) + (d & _B16)  # 4 lanes of 16 bits, 0-99 each
    d = ((d >> _U(16)) & _B32) * _U(100) + (d & _B32)  # 2 lanes of 32 bits, 0-9999 each
    v = ((d >> _U(32)) * _U(10000) + (d & _B64)).astype(np.int64)
    np.negative(v, out=v, where=neg)
    return v


def packed_fast(b: np.ndarray, digits: int, signed: bool) -> np.ndarray | None:
    """COMP-3 fields of at most 8 bytes (15 digits), every record valid: signed int64 values."""
    n, k = b.shape
    if k > 8 or n == 0:
        return None
    x = _u64(b, 0)
    sign = x & _U(0xF)
    x >>= _U(4)
    hi = (x >> _U(4)) & _NIB_LO
    lo = x & _NIB_LO
    ok = (((hi + _SIX) & _ZONES) == 0) & (((lo + _SIX) & _ZONES) == 0) & (sign >= _U(0xA))
    neg = (sign == _U(0xD)) | (sign == _U(0xB))
    if not signed:
        ok &= ~neg
    v = _bcd_pairs(hi * _U(10) + lo)
    if 2 * k - 1 > digits:
        ok &= v < _U(10**digits)
    if not ok.all():
        return None
    out = v.astype(np.int64)
    np.negative(out, out=out, where=neg)
    return out


def int64_array(v: np.ndarray, typ: pa.DataType, times: int = 0) -> pa.Array | None:
    """Arrow array of unscaled int64 values ``v * 10**times`` as ``typ`` (None when it may not fit 18 digits)."""
    if times:
        if times > 9:
            return None
        v = v * (10**times)
    if pa.types.is_integer(typ):
        return from_numpy(v, pa.int64())
    buf = np.empty((len(v), 2), dtype=np.int64)
    buf[:, 0] = v
    buf[:, 1] = v >> 63
    return pa.Array.from_buffers(typ, len(v), [None, pa.py_buffer(buf)])
