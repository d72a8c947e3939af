"""Code pages: every byte of every supported EBCDIC code page against an independent codec.

cp1047 and cp1141-cp1149 are tables bulksync ships (Python has no codec); they are compared with the
``ebcdic`` package's codecs (generated from IBM's / ICU's mappings), the others with Python's own codecs.
The euro sign sits where IBM's charts for CCSID 1140-1149 put it.
"""

from __future__ import annotations

import codecs

import ebcdic  # noqa: F401 - registers the codecs Python lacks
import numpy as np
import pytest

from bulksync.legacy import decoders as dec
from bulksync.legacy.codepages import CODE_PAGES, REPLACEMENT, code_page
from tests.unit.legacy.conftest import Decode

EBCDIC = [c for c in CODE_PAGES if c != "ascii"]
EURO = {"cp1140": 0x9F, "cp1141": 0x9F, "cp1142": 0x5A, "cp1143": 0x5A, "cp1144": 0x9F, "cp1145": 0x9F,
        "cp1146": 0x9F, "cp1147": 0x9F, "cp1148": 0x9F, "cp1149": 0x9F}  # fmt: skip


@pytest.mark.parametrize("name", EBCDIC)
def test_every_byte_matches_the_reference_codec(name: str) -> None:
    reference = bytes(range(256)).decode(name)  # Python's codec, or the ebcdic package's
    cp = code_page(name)
    for byte, ch in enumerate(reference):
        got = int(cp.codepoints[byte])
        if byte in (0x00, 0xFF):
            assert got == 0x20  # LOW-VALUES / HIGH-VALUES read as spaces
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            assert got == REPLACEMENT
        else:
            assert chr(got) == ch, (name, hex(byte))
    if name in EURO:
        assert reference[EURO[name]] == "€" and chr(int(cp.codepoints[EURO[name]])) == "€"


@pytest.mark.parametrize("name", EBCDIC)
def test_text_fields_decode_every_printable_character(decode: Decode, name: str) -> None:
    chars = "".join(ch for ch in bytes(range(0x41, 0xFF)).decode(name) if ch.isprintable() and ch != " ")
    chars = chars[:60]
    data = codecs.encode(chars, name)
    rows, blocks = decode(f"       01  REC.\n           05  A PIC X({len(data)}).\n", data, code_page=name,
                          code_page_check=False)  # fmt: skip
    assert rows == [{"a": chars}] and blocks[0].unprintable == 0


def test_charmap_path_equals_the_translate_path() -> None:
    cp = code_page("cp875")
    b = np.frombuffer(bytes(range(256)) * 3, dtype=np.uint8).reshape(3, 256)
    fast, bad_fast = dec.text(b, cp, "right")
    slow, bad_slow = dec._text_charmap(b, cp, "right")
    assert fast.equals(slow) and bad_fast == bad_slow


@pytest.mark.parametrize("name", EBCDIC)
def test_zoned_and_separate_signs_in_every_code_page(decode: Decode, name: str) -> None:
    text = "       01  REC.\n           05  A PIC S9(3).\n           05  B PIC S9(3) SIGN LEADING SEPARATE.\n"
    data = bytes([0xF1, 0xF2, 0xD3]) + codecs.encode("-045", name)
    rows, _ = decode(text, data, code_page=name)
    assert rows == [{"a": -123, "b": -45}]
