"""Each PICTURE / USAGE decoded from known byte patterns (written by hand, not by bulksync's encoder)."""

from __future__ import annotations

import struct
from decimal import Decimal

import pyarrow as pa
import pytest

from tests.unit.legacy.conftest import Decode, copybook


def values(decode: Decode, field: str, data: bytes, **options: object) -> list[object]:
    rows, _ = decode(copybook(field), data, **options)
    return [r["a"] for r in rows]


def errors(decode: Decode, field: str, data: bytes, **options: object) -> list[tuple[int, str, str]]:
    _, blocks = decode(copybook(field), data, **options)
    return [(e.record, e.raw, e.reason) for b in blocks for e in b.errors]


def test_packed_decimal_known_bytes(decode: Decode) -> None:
    data = bytes.fromhex("12345C12345D12345F00000C99999B404040000000")
    assert values(decode, "A PIC S9(5) COMP-3", data) == [12345, -12345, 12345, 0, -99999, None, None]
    assert values(decode, "A PIC S9(3)V99 COMP-3", data[:3]) == [Decimal("123.45")]


def test_packed_decimal_bad_nibble_and_sign(decode: Decode) -> None:
    data = bytes.fromhex("12345C1A345C12345712345D")
    assert values(decode, "A PIC S9(5) COMP-3", data) == [12345, None, None, -12345]
    assert errors(decode, "A PIC S9(5) COMP-3", data) == [
        (2, "1A345C", "bad packed nibble"),
        (3, "123457", "bad packed sign nibble"),
    ]
    assert errors(decode, "A PIC 9(5) COMP-3", bytes.fromhex("12345D")) == [
        (1, "12345D", "negative sign in an unsigned field")
    ]
    # an even digit count leaves the top nibble unused: it must be 0
    assert errors(decode, "A PIC S9(4) COMP-3", bytes.fromhex("12345C")) == [(1, "12345C", "value exceeds its PIC")]


def test_packed_38_digits_exact(decode: Decode) -> None:
    data = bytes.fromhex("0" + "12345678901234567890123456789012345678" + "D")
    rows, _ = decode(copybook("A PIC S9(28)V9(10) COMP-3"), data)
    assert rows == [{"a": Decimal("-1234567890123456789012345678.9012345678")}]


def test_zoned_overpunch_cp037(decode: Decode) -> None:
    data = "1234{1234J0012}1234A12345".encode("cp037") + bytes.fromhex("F1F2F3F4D5")
    assert values(decode, "A PIC S9(5)", data) == [12340, -12341, -120, 12341, 12345, -12345]
    # unsigned: C zone accepted as positive, D is refused
    assert values(decode, "A PIC 9(5)", "1234A1234J".encode("cp037")) == [12341, None]


def test_zoned_bad_sign_and_digit(decode: Decode) -> None:
    data = bytes.fromhex("F1F2F3F445F1F2C3F4F54040404040")
    assert values(decode, "A PIC S9(5)", data) == [None, None, None]
    assert errors(decode, "A PIC S9(5)", data) == [
        (1, "F1F2F3F445", "bad zoned sign"),
        (2, "F1F2C3F4F5", "bad zoned digit"),
    ]


def test_zoned_sign_leading_and_separate(decode: Decode) -> None:
    assert values(decode, "A PIC S9(3) SIGN LEADING", "J23{23".encode("cp037")) == [-123, 23]
    assert values(decode, "A PIC S9(3) SIGN LEADING SEPARATE", "-123+045".encode("cp037")) == [-123, 45]
    assert values(decode, "A PIC S9(3) SIGN TRAILING SEPARATE", "123-045+".encode("cp037")) == [-123, 45]
    assert errors(decode, "A PIC S9(3) SIGN LEADING SEPARATE", "*123".encode("cp037")) == [
        (1, "5CF1F2F3", "bad separate sign character")
    ]


