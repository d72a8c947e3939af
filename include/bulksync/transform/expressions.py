"""A small, safe expression language for ``filter`` and ``derive`` steps.

Syntax is a subset of Python: column names, literals, ``+ - * / %``, comparisons (``==``, ``!=``,
``<``, ``<=``, ``>``, ``>=``, ``in [..]``, ``not in [..]``), ``and`` / ``or`` / ``not`` and a fixed
set of functions (:data:`FUNCTIONS`). Nothing else parses: no attribute access, no subscripts, no
imports, no lambdas, so a spec cannot run arbitrary code. Parsing needs only :mod:`ast`; evaluation
imports pandas lazily and works on whole columns.

Expressions are bounded so that a spec cannot exhaust the stack or memory of ``validate`` or the
DAG processor: at most :data:`MAX_CHARS` characters, :data:`MAX_NODES` syntax nodes and
:data:`MAX_DEPTH` levels of nesting (``not not … x`` or ``a + (b + (c …))``), each refused with an
:class:`ExpressionError` saying which bound and how to stay under it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FUNCTIONS: dict[str, tuple[int, int | None]] = {
    # name: (min args, max args or None for any)
    "upper": (1, 1),
    "lower": (1, 1),
    "trim": (1, 1),
    "length": (1, 1),
    "concat": (1, None),
    "coalesce": (1, None),
    "round": (1, 2),
    "abs": (1, 1),
    "is_null": (1, 1),
    "not_null": (1, 1),
    "substr": (2, 3),
}
MAX_CHARS = 10_000
"""Longest expression accepted (characters)."""
MAX_NODES = 2_000
"""Most syntax nodes (names, literals, operators, calls) in one expression."""
MAX_DEPTH = 100
"""Deepest nesting of operators and calls in one expression."""
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)


class ExpressionError(ValueError):
    """The expression uses syntax or names the language does not allow."""


@lru_cache(maxsize=512)
def parse_expression(text: str) -> ast.expr:
    """Parse and check an expression; raise :class:`ExpressionError` naming what is not allowed."""
    if len(text) > MAX_CHARS:
        raise ExpressionError(
            f"expression of {len(text):,} characters starting {_head(text)} is longer than the limit of "
            f"{MAX_CHARS:,}; split it into several derive/filter steps"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {_head(text)}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"expression {_head(text)} is nested too deeply to parse (the limit is {MAX_DEPTH} levels); "
            "split it into several derive/filter steps"
        ) from None
    _check_size(tree.body, text)
    _check(tree.body, text)
    return tree.body


def _head(text: str, n: int = 60) -> str:
    """The start of an expression for a message (a huge one is not repeated whole)."""
    return repr(text) if len(text) <= n else repr(text[:n]) + "…"


def _check_size(root: ast.AST, text: str) -> None:
    """Refuse more than :data:`MAX_NODES` nodes or :data:`MAX_DEPTH` levels, without recursing."""
    count = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(
                f"expression {_head(text)} has more than {MAX_NODES:,} terms; split it into several "
                "derive/filter steps (or use 'in [..]' for long lists of alternatives)"
            )
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"expression {_head(text)} nests more than {MAX_DEPTH} levels deep; split it into several "
                "derive/filter steps"
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node) if not _is_context(child))


def _is_context(node: ast.AST) -> bool:
    """Load/Store markers and operator tokens: part of their parent, not nodes of their own."""
    return isinstance(node, ast.expr_context | ast.operator | ast.boolop | ast.unaryop | ast.cmpop)


def referenced_columns(text: str) -> set[str]:
    """Return the column names an expression reads."""
    funcs = set(FUNCTIONS)
    return {n.id for n in ast.walk(parse_expression(text)) if isinstance(n, ast.Name) and n.id not in funcs}


def _check(node: ast.AST, text: str) -> None:
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, str | int | float | bool | type(None)):
            raise ExpressionError(f"literal {node.value!r} not allowed in {text!r}")
        return
    if isinstance(node, ast.Name):
        return
    if isinstance(node, ast.List | ast.Tuple):
        for elt in node.elts:
            if not isinstance(elt, ast.Constant):
                raise ExpressionError(f"lists may hold only literals in {text!r}")
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
        _check(node.left, text)
        _check(node.right, text)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        _check(node.operand, text)
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, text)
        return
    if isinstance(node, ast.Compare) and all(isinstance(op, _CMPOPS) for op in node.ops):
        _check(node.left, text)
        for comp in node.comparators:
            _check(comp, text)
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name = node.func.id
        if name not in FUNCTIONS:
            raise ExpressionError(f"unknown function {name!r} in {text!r}; allowed: {', '.join(sorted(FUNCTIONS))}")
        lo, hi = FUNCTIONS[name]
        if len(node.args) < lo or (hi is not None and len(node.args) > hi):
            raise ExpressionError(f"{name}() takes {lo}..{hi or 'any'} arguments in {text!r}")
        for arg in node.args:
            _check(arg, text)
        return
    raise ExpressionError(f"{type(node).__name__} is not allowed in expression {text!r}")


def evaluate(text: str, df: pd.DataFrame) -> Any:
    """Evaluate an expression over a DataFrame; returns a Series or a scalar."""
    return _Evaluator(df, text).visit(parse_expression(text))


class _Evaluator:
    def __init__(self, df: pd.DataFrame, text: str) -> None:
        self.df = df
        self.text = text

    def visit(self, node: ast.expr) -> Any:
        import operator

        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.df.columns:
                columns = ", ".join(map(str, self.df.columns))
                raise ExpressionError(f"column {node.id!r} in {self.text!r} does not exist; columns: {columns}")
            return self.df[node.id]
        if isinstance(node, ast.List | ast.Tuple):
            return [self.visit(e) for e in node.elts]
        if isinstance(node, ast.BinOp):
            ops: dict[type, Callable[[Any, Any], Any]] = {
                ast.Add: operator.add,
                ast.Sub: operator.sub,
                ast.Mult: operator.mul,
                ast.Div: operator.truediv,
                ast.Mod: _mod,
            }
            return ops[type(node.op)](self.visit(node.left), self.visit(node.right))
        if isinstance(node, ast.UnaryOp):
            val = self.visit(node.operand)
            return -val if isinstance(node.op, ast.USub) else ~_as_bool(val)
        if isinstance(node, ast.BoolOp):
            vals = [_as_bool(self.visit(v)) for v in node.values]
            out = vals[0]
            for v in vals[1:]:
                out = (out & v) if isinstance(node.op, ast.And) else (out | v)
            return out
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            result = None
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self.visit(comp)
                part = _compare(op, left, right)
                result = part if result is None else (result & part)
                left = right
            return result
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return _call(node.func.id, [self.visit(a) for a in node.args], self.df)
        raise ExpressionError(f"cannot evaluate {ast.dump(node)}")  # pragma: no cover - _check refuses


def _as_bool(val: Any) -> Any:
    import pandas as pd

    if isinstance(val, pd.Series):
        return val.fillna(False).astype(bool)
    return bool(val)


def _compare(op: ast.cmpop, left: Any, right: Any) -> Any:
    import operator

    import pandas as pd

    if isinstance(op, ast.In | ast.NotIn):
        if not isinstance(left, pd.Series):
            raise ExpressionError("'in' needs a column on its left")
        mask = left.isin(right)
        return ~mask if isinstance(op, ast.NotIn) else mask
    fn = {
        ast.Eq: operator.eq,
        ast.NotEq: operator.ne,
        ast.Lt: operator.lt,
        ast.LtE: operator.le,
        ast.Gt: operator.gt,
        ast.GtE: operator.ge,
    }[type(op)]
    return fn(left, right)


def _mod(left: Any, right: Any) -> Any:
    """``left % right`` with Python's sign rule (the result takes the divisor's sign).

    pandas does not implement ``%`` for Arrow-backed columns, so those are computed with
    :mod:`pyarrow.compute` as ``a - b * trunc(a / b)``, corrected by ``b`` where the remainder's sign
    differs from the divisor's. Integer division by zero raises ``ArrowInvalid``.
    """
    import operator

    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow_backed = [v for v in (left, right) if isinstance(v, pd.Series) and isinstance(v.dtype, pd.ArrowDtype)]
    if not arrow_backed:
        return operator.mod(left, right)
    index = arrow_backed[0].index

    def arrow(v: Any) -> Any:
        if isinstance(v, pd.Series):
            return pa.array(v, from_pandas=not isinstance(v.dtype, pd.ArrowDtype))
        return pa.scalar(v)

    a, b = arrow(left), arrow(right)
    quotient = pc.divide(a, b)  # integers: truncated toward zero
    if pa.types.is_decimal(quotient.type):
        quotient = pc.trunc(quotient).cast(pa.int64())  # keeps b * quotient within decimal precision
    elif not pa.types.is_integer(quotient.type):
        quotient = pc.trunc(quotient)
    rem = pc.subtract(a, pc.multiply(b, quotient))
    zero = pa.scalar(0).cast(rem.type)
    flip = pc.and_(pc.not_equal(rem, zero), pc.not_equal(pc.less(rem, zero), pc.less(b, pa.scalar(0))))
    out = pc.if_else(flip, pc.add(rem, b), rem)
    return pd.Series(out, index=index, dtype=pd.ArrowDtype(out.type))


def _series(val: Any, df: pd.DataFrame) -> pd.Series:
    import pandas as pd

    if isinstance(val, pd.Series):
        return val
    return pd.Series([val] * len(df), index=df.index)


def _call(name: str, args: list[Any], df: pd.DataFrame) -> Any:

    if name == "concat":
        parts = [_series(a, df).astype("string").fillna("") for a in args]
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return out
    if name == "coalesce":
        out = _series(args[0], df)
        for a in args[1:]:
            out = out.fillna(a)
        return out
    if name in ("is_null", "not_null"):
        s = _series(args[0], df)
        return s.isna() if name == "is_null" else s.notna()
    s = _series(args[0], df)
    if name == "upper":
        return s.str.upper()
    if name == "lower":
        return s.str.lower()
    if name == "trim":
        return s.str.strip()
    if name == "length":
        return s.str.len()
    if name == "abs":
        return s.abs()
    if name == "round":
        return s.round(int(args[1]) if len(args) > 1 else 0)
    if name == "substr":
        start = int(args[1]) - 1
        stop = start + int(args[2]) if len(args) > 2 else None
        return s.str.slice(start, stop)
    raise ExpressionError(f"unknown function {name!r}")  # pragma: no cover
