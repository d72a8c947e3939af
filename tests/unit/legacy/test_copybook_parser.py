"""Copybook syntax: fixed columns 7-72, comments, continuation, levels, clauses, sizes; errors name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulksync.errors import SpecError
from bulksync.legacy.copybook_parser import Item, load_copybook, parse_copybook

COPYBOOKS = Path(__file__).resolve().parents[3] / "include" / "copybooks"


def fixed(*lines: str) -> str:
    """Lines written from column 8 (area A) with a sequence number, as a COBOL editor saves them."""
    return "\n".join(f"{i * 100:06d}{line}" for i, line in enumerate(lines, start=1))


def flat(item: Item) -> list[tuple[int, str | None, int, int]]:
    out = [(item.level, item.name, item.size, item.occurs)]
    for c in item.children:
        out.extend(flat(c))
    return out


def test_fixed_format_columns_comments_and_sequence_area() -> None:
    text = fixed(
        "* a comment line: 01 NOT-AN-ITEM PIC X.",
        "/ page eject comment",
        " 01  REC.",
        "     05  A        PIC X(3).".ljust(66) + "IGNORED!",
        "     05  B        PIC S9(5)V99 COMP-3.",
        "         88  B-ZERO VALUE 0.",
        "     05  C        PIC 9(4) BINARY.",
        "     05  D        PIC S9(12) COMP.",
        "     05  E        COMP-1.",
        "     05  F        USAGE IS COMPUTATIONAL-2.",
        "     05  FILLER   PIC X(2).",
        "     05  G        PIC S9(3) SIGN IS TRAILING SEPARATE CHARACTER.",
        "     05  H        PIC -ZZ9.99.",
    )
    layout = parse_copybook(text, "t.cpy")
    assert [r.name for r in layout.records] == ["REC"]
    assert flat(layout.records[0]) == [
        (1, "REC", 3 + 4 + 2 + 8 + 4 + 8 + 2 + 4 + 7, 1),
        (5, "A", 3, 1),
        (5, "B", 4, 1),
        (5, "C", 2, 1),
        (5, "D", 8, 1),
        (5, "E", 4, 1),
        (5, "F", 8, 1),
        (5, None, 2, 1),
        (5, "G", 4, 1),
        (5, "H", 7, 1),
    ]
    g = layout.records[0].children[7]
    assert (g.sign_separate, g.sign_leading) == (True, False)


def test_continuation_joins_a_split_word() -> None:
    text = "\n".join(
        [
            "       01  REC.",
            "           05  AMOUNT   PIC S9(7)V99 PACKED-DEC",
            "      -        IMAL.",
            "           05  NAME     VALUE 'A LONG LITERAL THAT IS CONTINUED ON THE NEXT LINE TO COLUMN 72",
            "      -    'HERE' PIC X(10).",
        ]
    )
    rec = parse_copybook(text, "t.cpy").records[0]
    assert [(c.name, c.usage, c.size) for c in rec.children] == [("AMOUNT", "comp-3", 5), ("NAME", "display", 10)]


def test_groups_occurs_redefines_odo_and_inherited_usage() -> None:
    text = fixed(
        " 01  REC.",
        "     05  N        PIC 9(2).",
        "     05  GRP      COMP-3.",
        "         10  X1   PIC S9(3).",
        "         10  X2   PIC S9(5).",
        "     05  ALT      REDEFINES GRP PIC X(7).",
        "     05  TAB      OCCURS 3 TIMES INDEXED BY IX.",
        "         10  T1   PIC X.",
        "         10  T2   PIC 99 OCCURS 2.",
        "     05  VAR      OCCURS 0 TO 4 TIMES DEPENDING ON N",
        "                  ASCENDING KEY IS V1.",
        "         10  V1   PIC X(2).",
    )
    rec = parse_copybook(text, "t.cpy").records[0]
    grp, alt, tab, var = rec.children[1:]
    assert [c.usage for c in grp.children] == ["comp-3", "comp-3"]
    assert (grp.size, alt.size, alt.redefines) == (5, 7, "GRP")
    assert (tab.occurs, tab.size, tab.children[1].occurs) == (3, 5, 2)
    assert (var.occurs_min, var.occurs, var.depending_on) == (0, 4, "N")
    assert rec.size == 2 + 7 + 15 + 8


def test_free_format_and_level_77() -> None:
    text = "*> free format\n01 REC.\n  05 A PIC X(2). *> trailing comment\n77 COUNTER PIC S9(4) COMP.\n"
    layout = parse_copybook(text, "t.cpy", "free")
    assert [(r.level, r.name, r.size) for r in layout.records] == [(1, "REC", 2), (77, "COUNTER", 2)]


def test_sample_copybooks_parse() -> None:
    sizes = {p.name: [r.size for r in load_copybook(p).records] for p in sorted(COPYBOOKS.glob("*.cpy"))}
    assert sizes == {"bankfile.cpy": [80, 80, 80], "custmast.cpy": [200], "orders.cpy": [529]}


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        ([" 01  REC.", "     05  A  PIC X(3)", "     05  B  PIC X."], 3, "missing its period"),
        ([" 01  REC.", "     05  A  PIC X(3) COMP-3."], 2, "needs a numeric PIC"),
        ([" 01  REC.", "     05  A  PIC 9(3) USAGE IS FLOAT."], 2, "unsupported USAGE FLOAT"),
        ([" 01  REC.", "     05  A  PIC 9(3) OCCURS X."], 2, "an occurrence count expected"),
        ([" 01  REC.", "     05  A  PIC 9(3.", "     05  B  PIC X."], 2, "unbalanced"),
        ([" 01  REC.", "     05  A."], 2, "needs a PIC clause"),
        ([" 01  REC.", "     05  A  PIC X.", "         10 B PIC X."], 3, "has a PIC but B is subordinate"),
        ([" 01  REC.", "     05  A  PIC X.", "     05  B  REDEFINES Q PIC X."], 3, "must be the preceding item"),
        ([" 01  REC.", "     05  A  OCCURS 1 TO 5 DEPENDING ON NOPE PIC X."], 2, "no such field"),
        ([" 01  REC.", "     05  A  PIC X.", "     66  B RENAMES A."], 3, "RENAMES is not supported"),
        ([" 05  A  PIC X."], 1, "before any 01 record"),
        ([" 01  REC.", "     05  A  PIC X JUNK."], 2, "unexpected 'JUNK'"),
        ([" 01  REC.", "     05  A  PIC X VALUE 'OPEN"], 2, "unterminated literal"),
        ([" 01  REC OCCURS 2."], 1, "OCCURS is not allowed at level 01"),
        ([" 01  REC.", "     60  A  PIC X."], 2, "not a data level"),
    ],
)
def test_syntax_errors_name_file_and_line(lines: list[str], line: int, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_copybook(fixed(*lines), "include/copybooks/bad.cpy")
    text = str(err.value)
    assert f"include/copybooks/bad.cpy: line {line}: " in text
    assert message in text


def test_bad_indicator_and_free_format_hint() -> None:
    with pytest.raises(SpecError, match=r"bad.cpy: line 2: unknown indicator '\.' in column 7.*source_format: free"):
        parse_copybook("      * free-format text read as fixed\n01 REC.\n  05 A PIC X.", "bad.cpy")
    with pytest.raises(SpecError, match=r"no data items found.*source_format: free"):
        parse_copybook("      * only a comment\n", "empty.cpy")


def test_missing_copybook_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.cpy: cannot read the copybook"):
        load_copybook(tmp_path / "nope.cpy")


def test_index_usage_is_a_4_byte_binary() -> None:
    rec = parse_copybook("       01  REC.\n           05  IX USAGE IS INDEX.\n           05  A PIC X.\n").records[0]
    assert [(c.name, c.usage, c.size) for c in rec.children] == [("IX", "comp-5", 4), ("A", "display", 1)]