def test_zoned_ascii_overpunch(decode: Decode) -> None:
    data = b"1234{1234}1234J123451234p"
    assert values(decode, "A PIC S9(5)", data, code_page="ascii") == [12340, -12340, -12341, 12345, -12340]


def test_binary_big_endian_signed_unsigned_and_comp5(decode: Decode) -> None:
    assert values(decode, "A PIC S9(4) COMP", struct.pack(">hh", -2, 1234)) == [-2, 1234]
    assert values(decode, "A PIC 9(4) BINARY", struct.pack(">H", 9999)) == [9999]
    assert values(decode, "A PIC S9(9) COMP-4", struct.pack(">i", -123456789)) == [-123456789]
    assert values(decode, "A PIC S9(7)V99 COMP", struct.pack(">i", -12345)) == [Decimal("-123.45")]
    assert values(decode, "A PIC S9(18) COMP", struct.pack(">q", -(10**18 - 1))) == [-(10**18 - 1)]
    # COMP is capped by its PIC; COMP-5 holds the whole binary range
    assert errors(decode, "A PIC S9(4) COMP", struct.pack(">h", 12345)) == [(1, "3039", "value exceeds its PIC")]
    assert values(decode, "A PIC S9(4) COMP-5", struct.pack(">h", 32767)) == [32767]
    assert values(decode, "A PIC S9(4) COMP-5", struct.pack("<h", -300), comp5_byte_order="little") == [-300]


def test_ibm_hex_float(decode: Decode) -> None:
    # 0x41100000 = 1.0, 0xC276A000 = -118.625, 0x40800000 = 0.5 (IBM System/360 examples)
    assert values(decode, "A COMP-1", bytes.fromhex("41100000C276A00040800000")) == [1.0, -118.625, 0.5]
    assert values(decode, "A COMP-2", bytes.fromhex("4110000000000000C276A00000000000")) == [1.0, -118.625]
    assert values(decode, "A COMP-2", struct.pack(">d", 2.5), float_format="ieee") == [2.5]


@pytest.mark.parametrize(
    ("code_page", "text"),
    [("cp037", "Hello World"), ("cp500", "[Zürich]!"), ("cp273", "Straße {Ä}"), ("cp1140", "Preis 5 €")],
)
def test_text_code_pages(decode: Decode, code_page: str, text: str) -> None:
    data = text.ljust(12).encode(code_page)
    assert values(decode, "A PIC X(12)", data, code_page=code_page) == [text]


def test_text_trim_policies_and_low_values(decode: Decode) -> None:
    data = "  ab c  ".encode("cp037") + bytes(8)
    assert values(decode, "A PIC X(8)", data) == ["  ab c", ""]
    assert values(decode, "A PIC X(8)", data, trim="both") == ["ab c", ""]
    assert values(decode, "A PIC X(8)", data, trim="none") == ["  ab c  ", " " * 8]


def test_p_scaling_and_editing_pictures(decode: Decode) -> None:
    assert values(decode, "A PIC 999PP", "123".encode("cp037")) == [12300]
    assert values(decode, "A PIC SVPP99", "1J".encode("cp037")) == [Decimal("-0.0011")]
    assert values(decode, "A PIC -Z,ZZ9.99", "-1,234.50".encode("cp037")) == [Decimal("-1234.50")]
    assert values(decode, "A PIC -Z,ZZ9.99", "-1,234.50".encode("cp037"), edited_numbers="text") == ["-1,234.50"]


