"""Code page translation tables (256 entries) for text and zoned fields.

Every supported code page is single-byte: ``cp037`` (US/Canada EBCDIC), ``cp500`` (international),
``cp273`` (German/Austrian), ``cp875`` (Greek), ``cp1047`` (Latin-1 / Open Systems), the euro variants
``cp1140`` (cp037), ``cp1141`` (cp273), ``cp1142`` (Denmark/Norway), ``cp1143`` (Finland/Sweden), ``cp1144``
(Italy), ``cp1145`` (Spain), ``cp1146`` (UK), ``cp1147`` (France), ``cp1148`` (cp500), ``cp1149`` (Iceland), and
``ascii``. Python's codecs give the tables where it has them; cp1047 and cp1141-cp1149 are shipped in
:mod:`bulksync.legacy.codepage_tables`. Bytes that map to a control character become U+FFFD and count as
unprintable, except LOW-VALUES (``x'00'``) and HIGH-VALUES (``x'FF'``), which read as spaces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

CODE_PAGES = (
    "cp037", "cp500", "cp273", "cp875", "cp1047", "cp1140", "cp1141", "cp1142", "cp1143", "cp1144", "cp1145",
    "cp1146", "cp1147", "cp1148", "cp1149", "ascii",
)  # fmt: skip
REPLACEMENT = 0xFFFD
BAD_CODE = 0x80  # intermediate code of an unprintable byte: a C1 control, never a character here (those read U+FFFD)


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
            character, ``x'80'`` for U+FFFD (so one ``max() < 0x80`` tells plain ASCII), and a free Latin-1
            slot for a character outside Latin-1 (the euro sign); None when there are too many such
            characters: text then decodes through ``decoding``.
        decoding: the 256 characters of bytes 0x00-0xFF as read (a ``codecs.charmap_decode`` table).
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
    translate: bytes | None
    expand: np.ndarray
    expand_len: np.ndarray
    specials: tuple[tuple[str, str], ...] = ()
    decoding: str = ""


@functools.cache
def code_page(name: str) -> CodePage:
    """The tables of a code page (cached)."""
    if name not in CODE_PAGES:
        raise ValueError(f"unknown code page {name!r} (supported: {', '.join(CODE_PAGES)})")
    chars = _chars(name)
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
    specials: list[tuple[str, str]] = [(chr(BAD_CODE), chr(REPLACEMENT))]
    fits = sum(1 for cp in cps.tolist() if cp >= 0x100 and cp != REPLACEMENT) <= len(free)
    for b, cp in enumerate(cps.tolist()):
        if not fits:
            break
        if cp == REPLACEMENT:
            inter[b] = BAD_CODE
        elif cp < 0x100:
            inter[b] = cp
        else:  # the euro sign of cp1140: a Latin-1 slot this code page does not use
            slot = free.pop(0)
            inter[b] = slot
            specials.append((chr(slot), chr(cp)))
            enc = chr(cp).encode("utf-8")
            expand[slot, : len(enc)] = list(enc)
            expand_len[slot] = len(enc)
    expand[BAD_CODE] = list(chr(REPLACEMENT).encode("utf-8"))
    expand_len[BAD_CODE] = 3
    return CodePage(
        name=name,
        ebcdic=name != "ascii",
        codepoints=cps,
        utf8=utf8,
        utf8_len=utf8_len,
        bad=bad,
        space=chars.index(" "),
        plus=chars.index("+"),
        minus=chars.index("-"),
        translate=inter.tobytes() if fits else None,
        expand=expand,
        expand_len=expand_len,
        specials=tuple(specials),
        decoding="".join(chr(c) for c in cps.tolist()),
    )


def _chars(name: str) -> str:
    """The 256 characters of a code page's bytes (U+FFFD where a byte has none)."""
    from bulksync.legacy.codepage_tables import TABLES

    if name in TABLES:
        return TABLES[name]
    return bytes(range(256)).decode(name, errors="replace")


def encode_text(text: str, name: str) -> bytes:
    """Encode text in a code page (used by the test-file encoder)."""
    if name == "ascii":
        return text.encode("ascii")
    from bulksync.legacy.codepage_tables import TABLES

    if name in TABLES:
        table = {ch: b for b, ch in enumerate(TABLES[name])}
        return bytes(table[ch] for ch in text)
    return text.encode(name)
