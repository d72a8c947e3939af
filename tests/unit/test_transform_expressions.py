"""The filter/derive expression language: what it refuses (no code from specs) and what it computes."""

from __future__ import annotations

import ast
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from bulksync.transform.expressions import (
    ExpressionError,
    evaluate,
    parse_expression,
    referenced_columns,
)
from bulksync.transform.runner import to_pandas


@pytest.mark.parametrize(("expr", "message"), [
    ("x.__class__", "Attribute is not allowed in expression 'x.__class__'"),
    ("os.system", "Attribute is not allowed in expression 'os.system'"),
    ("os.system('id')", "Call is not allowed in expression \"os.system('id')\""),
    ("__import__('os')", "unknown function '__import__' in \"__import__('os')\"; allowed: abs, coalesce, concat"),
    ("eval('1')", "unknown function 'eval'"),
    ("open('/etc/passwd')", "unknown function 'open'"),
    ("name[0]", "Subscript is not allowed in expression 'name[0]'"),
    ("lambda: 1", "Lambda is not allowed in expression 'lambda: 1'"),
    ("(lambda: 1)()", "Call is not allowed"),
    ("upper(x=name)", "Call is not allowed"),
    ("[c for c in name]", "ListComp is not allowed"),
    ("f'{name}'", "JoinedStr is not allowed"),
    ("(y := 1)", "NamedExpr is not allowed"),
    ("{'a': 1}", "Dict is not allowed"),
    ("a ** 1000", "BinOp is not allowed"),
    ("a & b", "BinOp is not allowed"),
    ("a is None", "Compare is not allowed"),
    ("a if b else c", "IfExp is not allowed"),
    ("status in [name]", "lists may hold only literals in 'status in [name]'"),
    ("b'abc' == a", "literal b'abc' not allowed"),
    ("upper(a, b)", "upper() takes 1..1 arguments in 'upper(a, b)'"),
    ("substr(a)", "substr() takes 2..3 arguments"),
    ("amount >", "cannot parse expression 'amount >': invalid syntax"),
    ("import os", "cannot parse expression 'import os'"),
])
def test_parse_expression_refuses(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(expr)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("expr", "columns"), [
    ("amount > 0 and status != 'X'", {"amount", "status"}),
    ("concat(first, ' ', last)", {"first", "last"}),
    ("upper(trim(name)) in ['A', 'B']", {"name"}),
    ("not is_null(email) or -balance <= 10.5", {"email", "balance"}),
    ("round(price * qty, 2)", {"price", "qty"}),
    ("1 < 2", set()),
])
def test_allowed_expressions_parse_and_report_their_columns(expr: str, columns: set[str]) -> None:
    assert isinstance(parse_expression(expr), ast.expr)
    assert referenced_columns(expr) == columns


@pytest.fixture
def df() -> pd.DataFrame:
    return to_pandas(pa.table({
        "name": pa.array(["  Ann ", "bob", None]),
        "n": pa.array([1, -2, None], pa.int64()),
        "x": pa.array([1.25, 2.5, 3.75]),
    }))


def values(result: Any) -> list[Any]:
    return [None if v is pd.NA else v for v in result.tolist()]


@pytest.mark.parametrize(("expr", "expected"), [
    ("upper(name)", ["  ANN ", "BOB", None]),
    ("lower(upper(name))", ["  ann ", "bob", None]),
    ("trim(name)", ["Ann", "bob", None]),
    ("length(name)", [6, 3, None]),
    ("concat(trim(name), ':', n)", ["Ann:1", "bob:-2", ":"]),
    ("coalesce(name, 'n/a')", ["  Ann ", "bob", "n/a"]),
    ("abs(n)", [1, 2, None]),
    ("round(x, 1)", [1.2, 2.5, 3.8]),
    ("is_null(n)", [False, False, True]),
    ("not_null(name)", [True, True, False]),
    ("substr(trim(name), 2, 2)", ["nn", "ob", None]),
    ("substr(trim(name), 2)", ["nn", "ob", None]),
    ("n * 10 - 1", [9, -21, None]),
    ("x / 2", [0.625, 1.25, 1.875]),
    ("-n", [-1, 2, None]),
    ("n > 0", [True, False, None]),
    ("0 < x < 3", [True, True, False]),
    ("n in [1, 5]", [True, False, False]),
    ("not (x > 2)", [True, False, False]),
    ("x > 2 or n == 1", [True, True, True]),
    ("x > 2 and is_null(n)", [False, False, True]),
    ("n % 3", [1, 1, None]),
    ("n % -3", [-2, -2, None]),
    ("7 % n", [0, -1, None]),
    ("x % 1", [0.25, 0.5, 0.75]),
    ("-x % 2", [0.75, 1.5, 0.25]),
    ("n % x", [1.0, 0.5, None]),
])
def test_evaluate(df: pd.DataFrame, expr: str, expected: list[Any]) -> None:
    assert values(evaluate(expr, df)) == expected


def test_modulo_keeps_arrow_types_and_refuses_integer_division_by_zero(df: pd.DataFrame) -> None:
    assert evaluate("n % 2", df).dtype == pd.ArrowDtype(pa.int64())
    assert evaluate("x % 2", df).dtype == pd.ArrowDtype(pa.float64())
    decimals = to_pandas(pa.table({"d": pa.array([Decimal("7.50"), Decimal("-7.50")], pa.decimal128(10, 2))}))
    assert values(evaluate("d % 2", decimals)) == [Decimal("1.50"), Decimal("0.50")]
    with pytest.raises(pa.ArrowInvalid, match="divide by zero"):
        evaluate("n % 0", df)


def test_evaluate_constant_expression_is_a_scalar(df: pd.DataFrame) -> None:
    assert evaluate("1 + 2 * 3", df) == 7
    assert evaluate("'a' == 'a'", df) is True


def test_evaluate_unknown_column_lists_the_columns(df: pd.DataFrame) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("nmae == 'bob'", df)
    assert str(info.value) == "column 'nmae' in \"nmae == 'bob'\" does not exist; columns: name, n, x"


def test_in_needs_a_column_on_its_left(df: pd.DataFrame) -> None:
    with pytest.raises(ExpressionError, match="'in' needs a column on its left"):
        evaluate("'a' in ['a']", df)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("+".join(["amount"] * 100_000), "characters starting 'amount+amount+"),
        (" not" * 5000 + " flag", "characters starting ' not not"),
        ("+".join(["a"] * 1000), "nests more than 100 levels deep; split it into several derive/filter steps"),
        (" not" * 150 + " flag", "nests more than 100 levels deep"),
        ("-" * 3000 + "a", "nested too deeply to parse"),
        ("concat(" + ", ".join(["a"] * 2500) + ")", "has more than 2,000 terms"),
    ],
)
def test_huge_or_deep_expressions_are_refused_with_a_clear_error(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(expr)
    assert message in str(info.value)
    assert len(str(info.value)) < 300  # the expression is not repeated whole


def test_expressions_at_the_bounds_still_evaluate(df: pd.DataFrame) -> None:
    assert evaluate("+".join(["n"] * 100), df).tolist() == [100, -200, pd.NA]  # 99 nested additions
    assert evaluate(" not" * 98 + " n > 0", df).tolist() == [True, False, False]
    assert evaluate("(" * 200 + "n" + ")" * 200, df).tolist() == [1, -2, pd.NA]  # parentheses add no nesting
    assert referenced_columns("n in [" + ", ".join(map(str, range(1500))) + "]") == {"n"}