def test_arrow_types(decode: Decode) -> None:
    text = copybook("A PIC S9(18)", "B PIC S9(19)", "C PIC S9(5)V99 COMP-3", "D PIC X(2)", "E COMP-2",
                    "F PIC S9(18) COMP-5")  # fmt: skip
    data = "1" * 18 + "2" * 19
    raw = data.encode("cp037") + bytes.fromhex("0012345C") + "ab".encode("cp037") + bytes(8) + bytes(8)
    rows, blocks = decode(text, raw)
    assert blocks[0].batch.schema == pa.schema(
        [("a", pa.int64()), ("b", pa.decimal128(19, 0)), ("c", pa.decimal128(7, 2)), ("d", pa.string()),
         ("e", pa.float64()), ("f", pa.int64())]
    )  # fmt: skip
    assert rows == [{"a": int("1" * 18), "b": Decimal("2" * 19), "c": Decimal("123.45"), "d": "ab", "e": 0.0, "f": 0}]


@pytest.mark.parametrize("width", range(1, 9))
def test_fast_zoned_and_packed_paths_equal_the_general_decoders(width: int) -> None:
    """The whole-field (SWAR) fast paths give the general decoders' values, and step aside on any bad record."""
    import numpy as np

    from bulksync.legacy import decoders as dec
    from bulksync.legacy.codepages import code_page

    cp = code_page("cp037")
    rng = np.random.default_rng(width)
    n = 2000
    digits = rng.integers(0, 10, size=(n, width), dtype=np.uint8)
    zoned = (0xF0 | digits).astype(np.uint8)
    zoned[:, -1] = np.where(rng.random(n) < 0.5, 0xD0, rng.choice([0xC0, 0xF0, 0xA0, 0xE0, 0xB0], n)) | digits[:, -1]
    for signed in (True, False):
        data = zoned if signed else (0xF0 | digits).astype(np.uint8)
        fast = dec.zoned_fast(data, signed, False, False, cp)
        d, neg, valid, _r = dec.zoned(data, signed, False, False, cp)
        assert fast is not None and valid.all()
        want = dec._horner(d) if width <= 18 else None
        assert want is not None
        assert np.array_equal(fast, np.where(neg, -want, want))
    bad = zoned.copy()
    bad[7, 0] = 0x7A
    assert dec.zoned_fast(bad, True, False, False, cp) is None
    nibbles = rng.integers(0, 10, size=(n, 2 * width - 1), dtype=np.uint8)
    sign = rng.choice([0xC, 0xD, 0xF, 0xA, 0xB, 0xE], n).astype(np.uint8)
    allnib = np.concatenate([nibbles, sign[:, None]], axis=1)
    packed = ((allnib[:, 0::2] << 4) | allnib[:, 1::2]).astype(np.uint8)
    for pic_digits in {2 * width - 1, max(2 * width - 2, 1)}:
        fast = dec.packed_fast(packed, pic_digits, True)
        d, neg, valid, _r = dec.packed(packed, pic_digits, True, cp)
        if not valid.all():
            assert fast is None  # an even digit count with a non-zero first nibble: a real error, general path
            continue
        want = dec._horner(d)
        assert fast is not None and np.array_equal(fast, np.where(neg, -want, want))
    bad = packed.copy()
    bad[3, -1] = (bad[3, -1] & 0xF0) | 0x3
    assert dec.packed_fast(bad, 2 * width - 1, True) is None


@pytest.mark.parametrize("width", range(2, 10))
@pytest.mark.parametrize("leading", [True, False])
def test_fast_separate_sign_path_equals_the_general_decoder(width: int, leading: bool) -> None:
    """SIGN SEPARATE (leading / trailing) through the fast path: the general decoder's values; any bad digit,
    zone or sign character sends the block to the general decoder (which names it)."""
    import numpy as np

    from bulksync.legacy import decoders as dec
    from bulksync.legacy.codepages import code_page

    cp = code_page("cp037")
    rng = np.random.default_rng(100 + width)
    n = 2000
    body = (0xF0 | rng.integers(0, 10, size=(n, width - 1), dtype=np.uint8)).astype(np.uint8)
    sign = rng.choice(np.array([cp.plus, cp.minus], dtype=np.uint8), n)[:, None]
    data = np.concatenate([sign, body] if leading else [body, sign], axis=1)
    fast = dec.zoned_fast(data, True, leading, True, cp)
    d, neg, valid, _r = dec.zoned(data, True, leading, True, cp)
    assert fast is not None and valid.all()
    want = dec._horner(d)
    assert np.array_equal(fast, np.where(neg, -want, want))
    sign_at = 0 if leading else width - 1
    digit_at = 1 if leading else 0
    for pos, byte in ((sign_at, 0x40), (sign_at, 0xF1), (digit_at, 0xC1), (digit_at, 0xFA), (digit_at, 0x40)):
        bad = data.copy()
        bad[11, pos] = byte
        assert dec.zoned_fast(bad, True, leading, True, cp) is None
        assert not dec.zoned(bad, True, leading, True, cp)[2][11]
    assert dec.zoned_fast(data, False, leading, True, cp) is None


