"""Salesforce record ids: 18 characters, key prefix, base-62 counter and the case-safe checksum.

The sandbox numbers the records of an object 0, 1, 2, … and derives each id from that index, so
ids sort (ordinal string order) exactly like their indices. That is what makes ``Id > '…'`` ranges
cheap: a literal id maps back to an index range.
"""

from __future__ import annotations

import numpy as np

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ALPHA = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_CHECK = np.frombuffer(_CHECKSUM.encode(), dtype=np.uint8)
_POD = "5J0"  # instance/reserved characters between the key prefix and the counter
COUNTER_DIGITS = 9
_WEIGHTS = np.array([1, 2, 4, 8, 16], dtype=np.uint8)


def checksum(id15: str) -> str:
    """Return the three-character case-safe suffix of a 15-character id."""
    out = []
    for block in range(3):
        bits = sum(1 << j for j, ch in enumerate(id15[block * 5 : block * 5 + 5]) if "A" <= ch <= "Z")
        out.append(_CHECKSUM[bits])
    return "".join(out)


def to_18(value: str) -> str:
    """Normalise a 15- or 18-character id to 18 characters (other strings are returned unchanged)."""
    if len(value) == 15 and value.isalnum():
        return value + checksum(value)
    return value


def make_id(prefix: str, index: int) -> str:
    """The 18-character id of record ``index`` of the object with key prefix ``prefix``."""
    n = index + 1
    digits = []
    for _ in range(COUNTER_DIGITS):
        n, r = divmod(n, 62)
        digits.append(ALPHABET[r])
    id15 = prefix + _POD + "".join(reversed(digits))
    return id15 + checksum(id15)


def make_ids(prefix: str, indices: np.ndarray) -> np.ndarray:
    """Vectorised :func:`make_id`: a numpy ``S18`` array of ids for ``indices``."""
    n = indices.astype(np.int64) + 1
    count = len(n)
    chars = np.empty((count, 18), dtype=np.uint8)
    head = np.frombuffer((prefix + _POD).encode(), dtype=np.uint8)
    chars[:, : len(head)] = head
    for pos in range(14, 14 - COUNTER_DIGITS, -1):
        chars[:, pos] = _ALPHA[n % 62]
        n //= 62
    upper = (chars[:, :15] >= 65) & (chars[:, :15] <= 90)
    for block in range(3):
        bits = (upper[:, block * 5 : block * 5 + 5] * _WEIGHTS).sum(axis=1)
        chars[:, 15 + block] = _CHECK[bits]
    return chars.reshape(-1).view("S18")


def index_of(prefix: str, value: str) -> int | None:
    """The record index an id stands for, or None when it is not an id of this object."""
    value = to_18(value)
    if len(value) != 18 or not value.startswith(prefix + _POD):
        return None
    counter = value[6:15]
    n = 0
    for ch in counter:
        pos = ALPHABET.find(ch)
        if pos < 0:
            return None
        n = n * 62 + pos
    if checksum(value[:15]) != value[15:]:
        return None
    return n - 1


def lower_bound(prefix: str, value: str, total: int) -> int:
    """The first index whose id is >= ``value`` (ordinal string order), in ``[0, total]``."""
    lo, hi = 0, total
    while lo < hi:
        mid = (lo + hi) // 2
        if make_id(prefix, mid) < value:
            lo = mid + 1
        else:
            hi = mid
    return lo
