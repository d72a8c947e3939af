"""COBOL copybook tokenizer and parser: source text -> a tree of data items with sizes.

Supported: levels 01-49 and 77 (88 condition names are skipped, 66 RENAMES is refused), FILLER and
unnamed items, ``PIC``/``PICTURE [IS]``, ``USAGE [IS]`` DISPLAY / COMP / COMP-0 / COMP-4 / BINARY / COMP-5 /
COMP-3 / PACKED-DECIMAL / COMP-1 / COMP-2 / INDEX (and the COMPUTATIONAL-n spellings),
``SIGN [IS] LEADING|TRAILING [SEPARATE [CHARACTER]]``, ``OCCURS n [TIMES]``,
``OCCURS [m TO] n [TIMES] DEPENDING [ON] name`` (nested too; without ``m TO`` the minimum is 1, as the
COBOL standard and IBM Enterprise COBOL say), ``ASCENDING/DESCENDING KEY``, ``INDEXED BY``,
``REDEFINES``, ``VALUE`` (ignored), ``JUSTIFIED``, ``BLANK WHEN ZERO``, ``SYNC`` (ignored, no slack bytes).

``SIGN ... SEPARATE`` written on an item whose PIC has no ``S`` is accepted as IBM compilers accept it (with
a warning): the sign byte is counted and the item is read as signed. Inherited from a group, the clause
applies only to signed items, as the standard says. After sizing, :mod:`bulksync.legacy.layout_check`
checks every record and REDEFINES branch: the computed length must equal the sum of its fields.

Source format ``fixed``: columns 1-6 sequence area, column 7 indicator (``*`` or ``/`` comment, ``-``
continuation), columns 8-72 the text, 73-80 ignored. ``free``: whole lines; ``*>`` starts a comment.
Every error is a :class:`~bulksync.errors.SpecError` naming the copybook file and line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bulksync.errors import SpecError
from bulksync.legacy.picture import Picture, PictureError, parse_picture

Usage = Literal["display", "comp", "comp-5", "comp-3", "comp-1", "comp-2"]

_USAGES: dict[str, Usage] = {
    "DISPLAY": "display",
    "COMP": "comp",
    "COMPUTATIONAL": "comp",
    "COMP-0": "comp",
    "COMPUTATIONAL-0": "comp",
    "COMP-4": "comp",
    "COMPUTATIONAL-4": "comp",
    "BINARY": "comp",
    "COMP-5": "comp-5",
    "COMPUTATIONAL-5": "comp-5",
    "COMP-3": "comp-3",
    "COMPUTATIONAL-3": "comp-3",
    "PACKED-DECIMAL": "comp-3",
    "COMP-1": "comp-1",
    "COMPUTATIONAL-1": "comp-1",
    "COMP-2": "comp-2",
    "COMPUTATIONAL-2": "comp-2",
    "INDEX": "comp-5",
}
_LEVEL = re.compile(r"^\d{1,2}$")
log = logging.getLogger(__name__)


@dataclass
class Item:
    """One data description entry of a copybook.

    Attributes:
        level: level number (1-49, 77).
        name: COBOL name as written (upper case); ``None`` for FILLER or unnamed entries.
        line: line of the entry in the copybook (1-based).
        picture: parsed PICTURE, ``None`` for groups, COMP-1 and COMP-2.
        usage: storage format (groups pass theirs to their children).
        sign_leading / sign_separate: the SIGN clause.
        occurs: maximum number of occurrences (1 without OCCURS); occurs_min: the ``m`` of ``m TO n``
            (1 for ``OCCURS n DEPENDING ON`` without ``m TO``).
        sign_own: the SIGN clause is written on this entry (not inherited from a group).
        sign_forced: ``SIGN SEPARATE`` on a PIC without ``S``: read as signed (IBM behaviour).
        blank_when_zero: ``BLANK WHEN ZERO`` (an edited field of spaces is zero).
        depending_on: the ODO counter's name.
        redefines: name of the item this one redefines.
        children: subordinate items.
        size: bytes of one occurrence at the maximum size of every table inside it.
    """

    level: int
    name: str | None
    line: int
    picture: Picture | None = None
    usage: Usage = "display"
    usage_set: bool = False
    sign_leading: bool = False
    sign_separate: bool = False
    sign_set: bool = False
    sign_own: bool = False
    sign_forced: bool = False
    blank_when_zero: bool = False
    occurs: int = 1
    occurs_min: int = 1
    has_occurs: bool = False
    depending_on: str | None = None
    redefines: str | None = None
    children: list[Item] = field(default_factory=list)
    size: int = 0

    @property
    def is_group(self) -> bool:
        """A group item (has subordinate items)."""
        return bool(self.children)

    @property
    def signed(self) -> bool:
        """The value may be negative (``S`` in the PIC, an edited sign, or a forced separate sign)."""
        return bool(self.picture is not None and self.picture.signed) or self.sign_forced


@dataclass
class Layout:
    """A parsed copybook: its 01 / 77 records."""

    file: str
    records: list[Item]

    def record(self, name: str | None) -> Item:
        """The 01 record called ``name`` (the only one when ``name`` is None)."""
        if name is None:
            if len(self.records) > 1:
                names = ", ".join(r.name or "FILLER" for r in self.records)
                raise SpecError(
                    [
                        (
                            self.file,
                            "",
                            f"the copybook defines several records ({names}): "
                            "set `record:` to one of them or `segments:` to choose per record",
                        )
                    ]
                )
            return self.records[0]
        for r in self.records:
            if r.name == name.upper():
                return r
        known = ", ".join(r.name or "FILLER" for r in self.records)
        raise SpecError([(self.file, "record", f"no 01 record {name!r} in the copybook (it has: {known})")])


@dataclass(frozen=True)
class _Token:
    text: str
    line: int


def _fail(file: str, line: int, message: str) -> SpecError:
    return SpecError([(file, f"line {line}", message)])


def source_lines(text: str, source_format: Literal["fixed", "free"]) -> list[tuple[int, str, bool]]:
    """The meaningful text of each line: ``(line number, text, is continuation)``; comments dropped."""
    out: list[tuple[int, str, bool]] = []
    for no, raw in enumerate(text.splitlines(), start=1):
        raw = raw.replace("\t", "    ")
        if source_format == "fixed":
            if len(raw) < 7:
                continue  # blank or sequence number only
            indicator = raw[6]
            if indicator in "*/":
                continue
            body = raw[7:72]
            if indicator == "-":
                out.append((no, body, True))
                continue
            if indicator not in " D":
                out.append((no, "\x00" + indicator, False))
                continue
        else:
            stripped = raw.lstrip()
            if stripped.startswith("*"):
                continue
            body = raw.split("*>", 1)[0]
        if body.strip():
            out.append((no, body, False))
    return out


def tokenize(text: str, file: str, source_format: Literal["fixed", "free"] = "fixed") -> list[_Token]:
    """Split copybook text into words, literals and period separators (``.``), with line numbers."""
    tokens: list[_Token] = []
    open_literal: str | None = None
    for no, body, continued in source_lines(text, source_format):
        if body.startswith("\x00"):
            raise _fail(
                file,
                no,
                f"unknown indicator {body[1]!r} in column 7 (use '*' or '/' for comments, "
                "'-' for continuation; or set source_format: free)",
            )
        pos = 0
        if continued:
            stripped = body.lstrip()
            if open_literal and stripped[:1] in "'\"":
                pos = len(body) - len(stripped) + 1
            else:
                pos = len(body) - len(stripped)
                if tokens and not open_literal and stripped and tokens[-1].text != ".":
                    # a word continued on this line: glue the first word to the last token
                    m = re.match(r"[^\s]+", stripped)
                    assert m is not None
                    word = m.group(0)
                    tail_period = word.endswith(".")
                    tokens[-1] = _Token(tokens[-1].text + (word[:-1] if tail_period else word), tokens[-1].line)
                    if tail_period:
                        tokens.append(_Token(".", no))
                    pos += len(word)
        if open_literal:
            end = body.find(open_literal, pos)
            if end < 0:
                continue
            tokens.append(_Token("'literal'", no))
            open_literal = None
            pos = end + 1
        n = len(body)
        while pos < n:
            ch = body[pos]
            if ch.isspace() or ch in ",;":
                pos += 1
                continue
            if ch in "'\"":
                end = body.find(ch, pos + 1)
                while end >= 0 and body[end + 1 : end + 2] == ch:  # doubled quote inside the literal
                    end = body.find(ch, end + 2)
                if end < 0:
                    open_literal = ch
                    break
                tokens.append(_Token("'literal'", no))
                pos = end + 1
                continue
            if ch == "." and (pos + 1 >= n or body[pos + 1].isspace()):
                tokens.append(_Token(".", no))
                pos += 1
                continue
            start = pos
            while pos < n and not body[pos].isspace():
                if body[pos] == "." and (pos + 1 >= n or body[pos + 1].isspace()):
                    break
                if body[pos] in ",;" and (pos + 1 >= n or body[pos + 1].isspace()):
                    break
                pos += 1
            tokens.append(_Token(body[start:pos].upper(), no))
    if open_literal:
        raise _fail(file, tokens[-1].line if tokens else 1, "unterminated literal at the end of the copybook")
    return tokens


def _entries(tokens: list[_Token]) -> list[list[_Token]]:
    entries: list[list[_Token]] = []
    current: list[_Token] = []
    for tok in tokens:
        if tok.text == ".":
            if current:
                entries.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        entries.append(current)
    return entries


class _EntryParser:
    def __init__(self, file: str, toks: list[_Token], decimal_comma: bool = False) -> None:
        self.file = file
        self.toks = toks
        self.i = 0
        self.decimal_comma = decimal_comma

    def peek(self) -> str | None:
        return self.toks[self.i].text if self.i < len(self.toks) else None

    def next(self, what: str) -> _Token:
        if self.i >= len(self.toks):
            last = self.toks[-1]
            raise _fail(self.file, last.line, f"{what} expected after {last.text!r}")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept(self, *words: str) -> bool:
        if self.peek() in words:
            self.i += 1
            return True
        return False

    def integer(self, what: str) -> int:
        tok = self.next(what)
        if not tok.text.isdigit():
            raise _fail(self.file, tok.line, f"{what} expected, found {tok.text!r}")
        return int(tok.text)

    def parse(self) -> Item | None:
        first = self.toks[0]
        if not _LEVEL.match(first.text):
            raise _fail(
                self.file,
                first.line,
                f"a level number (01-49, 77, 88) expected, found {first.text!r}"
                " (is the previous entry missing its period?)",
            )
        level = int(first.text)
        self.i = 1
        if level == 88:
            return None
        if level == 66:
            raise _fail(self.file, first.line, "level 66 RENAMES is not supported")
        if not (1 <= level <= 49 or level == 77):
            raise _fail(self.file, first.line, f"level {level:02d} is not a data level (01-49, 77, 88)")
        name: str | None = None
        nxt = self.peek()
        if nxt is not None and nxt not in _CLAUSES and nxt not in _USAGES and nxt != "'literal'":
            name = None if nxt == "FILLER" else nxt
            self.i += 1
        item = Item(level, name, first.line)
        while self.peek() is not None:
            tok = self.next("a clause")
            self.clause(item, tok)
        return item

    def clause(self, item: Item, tok: _Token) -> None:
        word = tok.text
        if word in ("PIC", "PICTURE"):
            self.accept("IS")
            pic = self.next("a picture string")
            try:
                item.picture = parse_picture(pic.text, self.decimal_comma)
            except PictureError as e:
                raise _fail(self.file, pic.line, str(e)) from None
        elif word == "USAGE":
            self.accept("IS")
            u = self.next("a usage")
            if u.text not in _USAGES:
                raise _fail(self.file, u.line, f"unsupported USAGE {u.text} (supported: {', '.join(_USAGES)})")
            self._usage(item, u.text)
        elif word in _USAGES:
            self._usage(item, word)
        elif word in ("POINTER", "PROCEDURE-POINTER", "FUNCTION-POINTER", "NATIONAL", "DISPLAY-1", "OBJECT"):
            raise _fail(self.file, tok.line, f"USAGE {word} is not supported")
        elif word == "SIGN":
            self.accept("IS")
            where = self.next("LEADING or TRAILING")
            if where.text not in ("LEADING", "TRAILING"):
                raise _fail(self.file, where.line, f"LEADING or TRAILING expected after SIGN, found {where.text!r}")
            self._sign(item, where.text)
        elif word in ("LEADING", "TRAILING"):
            self._sign(item, word)
        elif word == "OCCURS":
            self._occurs(item, tok)
        elif word == "REDEFINES":
            item.redefines = self.next("the name of the redefined item").text
        elif word in ("VALUE", "VALUES"):
            self.accept("IS", "ARE")
            while self.peek() is not None and self.peek() not in _CLAUSES:
                self.i += 1
        elif word in ("JUSTIFIED", "JUST"):
            self.accept("RIGHT")
        elif word == "BLANK":
            self.accept("WHEN")
            self.accept("ZERO", "ZEROS", "ZEROES")
            item.blank_when_zero = True
        elif word in ("SYNC", "SYNCHRONIZED"):
            self.accept("LEFT", "RIGHT")
        elif word in ("GLOBAL", "EXTERNAL"):
            pass
        else:
            hint = " (is the previous entry missing its period?)" if _LEVEL.match(word) else ""
            raise _fail(self.file, tok.line, f"unexpected {word!r} in the entry of {item.name or 'FILLER'}{hint}")

    def _usage(self, item: Item, word: str) -> None:
        item.usage, item.usage_set = _USAGES[word], True
        if word == "INDEX" and item.picture is None:
            item.picture = parse_picture("S9(9)")  # an index data item: a 4-byte binary number

    def _sign(self, item: Item, where: str) -> None:
        item.sign_set = item.sign_own = True
        item.sign_leading = where == "LEADING"
        if self.accept("SEPARATE"):
            item.sign_separate = True
            self.accept("CHARACTER")

    def _occurs(self, item: Item, tok: _Token) -> None:
        n = self.integer("an occurrence count")
        item.has_occurs = True
        item.occurs_min = item.occurs = n
        ranged = self.accept("TO")
        if ranged:
            item.occurs = self.integer("the maximum occurrence count")
            if item.occurs < n:
                raise _fail(self.file, tok.line, f"OCCURS {n} TO {item.occurs}: the maximum is below the minimum")
        self.accept("TIMES")
        if self.accept("DEPENDING"):
            self.accept("ON")
            item.depending_on = self.next("the DEPENDING ON field").text
            if not ranged:  # OCCURS n DEPENDING ON: the minimum is 1 (COBOL standard, IBM Enterprise COBOL)
                item.occurs_min = min(1, n)
        elif item.occurs != item.occurs_min:
            raise _fail(self.file, tok.line, "OCCURS m TO n needs DEPENDING ON")
        while self.peek() in ("ASCENDING", "DESCENDING", "INDEXED"):
            kind = self.next("KEY").text
            if kind == "INDEXED":
                self.accept("BY")
            else:
                self.accept("KEY")
                self.accept("IS")
            while self.peek() is not None and self.peek() not in _CLAUSES:
                self.i += 1


_CLAUSES = {
    "PIC", "PICTURE", "USAGE", "SIGN", "LEADING", "TRAILING", "OCCURS", "REDEFINES", "VALUE", "VALUES",
    "JUSTIFIED", "JUST", "BLANK", "SYNC", "SYNCHRONIZED", "GLOBAL", "EXTERNAL", "ASCENDING", "DESCENDING",
    "INDEXED", "POINTER",
}  # fmt: skip


def parse_copybook(
    text: str,
    file: str = "<copybook>",
    source_format: Literal["fixed", "free"] = "fixed",
    decimal_comma: bool = False,
) -> Layout:
    """Parse copybook source text into a :class:`Layout` with every item's size computed and checked.

    ``decimal_comma``: the program says ``DECIMAL-POINT IS COMMA`` (``,`` is the point of edited pictures).

    Raises:
        SpecError: a syntax or semantic error, naming ``file``, the line and the clause.
    """
    from bulksync.legacy.layout_check import check_layout

    tokens = tokenize(text, file, source_format)
    records: list[Item] = []
    stack: list[Item] = []
    for toks in _entries(tokens):
        item = _EntryParser(file, toks, decimal_comma).parse()
        if item is None:
            continue
        if item.level in (1, 77):
            if item.has_occurs:
                raise _fail(file, item.line, f"OCCURS is not allowed at level {item.level:02d}")
            records.append(item)
            stack = [item]
            continue
        if not stack:
            raise _fail(file, item.line, f"level {item.level:02d} item before any 01 record")
        while stack and stack[-1].level >= item.level:
            stack.pop()
        if not stack or stack[-1].level == 77:
            raise _fail(file, item.line, f"level {item.level:02d} item has no parent group")
        parent = stack[-1]
        if parent.picture is not None:
            raise _fail(
                file,
                item.line,
                f"{parent.name or 'FILLER'} (line {parent.line}) has a PIC but "
                f"{item.name or 'FILLER'} is subordinate to it",
            )
        parent.children.append(item)
        stack.append(item)
    if not records:
        raise SpecError([(file, "", "no data items found (is the text in columns 8-72? else set source_format: free)")])
    for rec in records:
        _finish(file, rec, None)
        _check_references(file, rec)
        check_layout(file, rec)
    return Layout(file, records)


def _finish(file: str, item: Item, parent: Item | None) -> None:
    """Inherit USAGE and SIGN from the group, check the entry, compute sizes."""
    if parent is not None:
        if not item.usage_set and parent.usage_set:
            item.usage, item.usage_set = parent.usage, True
        if not item.sign_set and parent.sign_set:
            item.sign_leading, item.sign_separate, item.sign_set = parent.sign_leading, parent.sign_separate, True
    if item.children:
        if item.picture is not None:  # pragma: no cover - refused while building the tree
            raise _fail(file, item.line, "a group item cannot have a PIC")
        for pos, child in enumerate(item.children):
            _finish(file, child, item)
            if child.redefines and (pos == 0 or child.redefines != _base(item, child).name):
                raise _fail(
                    file,
                    child.line,
                    f"{child.name} REDEFINES {child.redefines}: the redefined item must "
                    "be the preceding item at the same level",
                )
        # a REDEFINES area is as large as its largest branch
        size = 0
        i = 0
        kids = item.children
        while i < len(kids):
            area = kids[i].size * kids[i].occurs
            j = i + 1
            while j < len(kids) and kids[j].redefines:
                area = max(area, kids[j].size * kids[j].occurs)
                j += 1
            size += area
            i = j
        item.size = size
        return
    pic = item.picture
    name = item.name or "FILLER"
    if item.usage in ("comp-1", "comp-2"):
        if pic is not None:
            raise _fail(file, item.line, f"{name}: {item.usage.upper()} takes no PIC")
        item.size = 4 if item.usage == "comp-1" else 8
        return
    if pic is None:
        raise _fail(file, item.line, f"{name}: an elementary item needs a PIC clause")
    if item.usage == "display":
        if item.sign_separate and pic.kind == "numeric" and not pic.signed:
            if item.sign_own:
                log.warning(
                    "%s line %d: %s PIC %s has SIGN SEPARATE but no S: the sign byte is counted and the item "
                    "read as signed (as IBM compilers do); add S to the PIC to silence this",
                    file, item.line, name, pic.text,
                )  # fmt: skip
                item.sign_forced = True
            else:
                item.sign_separate = False  # a group's SIGN clause applies to its signed items only
        if pic.kind != "numeric":
            item.sign_separate = False
        item.size = pic.length + (1 if item.sign_separate else 0)
    elif pic.kind == "numeric_edited":
        raise _fail(file, item.line, f"{name}: PIC {pic.text} is numeric-edited: USAGE {item.usage.upper()} "
                    "is not allowed (only DISPLAY)")  # fmt: skip
    elif pic.kind != "numeric":
        raise _fail(
            file, item.line, f"{name}: USAGE {item.usage.upper()} needs a numeric PIC (9, S, V, P), not {pic.text}"
        )
    elif item.usage == "comp-3":
        item.size = pic.digits // 2 + 1
    else:
        if pic.digits > 18:
            raise _fail(
                file,
                item.line,
                f"{name}: PIC {pic.text} USAGE {item.usage.upper()}: binary items hold at most 18 digits "
                f"(8 bytes), this one has {pic.digits}; check the copybook (COMP-3 holds up to 38)",
            )
        item.size = 2 if pic.digits <= 4 else 4 if pic.digits <= 9 else 8


def _base(group: Item, child: Item) -> Item:
    idx = group.children.index(child)
    for prev in reversed(group.children[:idx]):
        if not prev.redefines:
            return prev
    return child  # pragma: no cover


def _check_references(file: str, rec: Item) -> None:
    names: set[str] = set()

    def collect(it: Item) -> None:
        if it.name:
            names.add(it.name)
        for c in it.children:
            collect(c)

    def check(it: Item) -> None:
        if it.depending_on and it.depending_on not in names:
            raise _fail(
                file, it.line, f"{it.name}: DEPENDING ON {it.depending_on}: no such field in {rec.name or 'the record'}"
            )
        for c in it.children:
            check(c)

    collect(rec)
    check(rec)


def load_copybook(
    path: str | Path, source_format: Literal["fixed", "free"] = "fixed", decimal_comma: bool = False
) -> Layout:
    """Read and parse a copybook file (errors name the file and line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise SpecError([(str(p), "", f"cannot read the copybook: {e.strerror or e}")]) from None
    return parse_copybook(text, str(p), source_format, decimal_comma)
