"""COBOL PICTURE strings: expansion of repeats and classification (text, numeric, edited).

A numeric picture (``S``, ``9``, ``V``, ``P``) carries its digit count, its sign and its decimal scale.
``P`` scaling: ``999PP`` holds hundreds (scale -2), ``PP999`` / ``VPP999`` holds a fraction below 0.001
(scale 5). A *numeric-edited* picture (``Z``, ``*``, ``+``, ``-``, ``CR``, ``DB``, ``$``, ``.``, ``,``, ``B``,
``0``, ``/`` with digit positions, and explicit-point pictures such as ``9(8).9(2)``) is decoded as a number
by :mod:`bulksync.legacy.edited`; an alphanumeric-edited one (``X`` / ``A`` with ``B0/``) and a
floating-point edited one (``E``) are text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_REPEAT = re.compile(r"(.)\((\d+)\)")
_EDIT_SYMBOLS = set("ZB0/,.+-*$E") | {"C", "D", "R"}
_NUMERIC_EDIT = set("9ZB0/,.+-*$CRDVS")

PictureKind = Literal["alnum", "numeric", "edited", "numeric_edited"]


class PictureError(ValueError):
    """A PICTURE string that bulksync cannot read (the parser adds file and line)."""


@dataclass(frozen=True)
class Picture:
    """A parsed PICTURE clause.

    Attributes:
        text: the picture as written (upper case).
        kind: ``alnum`` (X, A, mixed with 9), ``numeric`` (9, S, V, P), ``numeric_edited`` (decoded as a
            number) or ``edited`` (alphanumeric or floating-point edited: shown as text).
        length: display length in characters (storage size for USAGE DISPLAY without SIGN SEPARATE).
        digits: number of digit positions stored (``9``; for numeric-edited every digit position).
        scale: decimal places of the value (``V``, left ``P``, digit positions after the point of an
            edited picture); negative for right ``P`` s.
        signed: the picture starts with ``S`` (or, numeric-edited, holds a sign: ``+ - CR DB``).
        p: number of ``P`` (assumed decimal position) symbols.
    """

    text: str
    kind: PictureKind
    length: int
    digits: int = 0
    scale: int = 0
    signed: bool = False

    p: int = 0

    @property
    def precision(self) -> int:
        """Decimal precision of the value (digits plus assumed ``P`` positions)."""
        return self.digits + self.p


def expand(text: str) -> str:
    """``S9(3)V9(2)`` -> ``S999V99``."""
    try:
        return _REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), text.upper())
    except ValueError as e:  # pragma: no cover - the regex only matches digits
        raise PictureError(f"bad repeat count in PIC {text}") from e


def storage_length(text: str) -> int:
    """Character positions a DISPLAY picture occupies, counted from the text alone (``S V P`` take none).

    Used by the layout self-check, independently of the classification in :func:`parse_picture`.
    """
    pic = expand(text)
    return sum(1 for ch in pic if ch not in "SVP")


def parse_picture(text: str, decimal_comma: bool = False) -> Picture:
    """Parse a PICTURE string (``decimal_comma``: ``DECIMAL-POINT IS COMMA``, ``,`` is the point).

    Raises:
        PictureError: unknown symbols, unbalanced parentheses, ``N`` / ``G`` (national / DBCS) pictures.
    """
    upper = text.upper()
    if upper.count("(") != upper.count(")") or re.search(r"\((?!\d+\))", upper):
        raise PictureError(f"PIC {text}: unbalanced or empty repeat count in parentheses")
    pic = expand(upper)
    if not pic:
        raise PictureError("empty PIC")
    if set(pic) & set("NG"):
        raise PictureError(f"PIC {text}: national / DBCS pictures (N, G) are not supported")
    chars = set(pic)
    if chars <= set("XA9") and chars & set("XA"):
        return Picture(upper, "alnum", len(pic))
    if chars <= set("S9VP"):
        if pic.count("S") > 1 or ("S" in pic and not pic.startswith("S")) or pic.count("V") > 1:
            raise PictureError(f"PIC {text}: S must come first and S / V may appear once")
        body = pic.lstrip("S")
        digits = body.count("9")
        if not digits:
            raise PictureError(f"PIC {text}: a numeric picture needs at least one 9")
        core = body.replace("V", "")
        p_left = len(core) - len(core.lstrip("P"))
        p_right = len(core) - len(core.rstrip("P"))
        if "P" in core.strip("P"):
            raise PictureError(f"PIC {text}: P may stand only at the left or the right end of the digits")
        if p_left:
            scale = p_left + digits
        elif p_right:
            scale = -p_right
        else:
            scale = len(body.split("V")[1]) if "V" in body else 0
        if digits > 38:
            raise PictureError(f"PIC {text}: more than 38 digits")
        return Picture(upper, "numeric", digits, digits, scale, pic.startswith("S"), p_left + p_right)
    unknown = chars - _EDIT_SYMBOLS - set("X9AVS")
    if unknown:
        raise PictureError(f"PIC {text}: unknown symbol(s) {''.join(sorted(unknown))}")
    length = len(pic) - pic.count("V") - pic.count("S")
    if chars <= _NUMERIC_EDIT:
        from bulksync.legacy.edited import edited_layout

        try:
            lay = edited_layout(upper, decimal_comma)
        except PictureError:
            raise
        return Picture(upper, "numeric_edited", length, lay.digits, lay.scale, lay.signed)
    return Picture(upper, "edited", length)
