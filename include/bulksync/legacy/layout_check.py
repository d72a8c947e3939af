"""Self-check of a sized copybook layout: silent misalignment must be impossible.

The parser sizes every item (:func:`bulksync.legacy.copybook_parser._finish`). This module recomputes, from
the PICTURE text and the USAGE alone, the bytes of every elementary item, and checks for every record and
every REDEFINES branch that the fields tile the storage: each field starts where the one before it ended, a
group is exactly as long as the sum of its storage areas (an area: an item and the items that REDEFINE it,
as long as its longest branch), and the record as long as the sum of its fields. A mismatch is a
:class:`~bulksync.errors.SpecError` naming the copybook line and the clause, before any file is read.
"""

from __future__ import annotations

from bulksync.errors import SpecError
from bulksync.legacy.copybook_parser import Item
from bulksync.legacy.picture import storage_length


def expected_size(item: Item) -> int:
    """Bytes of one occurrence of an elementary item, from its PIC text and USAGE only."""
    if item.usage == "comp-1":
        return 4
    if item.usage == "comp-2":
        return 8
    pic = item.picture
    assert pic is not None
    if item.usage == "display":
        return storage_length(pic.text) + (1 if item.sign_separate else 0)
    nines = _nines(pic.text)
    if item.usage == "comp-3":
        return (nines + 2) // 2  # n digits and a sign nibble, rounded up to whole bytes
    return 2 if nines <= 4 else 4 if nines <= 9 else 8


def _nines(text: str) -> int:
    from bulksync.legacy.picture import expand

    return expand(text).count("9")


def _clause(item: Item) -> str:
    if item.children:
        return "the group's subordinate items"
    pic = item.picture
    usage = item.usage.upper()
    sign = " SIGN SEPARATE" if item.sign_separate else ""
    return f"PIC {pic.text if pic else '-'} USAGE {usage}{sign}"


def _fail(file: str, item: Item, message: str) -> SpecError:
    return SpecError(
        [
            (
                file,
                f"line {item.line}",
                f"{item.name or 'FILLER'} ({_clause(item)}): {message}; this is a bug in "
                "bulksync's copybook sizing, please report it with the copybook",
            )
        ]
    )


def _tile(file: str, item: Item, offset: int) -> int:
    """Check one occurrence of ``item`` laid out from ``offset``; returns where it ends."""
    if not item.children:
        want = expected_size(item)
        if item.size != want:
            raise _fail(file, item, f"sized {item.size} bytes but its PIC and USAGE take {want}")
        return offset + item.size
    pos = offset
    i = 0
    kids = item.children
    while i < len(kids):
        area = [kids[i]]
        j = i + 1
        while j < len(kids) and kids[j].redefines:
            area.append(kids[j])
            j += 1
        width = 0
        for branch in area:
            end = pos
            for _k in range(branch.occurs):
                start = end
                end = _tile(file, branch, start)
                if end - start != branch.size:
                    raise _fail(file, branch, f"its fields take {end - start} bytes but it is sized {branch.size}")
            width = max(width, end - pos)
        pos += width
        i = j
    if pos - offset != item.size:
        raise _fail(file, item, f"its fields take {pos - offset} bytes but it is sized {item.size}")
    return pos


def check_layout(file: str, record: Item) -> None:
    """Check a sized 01 record: every branch's fields tile its storage and sum to the record length.

    Raises:
        SpecError: a field or group whose size disagrees with its PIC, USAGE and subordinate items.
    """
    end = _tile(file, record, 0)
    if end != record.size:  # pragma: no cover - _tile checks the record itself
        raise _fail(file, record, f"the record's fields take {end} bytes but it is sized {record.size}")