def test_words_read_in_place_equal_a_copy() -> None:
    """``_u64`` reads a field's 8-byte words in place from its block (either side of the field) or copies it;
    the values are the same for every offset, width, row step and block the field may come from."""
    import numpy as np

    from bulksync.legacy import decoders as dec

    rng = np.random.default_rng(7)

    def copied(b: np.ndarray, pad: int) -> np.ndarray:
        buf = np.full((b.shape[0], 8), pad, dtype=np.uint8)
        buf[:, 8 - b.shape[1] :] = b
        return buf.view(">u8").reshape(-1).astype(np.uint64)

    for record in (1, 3, 8, 9, 20):
        for n in (1, 2, 7):
            raw = rng.integers(0, 256, (n, record), dtype=np.uint8)
            flat = np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(n, -1)
            sources = (raw, raw[1:], raw[::2], raw[[0] * n], flat)
            for off in range(record):
                for k in range(min(8, record - off) + 1):
                    for src in sources:
                        b = src[:, off : off + k]
                        if len(b):
                            for pad in (0, 0xF0):
                                assert np.array_equal(dec._u64(b, pad), copied(b, pad)), (record, n, off, k)


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_binary_read_in_place_equals_a_copy(k: int) -> None:
    """Big-endian COMP fields read in place from their block give the values of a contiguous copy."""
    import numpy as np

    from bulksync.legacy import decoders as dec

    raw = np.random.default_rng(k).integers(0, 256, (500, 3 + k + 8), dtype=np.uint8)
    raw[:3, 3 : 3 + k] = [[0xFF] * k, [0x80] + [0] * (k - 1), [0x7F] + [0xFF] * (k - 1)]
    field = raw[:, 3 : 3 + k]
    own = field.copy()  # owns its bytes: decoded from a contiguous copy, as before
    assert dec._u64_in_place(field, 0) is not None and dec._u64_in_place(own, 0) is None
    for signed in (True, False):
        for digits in (None, 2 * k):
            got = dec.binary(field, signed, True, digits)
            want = dec.binary(own, signed, True, digits)
            for g, w in zip(got, want, strict=True):
                assert np.array_equal(g, w)


@pytest.mark.parametrize("trim", ["right", "both", "none"])
def test_text_trim_when_only_one_end_has_spaces(trim: str) -> None:
    """Trimming is skipped only when no row starts (both) or ends with a space; accented rows keep their offsets."""
    import numpy as np

    from bulksync.legacy import decoders as dec
    from bulksync.legacy.codepages import code_page

    cp = code_page("cp037")
    values = ["ABCD", " ABC", "ÄBCÉ", "A\u00e9 Z"]  # no row ends with a space
    if trim != "right":
        values.append("  \u00fc ")
    b = np.frombuffer("".join(values).encode("cp037"), dtype=np.uint8).reshape(len(values), 4)
    arr, bad = dec.text(b, cp, trim)
    strip = {"right": str.rstrip, "both": str.strip, "none": str}[trim]
    assert arr.to_pylist() == [strip(v) for v in values] and bad == 0
