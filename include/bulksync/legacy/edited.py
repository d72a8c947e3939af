"""Numeric-edited and explicit-point pictures (``+9(8)``, ``Z(8)-``, ``9(6).99-``, ``9(8).9(2)``, ``$**,**9.99CR``).

A numeric-edited field is stored as the characters a COBOL ``MOVE`` to it produced: digits, suppressed
positions (space, ``*``, a floating ``+ - $``), insertion characters (``, . B 0 /``) and a sign (``+ -``
fixed or floating, ``CR`` / ``DB`` at the end). The picture fixes where each of them stands, so decoding is a
gather of the digit positions and a test of the sign positions, vectorised over a block like the other
decoders; values are exact decimals with the picture's scale (digit positions after the point).

Rules (IBM Enterprise COBOL Language Reference, "PICTURE clause editing"):

* ``9`` is a digit; ``Z`` and ``*`` are digits or, suppressed, a space / ``*``;
* a floating string (two or more ``+``, ``-`` or ``$``): the first symbol holds only the sign or currency,
  each further one is a digit position that may hold a digit, the floating symbol or a space;
* ``+`` / ``-`` once, at the left or right end: the sign position (``+`` shows ``+`` or ``-``; ``-`` shows ``-``
  or a space); ``CR`` / ``DB``: negative when present, spaces when positive;
* ``.`` is the point (``,`` with ``DECIMAL-POINT IS COMMA``), ``V`` an implied point; ``, B 0 /`` insert;
* ``S`` (outside the standard, found in copybooks of explicit-point fields such as ``S9(3).99``): the sign is
  overpunched on the last digit, as in a zoned field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bulksync.legacy.picture import PictureError, expand


@dataclass(frozen=True)
class EditedLayout:
    """Where the digits and signs of a numeric-edited picture stand (byte positions in the field).

    Attributes:
        digit_pos: byte position of each digit, most significant first.
        fill: per digit position, the characters that may stand there instead of a digit when suppressed
            (``""`` for ``9``, ``" "`` for ``Z``, ``"*"`` for ``*``, a space or the symbol for a floating string).
        sign_pos: positions that show ``-`` for a negative value (fixed or floating ``+`` / ``-``).
        crdb_pos: position of ``CR`` / ``DB`` (two bytes), or -1.
        overpunch: the last digit carries an overpunched sign (``S`` in the picture).
        zero_suppressed: every digit position may be suppressed (no ``9``): all spaces read as zero.
        digits / scale / signed: of the value.
        length: bytes of the field.
    """

    digit_pos: tuple[int, ...]
    fill: tuple[str, ...]
    sign_pos: tuple[int, ...]
    crdb_pos: int
    overpunch: bool
    zero_suppressed: bool
    digits: int
    scale: int
    signed: bool
    length: int


def edited_layout(text: str, decimal_comma: bool = False) -> EditedLayout:
    """Analyse a numeric-edited picture.

    Raises:
        PictureError: the picture has no digit position, or two points.
    """
    pic = expand(text)
    overpunch = pic.startswith("S")
    if "S" in pic[1:]:
        raise PictureError(f"PIC {text}: S may only come first")
    pic = pic.lstrip("S")
    crdb = -1
    if pic.endswith(("CR", "DB")):
        pic = pic[:-2]
        crdb = 0  # position fixed below
    if set(pic) & set("CRD"):
        raise PictureError(f"PIC {text}: CR / DB may only stand at the right end")
    point = "," if decimal_comma else "."
    floating = {s for s in "+-$" if pic.count(s) > 1}
    if len(floating) > 1:
        raise PictureError(f"PIC {text}: only one floating insertion symbol (+, - or $) may be used")
    digits: list[int] = []
    fill: list[str] = []
    signs: list[int] = []
    after_point = False
    scale = 0
    pos = 0
    seen_float = False
    points = 0
    for ch in pic:
        if ch == "V":
            after_point, points = True, points + 1
            continue
        if ch == "P":
            raise PictureError(f"PIC {text}: P in an edited picture is not supported")
        if ch in "9Z*" or (ch in floating and seen_float):
            digits.append(pos)
            fill.append(
                "" if ch == "9" else " " if ch == "Z" else "*" if ch == "*" else " +-" if ch == "+" else " " + ch
            )
            scale += after_point
        if ch in floating:
            seen_float = True
        if ch in "+-":
            signs.append(pos)
        if ch == point:
            after_point, points = True, points + 1
        pos += 1
    if points > 1:
        raise PictureError(f"PIC {text}: more than one decimal point")
    if not digits:
        raise PictureError(f"PIC {text}: a numeric-edited picture needs a digit position (9, Z, *)")
    if len(digits) > 38:
        raise PictureError(f"PIC {text}: more than 38 digits")
    if crdb >= 0:
        crdb = pos
        pos += 2
    return EditedLayout(
        digit_pos=tuple(digits),
        fill=tuple(fill),
        sign_pos=tuple(signs),
        crdb_pos=crdb,
        overpunch=overpunch,
        zero_suppressed="9" not in pic,
        digits=len(digits),
        scale=scale,
        signed=bool(signs) or crdb >= 0 or overpunch,
        length=pos,
    )


_DIGITS = np.full(256, 0xFF, dtype=np.uint8)
_DIGITS[0x30:0x3A] = np.arange(10, dtype=np.uint8)


def decode_edited(
    codes: np.ndarray, lay: EditedLayout, sign_digit: np.ndarray | None, sign_neg: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode a block of edited fields.

    Args:
        codes: ``uint8[n, length]`` of the field's characters translated to ASCII / Latin-1 codes.
        lay: the picture's layout.
        sign_digit / sign_neg: for an overpunched last digit, the digit and negative flag of each raw byte
            of that position (from the zoned tables), else None.

    Returns:
        (digits ``uint8[n, digits]``, negative, blank (all spaces), bad (a character that cannot stand there)).
    """
    n = codes.shape[0]
    at = codes[:, list(lay.digit_pos)]
    d = _DIGITS[at]
    for chars in set(lay.fill) - {""}:
        cols = [i for i, f in enumerate(lay.fill) if f == chars]
        sub = at[:, cols]
        suppressed = np.zeros(sub.shape, dtype=bool)
        for ch in chars:
            suppressed |= sub == ord(ch)
        part = d[:, cols]
        part[suppressed] = 0
        d[:, cols] = part
    bad = np.zeros(n, dtype=bool)
    neg = np.zeros(n, dtype=bool)
    if lay.overpunch and sign_digit is not None and sign_neg is not None:
        ok = sign_digit != 0xFF
        d[:, -1] = np.where(ok, sign_digit, d[:, -1])
        neg = sign_neg & ok
    bad |= (d == 0xFF).any(axis=1)
    d = np.where(d == 0xFF, 0, d).astype(np.uint8)
    digit_set = set(lay.digit_pos)
    for p in lay.sign_pos:
        c = codes[:, p]
        neg |= c == ord("-")
        if p not in digit_set:
            bad |= (c != ord("-")) & (c != ord("+")) & (c != ord(" "))
    if lay.crdb_pos >= 0:
        c0 = codes[:, lay.crdb_pos]
        c1 = codes[:, lay.crdb_pos + 1]
        minus = ((c0 == ord("C")) & (c1 == ord("R"))) | ((c0 == ord("D")) & (c1 == ord("B")))
        blank2 = (c0 == ord(" ")) & (c1 == ord(" "))
        bad |= ~minus & ~blank2
        neg |= minus
    blank = (codes == ord(" ")).all(axis=1)
    return d, neg, blank, bad
