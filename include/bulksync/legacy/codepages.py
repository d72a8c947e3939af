"""Code page translation tables (256 entries) for text and zoned fields.

Every supported code page is single-byte: ``cp037`` (US/Canada EBCDIC), ``cp500`` (international),
``cp273`` (German/Austrian), ``cp1140`` (cp037 with the euro sign) and ``ascii``. Bytes that map to a
control character become U+FFFD and count as unprintable, except LOW-VALUES (``x'00'``) and
HIGH-VALUES (``x'FF'``), which read as spaces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

CODE_PAGES = ("cp037", "cp500", "cp273", "cp1140", "ascii")
REPLACEMENT = 0xFFFD


@dataclass(frozen=True)
class CodePage:
    """Lookup tables of one code page.

    Attributes:
        name: the code page.
        ebcdic: zoned digits use zone ``F`` (EBCDIC) rather than ``3`` (ASCII).
        codepoints: byte -> Unicode code point (uint32[256]).
        utf8: byte -> its UTF-8 encoding, zero padded (uint8[256, 3]).
        utf8_len: byte -> length of that encoding (uint8[256]).
        ascii_only: every byte maps to one UTF-8 byte (no accented letters).
        bad: byte -> maps to U+FFFD (bool[256]).
        translate: byte -> one-byte intermediate code (``bytes.translate`` table): the Latin-1 code of the
            character, ``x'1A'`` for U+FFFD, and a free Latin-1 slot for the euro sign of cp1140.
        expand: intermediate code -> UTF-8 (uint8[256, 3]); expand_len: its length (uint8[256]).
        space: the byte of a space.
        plus / minus: the bytes of ``+`` and ``-`` (SIGN SEPARATE).
    """

    name: str
    ebcdic: bool
    codepoints: np.ndarray
    utf8: np.ndarray
    utf8_len: np.ndarray
    bad: np.ndarray
    space: int
    plus: int
    minus: int
    translate: bytes
    expand: np.ndarray
    expand_len: np.ndarray
    specials: tuple[tuple[str, str], ...] = ()


@functools.cache
def code_page(name: str) -> CodePage:
    """The tables of a code page (cached)."""
    if name not in CODE_PAGES:
        raise ValueError(f"unknown code page {name!r} (supported: {', '.join(CODE_PAGES)})")
    chars = bytes(range(256)).decode(name, errors="replace")
    cps = np.array([ord(c) for c in chars], dtype=np.uint32)
    control = (cps < 0x20) | ((cps >= 0x7F) & (cps < 0xA0))
    cps[control] = REPLACEMENT
    cps[0x00] = cps[0xFF] = 0x20
    bad = cps == REPLACEMENT
    utf8 = np.zeros((256, 3), dtype=np.uint8)
    utf8_len = np.zeros(256, dtype=np.uint8)
    for b, cp in enumerate(cps.tolist()):
        enc = chr(cp).encode("utf-8")
        utf8[b, : len(enc)] = list(enc)
        utf8_len[b] = len(enc)
    inter = np.zeros(256, dtype=np.uint8)
    expand = np.zeros((256, 3), dtype=np.uint8)
    expand_len = np.zeros(256, dtype=np.uint8)
    for code in range(256):
        enc = chr(code).encode("utf-8")
        expand[code, : len(enc)] = list(enc)
        expand_len[code] = len(enc)
    free = [c for c in range(0xA0, 0x100) if c not in set(cps.tolist())]
    specials: list[tuple[str, str]] = [("\x1a", chr(REPLACEMENT))]
    for b, cp in enumerate(cps.tolist()):
        if cp == REPLACEMENT:
            inter[b] = 0x1A
        elif cp < 0x100:
            inter[b] = cp
        else:  # the euro sign of cp1140: a Latin-1 slot this code page does not use
            slot = free.pop(0)
            inter[b] = slot
            specials.append((chr(slot), chr(cp)))
            enc = chr(cp).encode("utf-8")
            expand[slot, : len(enc)] = list(enc)
            expand_len[slot] = len(enc)
    expand[0x1A] = list(chr(REPLACEMENT).encode("utf-8"))
    expand_len[0x1A] = 3
    encode = "latin-1" if name == "ascii" else name
    return CodePage(
        name=name,
        ebcdic=name != "ascii",
        codepoints=cps,
        utf8=utf8,
        utf8_len=utf8_len,
        bad=bad,
        space=" ".encode(encode)[0],
        plus="+".encode(encode)[0],
        minus="-".encode(encode)[0],
        translate=inter.tobytes(),
        expand=expand,
        expand_len=expand_len,
        specials=tuple(specials),
    )


def encode_text(text: str, name: str) -> bytes:
    """Encode text in a code page (used by the test-file encoder)."""
    return text.encode("ascii" if name == "ascii" else name)
