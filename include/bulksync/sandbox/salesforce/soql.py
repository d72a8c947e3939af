"""The SOQL subset the sandbox understands, parsed into a :class:`Query` with a pyarrow filter.

Supported: ``SELECT`` field lists (and ``COUNT()``), ``FROM`` one object, ``WHERE`` with
``= != <> < <= > >=``, ``AND``/``OR``/``NOT``, parentheses, ``IN``/``NOT IN``, ``LIKE`` (case-insensitive,
``%`` and ``_``), ``null``, ``true``/``false``, numbers, date literals (``2026-01-31``), datetime literals
(``2026-01-31T10:00:00Z``, ``…+01:00``, ``….000Z``), the date keywords ``TODAY``, ``YESTERDAY`` and
``LAST_N_DAYS:n``, ``ORDER BY f [ASC|DESC] [NULLS FIRST|LAST]``, ``LIMIT`` and ``OFFSET``.
Unknown objects and fields give Salesforce's ``INVALID_TYPE`` and ``INVALID_FIELD`` errors.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bulksync.sandbox.salesforce import errors, ids
from bulksync.sandbox.salesforce.schema import FieldDef, ObjectDef, find_object

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),])
    |(?P<name>[A-Za-z_][A-Za-z0-9_.]*(?::\d+)?)
    )""",
    re.VERBOSE,
)
_DATE_KEYWORDS = {"today", "yesterday", "tomorrow"}


@dataclass
class Token:
    """One SOQL token with its 1-based column."""

    kind: str
    text: str
    column: int


@dataclass
class Query:
    """A parsed SOQL query against one object."""

    soql: str
    obj: ObjectDef
    fields: list[FieldDef]
    count_only: bool = False
    where: pa.compute.Expression | None = None
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # (field, descending, nulls_last)
    limit: int | None = None
    offset: int = 0
    id_lower: str | None = None  # every row matching has Id >= id_lower
    id_upper: str | None = None  # every row matching has Id <= id_upper
    filter_fields: set[str] = field(default_factory=set)

    @property
    def compound_fields(self) -> list[FieldDef]:
        """Selected compound (address) fields."""
        return [f for f in self.fields if f.is_compound]

    def columns(self) -> list[str]:
        """Stored columns the query needs (selected, filtered, ordered), in describe order."""
        wanted = {f.name for f in self.fields if not f.is_compound}
        for f in self.compound_fields:
            wanted.update(c.name for c in self.obj.components(f.name))
        wanted |= self.filter_fields | {name for name, _, _ in self.order}
        wanted = wanted or {"Id"}  # COUNT() without WHERE still needs one column to count rows of
        return [f.name for f in self.obj.columns if f.name in wanted]


