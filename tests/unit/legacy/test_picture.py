"""PICTURE strings: expansion and classification, including P scaling and editing pictures."""

from __future__ import annotations

import pytest

from bulksync.legacy.picture import Picture, PictureError, parse_picture


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X(10)", Picture("X(10)", "alnum", 10)),
        ("A(3)", Picture("A(3)", "alnum", 3)),
        ("XX9", Picture("XX9", "alnum", 3)),
        ("9(5)", Picture("9(5)", "numeric", 5, 5, 0, False)),
        ("S9(7)V99", Picture("S9(7)V99", "numeric", 9, 9, 2, True)),
        ("SV99", Picture("SV99", "numeric", 2, 2, 2, True)),
        ("999PP", Picture("999PP", "numeric", 3, 3, -2, False, 2)),
        ("PP999", Picture("PP999", "numeric", 3, 3, 5, False, 2)),
        ("SVPP99", Picture("SVPP99", "numeric", 2, 2, 4, True, 2)),
        ("S9(18)", Picture("S9(18)", "numeric", 18, 18, 0, True)),
        ("-Z,ZZ9.99CR", Picture("-Z,ZZ9.99CR", "numeric_edited", 11, 6, 2, True)),
        ("ZZ/99/99", Picture("ZZ/99/99", "numeric_edited", 8, 6, 0, False)),
        ("$***,**9.99", Picture("$***,**9.99", "numeric_edited", 11, 8, 2, False)),
        ("XXBXX/X", Picture("XXBXX/X", "edited", 7)),
        ("+9.9(5)E+99", Picture("+9.9(5)E+99", "edited", 12)),
    ],
)
def test_pictures(text: str, expected: Picture) -> None:
    assert parse_picture(text) == expected


def test_precision_counts_p_positions() -> None:
    assert parse_picture("999PP").precision == 5
    assert parse_picture("PP999").precision == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9(5", "unbalanced"),
        ("X()", "unbalanced"),
        ("N(10)", "national"),
        ("9S99", "S must come first"),
        ("9V9V9", "S must come first"),
        ("9P9", "P may stand only"),
        ("9(39)", "more than 38 digits"),
        ("XQ", "unknown symbol"),
    ],
)
def test_bad_pictures(text: str, message: str) -> None:
    with pytest.raises(PictureError, match=message):
        parse_picture(text)