def tokenize(soql: str) -> list[Token]:
    """Split ``soql`` into tokens, raising MALFORMED_QUERY on anything unknown."""
    tokens: list[Token] = []
    pos = 0
    text = soql.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise errors.malformed(f"unexpected token: '{text[pos:].split()[0]}' at column {pos + 1}")
        kind = m.lastgroup or ""
        start = m.start(kind)
        tokens.append(Token(kind, m.group(kind), start + 1))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, soql: str, now: dt.datetime) -> None:
        self.soql = soql
        self.tokens = tokenize(soql)
        self.pos = 0
        self.now = now
        self.obj: ObjectDef | None = None
        self.filter_fields: set[str] = set()
        self.id_lower: str | None = None
        self.id_upper: str | None = None

    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        if tok and tok.kind == "name" and tok.text.lower() in words:
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        tok = self.peek()
        if tok is None or tok.text.lower() != text.lower():
            found = tok.text if tok else "end of query"
            raise errors.malformed(f"unexpected token: '{found}', expected {text.upper()}")
        self.pos += 1
        return tok

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise errors.malformed("unexpected end of query")
        self.pos += 1
        return tok

    def parse(self) -> Query:
        self.expect("select")
        names: list[Token] = []
        count_only = False
        if (tok := self.peek()) and tok.text.lower() == "count" and (nxt := self.peek(1)) and nxt.text == "(":
            self.pos += 2
            self.expect(")")
            count_only = True
        else:
            while True:
                tok = self.take()
                if tok.kind != "name":
                    raise errors.malformed(f"unexpected token: '{tok.text}' at column {tok.column}")
                names.append(tok)
                if not (self.peek() and self.peek().text == ","):  # type: ignore[union-attr]
                    break
                self.pos += 1
        self.expect("from")
        obj_tok = self.take()
        obj = find_object(obj_tok.text)
        if obj is None:
            raise errors.invalid_type(self.soql, obj_tok.text, obj_tok.column)
        self.obj = obj
        fields = [self.resolve(tok) for tok in names]
        query = Query(self.soql, obj, fields, count_only=count_only)
        if self.keyword("where"):
            query.where = self.expr()
        if self.keyword("order"):
            self.expect("by")
            while True:
                f = self.resolve(self.take())
                desc = self.keyword("desc")
                if not desc:
                    self.keyword("asc")
                nulls_last = desc
                if self.keyword("nulls"):
                    nulls_last = self.keyword("last")
                    if not nulls_last:
                        self.expect("first")
                query.order.append((f.name, desc, nulls_last))
                if not (self.peek() and self.peek().text == ","):  # type: ignore[union-attr]
                    break
                self.pos += 1
        if self.keyword("limit"):
            query.limit = self.integer()
        if self.keyword("offset"):
            query.offset = self.integer()
        if (tok := self.peek()) is not None:
            raise errors.malformed(f"unexpected token: '{tok.text}' at column {tok.column}")
        query.filter_fields = self.filter_fields
        query.id_lower, query.id_upper = self.id_lower, self.id_upper
        return query

    def integer(self) -> int:
        tok = self.take()
        if tok.kind != "number" or not tok.text.isdigit():
            raise errors.malformed(f"expecting a non-negative integer, found '{tok.text}' at column {tok.column}")
        return int(tok.text)

    def resolve(self, tok: Token) -> FieldDef:
        assert self.obj is not None
        found = self.obj.field(tok.text)
        if found is None:
            raise errors.invalid_field(self.soql, tok.text, self.obj.name, tok.column)
        return found

    # conditions: expr := term (OR term)* ; term := factor (AND factor)* ; factor := NOT factor | (expr) | cond
    def expr(self, top: bool = True) -> pc.Expression:
        parts = [self.term(top)]
        while self.keyword("or"):
            parts.append(self.term(False))
        if len(parts) > 1 and top:
            self.id_lower = self.id_upper = None
        result = parts[0]
        for part in parts[1:]:
            result = result | part
        return result

    def term(self, top: bool) -> pc.Expression:
        result = self.factor(top)
        while self.keyword("and"):
            result = result & self.factor(top)
        return result

    def factor(self, top: bool) -> pc.Expression:
        if self.keyword("not"):
            return ~self.factor(False)
        tok = self.peek()
        if tok and tok.text == "(":
            self.pos += 1
            inner = self.expr(False)
            self.expect(")")
            return inner
        return self.condition(top)

    def condition(self, top: bool) -> pc.Expression:
        fdef = self.resolve(self.take())
        if fdef.is_compound:
            raise errors.malformed(f"field '{fdef.name}' can not be filtered in a query call")
        self.filter_fields.add(fdef.name)
        col = pc.field(fdef.name)
        negate = self.keyword("not")
        if self.keyword("in"):
            self.expect("(")
            values = [self.value(fdef)]
            while self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                self.pos += 1
                values.append(self.value(fdef))
            self.expect(")")
            plain = [v for v in values if not isinstance(v, tuple) and v is not None]
            hit = col.isin(pa.array(plain, fdef.arrow_type))
            if any(v is None for v in values):
                hit = hit | col.is_null()
            return (~hit | col.is_null()) if negate else hit
        if negate:
            raise errors.malformed("NOT must be followed by IN here")
        if self.keyword("like"):
            tok = self.take()
            if tok.kind != "string":
                raise errors.malformed(f"LIKE needs a string literal at column {tok.column}")
            return pc.match_like(col, pattern=_unquote(tok.text), ignore_case=True)
        op_tok = self.take()
        if op_tok.kind != "op":
            raise errors.malformed(f"unexpected token: '{op_tok.text}' at column {op_tok.column}")
        op = "!=" if op_tok.text == "<>" else op_tok.text
        value = self.value(fdef)
        if value is None:
            if op not in ("=", "!="):
                raise errors.malformed(f"invalid operator on null at column {op_tok.column}")
            return col.is_null() if op == "=" else col.is_valid()
        if isinstance(value, tuple):  # date keyword: [start, end)
            start, end = value
            return {
                "=": (col >= start) & (col < end),
                "!=": (col < start) | (col >= end),
                ">": col >= end,
                ">=": col >= start,
                "<": col < start,
                "<=": col < end,
            }[op]
        if top and fdef.type == "id" and isinstance(value, str):
            if op in (">", ">=", "="):
                self.id_lower = max(self.id_lower or "", value)
            if op in ("<", "<=", "="):
                self.id_upper = min(self.id_upper, value) if self.id_upper else value
        scalar = pa.scalar(value, fdef.arrow_type)
        return {
            "=": col == scalar,
            "!=": (col != scalar) | col.is_null(),
            ">": col > scalar,
            ">=": col >= scalar,
            "<": col < scalar,
            "<=": col <= scalar,
        }[op]

    def value(self, fdef: FieldDef) -> Any:
        tok = self.take()
        kind, text, low = tok.kind, tok.text, tok.text.lower()
        if kind == "name" and low == "null":
            return None
        expected = {"date": "date", "datetime": "dateTime", "boolean": "boolean"}.get(fdef.type, "")
        if fdef.type == "boolean":
            if low not in ("true", "false"):
                raise _type_error(fdef, expected)
            return low == "true"
        if fdef.type in ("date", "datetime"):
            if kind == "name" and (low in _DATE_KEYWORDS or low.startswith("last_n_days:")):
                return self.date_range(low, fdef.type == "datetime")
            if fdef.type == "date" and kind == "date":
                return dt.date.fromisoformat(text)
            if fdef.type == "datetime" and kind == "datetime":
                return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
            raise _type_error(fdef, expected)
        if fdef.arrow_type == pa.string():
            if kind != "string":
                raise errors.malformed(
                    f"value of filter criterion for field '{fdef.name}' must be of type string and should be "
                    "enclosed in quotes"
                )
            raw = _unquote(text)
            return ids.to_18(raw) if fdef.type in ("id", "reference") else raw
        if kind != "number":
            raise _type_error(fdef, "double" if fdef.type != "int" else "int")
        return int(text) if fdef.type == "int" else float(text)

    def date_range(self, keyword: str, as_datetime: bool) -> tuple[Any, Any]:
        today = self.now.astimezone(dt.UTC).date()
        if keyword == "today":
            start, end = today, today + dt.timedelta(days=1)
        elif keyword == "yesterday":
            start, end = today - dt.timedelta(days=1), today
        elif keyword == "tomorrow":
            start, end = today + dt.timedelta(days=1), today + dt.timedelta(days=2)
        else:
            start, end = today - dt.timedelta(days=int(keyword.split(":")[1])), today + dt.timedelta(days=1)
        if as_datetime:
            return (
                pa.scalar(dt.datetime.combine(start, dt.time(), dt.UTC), pa.timestamp("ms", tz="UTC")),
                pa.scalar(dt.datetime.combine(end, dt.time(), dt.UTC), pa.timestamp("ms", tz="UTC")),
            )
        return pa.scalar(start, pa.date32()), pa.scalar(end, pa.date32())


def _type_error(fdef: FieldDef, expected: str) -> errors.ApiError:
    return errors.ApiError(
        400,
        "INVALID_FIELD",
        f"value of filter criterion for field '{fdef.name}' must be of type {expected} and should not be enclosed "
        "in quotes",
    )


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), text[1:-1])


def parse(soql: str, now: dt.datetime | None = None) -> Query:
    """Parse ``soql``; raise :class:`~bulksync.sandbox.salesforce.errors.ApiError` like Salesforce would."""
    return _Parser(soql.strip(), now or dt.datetime.now(dt.UTC)).parse()
