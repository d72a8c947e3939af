"""Applying declarative transform steps to one pandas chunk (Arrow-backed dtypes throughout)."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.arrow_types import arrow_type
from bulksync.errors import DataError
from bulksync.spec import transforms as t
from bulksync.transform.expressions import ExpressionError, evaluate
from bulksync.transform.registry import get_transform


class StepError(DataError):
    """A step cannot be applied to the data (names the step and the column)."""


def _need(df: pd.DataFrame, cols: list[str], where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise StepError(f"{where}: column(s) {missing} do not exist; columns here: {list(df.columns)}")


def apply_step(df: pd.DataFrame, step: Any, index: int, salts: dict[int, str]) -> pd.DataFrame:
    """Apply one parsed step to a chunk and return the new chunk."""
    where = f"transforms[{index}]"
    if isinstance(step, t.RenameStep):
        _need(df, list(step.rename), where + " rename")
        return df.rename(columns=step.rename)
    if isinstance(step, t.SelectStep):
        _need(df, step.select, where + " select")
        return df[step.select]
    if isinstance(step, t.DropStep):
        _need(df, step.drop, where + " drop")
        return df.drop(columns=step.drop)
    if isinstance(step, t.CastStep):
        _need(df, list(step.cast), where + " cast")
        df = df.copy()
        for col, typ in step.cast.items():
            df[col] = _cast(df[col], typ, f"{where} cast {col!r}")
        return df
    if isinstance(step, t.TrimStep):
        cols = [c for c in df.columns if _is_string(df[c])] if step.trim == "all" else step.trim
        _need(df, list(cols), where + " trim")
        df = df.copy()
        for col in cols:
            df[col] = df[col].str.strip()
        return df
    if isinstance(step, t.FillStep):
        _need(df, list(step.fill), where + " fill")
        return df.fillna(value=step.fill)
    if isinstance(step, t.MapStep):
        _need(df, [step.map.column], where + " map")
        df = df.copy()
        df[step.map.column] = _map(df[step.map.column], step.map, f"{where} map {step.map.column!r}")
        return df
    if isinstance(step, t.FilterStep):
        mask = _eval(step.filter, df, where + " filter")
        if not isinstance(mask, pd.Series):
            return df if bool(mask) else df.iloc[0:0]
        return df[mask.fillna(False).astype(bool)]
    if isinstance(step, t.DeriveStep):
        df = df.copy()
        for col, expr in step.derive.items():
            value = _eval(expr, df, f"{where} derive {col!r}")
            df[col] = value if isinstance(value, pd.Series) else pd.Series([value] * len(df), index=df.index)
            if not isinstance(df[col].dtype, pd.ArrowDtype):
                df[col] = df[col].convert_dtypes(dtype_backend="pyarrow")
        return df
    if isinstance(step, t.HashStep):
        _need(df, step.hash.columns, where + " hash")
        df = df.copy()
        salt = salts[index].encode()
        for col in step.hash.columns:
            df[col] = pd.Series(
                [
                    None if v is None or v is pd.NA else hashlib.sha256(salt + str(v).encode()).hexdigest()
                    for v in df[col].astype(object).where(df[col].notna(), None)
                ],
                index=df.index,
                dtype=pd.ArrowDtype(pa.string()),
            )
        return df
    if isinstance(step, t.PythonStep):
        fn = get_transform(step.python.name)
        out = fn(df.copy(), **step.python.options)
        if not isinstance(out, pd.DataFrame):
            raise StepError(f"{where} python {step.python.name!r} returned {type(out).__name__}, not a DataFrame")
        return out
    raise StepError(f"{where}: {type(step).__name__} is not applied chunk-wise")  # dedupe: see runner


def _eval(expr: str, df: pd.DataFrame, where: str) -> Any:
    try:
        return evaluate(expr, df)
    except ExpressionError as exc:
        raise StepError(f"{where}: {exc}") from None
    except (TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise StepError(f"{where}: cannot evaluate {expr!r}: {exc}") from None


def _is_string(s: pd.Series) -> bool:
    dtype = s.dtype
    return isinstance(dtype, pd.ArrowDtype) and (
        pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    )


def _arrow(s: pd.Series) -> pa.Array:
    """The Arrow array behind a column (numpy-backed columns are converted)."""
    return pa.array(s, from_pandas=not isinstance(s.dtype, pd.ArrowDtype))


def _map(s: pd.Series, args: t.MapArgs, where: str) -> pd.Series:
    """Replace the values of ``args.values`` (keys match the values' string form).

    The result type is the type Arrow infers for the mapped values (with the default when
    ``keep_unmapped`` is false). Kept unmapped values are cast to that type, so a column mapped to
    strings keeps its other values as strings; a value that cannot take that type is a :class:`StepError`.
    """
    arr = _arrow(s)
    try:
        keys = arr if arr.type == pa.string() else arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise StepError(f"{where}: a {arr.type} column cannot be mapped by its string form ({exc})") from None
    targets = list(args.values.values()) + ([] if args.keep_unmapped else [args.default])
    try:
        mapped_to = pa.array(targets)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise StepError(
            f"{where}: the mapped values {targets} do not share one type ({exc}); map to values of one type"
        ) from None
    if pa.types.is_null(mapped_to.type):  # everything maps to null: the column keeps its type
        mapped_to = mapped_to.cast(arr.type)
    index = pc.index_in(keys, value_set=pa.array(list(args.values), pa.string()))
    known = pc.is_valid(index)
    mapped = mapped_to.take(index)
    if not args.keep_unmapped:
        out = pc.if_else(known, mapped, mapped_to[-1])
    else:
        try:
            fallback = arr.cast(mapped_to.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            unmapped = arr.filter(pc.invert(known)).to_pylist()
            bad = next((v for v in unmapped if v is not None and not _castable(v, arr.type, mapped_to.type)), None)
            raise StepError(
                f"{where}: unmapped value {bad!r} cannot become {mapped_to.type} like the mapped values ({exc}). "
                "Map every value, or set keep_unmapped: false"
            ) from None
        out = pc.if_else(known, mapped, fallback)
    return pd.Series(out, index=s.index, dtype=pd.ArrowDtype(out.type))


def _cast(s: pd.Series, typ: str, where: str) -> pd.Series:
    target = arrow_type(typ)
    arr = _arrow(s)
    if pa.types.is_string(arr.type) and not pa.types.is_string(target):
        arr = pc.utf8_trim_whitespace(arr)
    try:
        out = _cast_array(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        bad = next((v for v in arr.to_pylist() if v is not None and not _castable(v, arr.type, target)), None)
        raise StepError(f"{where}: value {bad!r} cannot become {typ} ({exc})") from None
    return pd.Series(out, index=s.index, dtype=pd.ArrowDtype(target))


def _cast_array(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast refusing any loss of value.

    Arrow's safe integer-to-decimal cast demands room for the largest integer of the source type
    (precision >= 19 + scale for int64), whatever the values. Integers therefore go through a
    decimal wide enough for any of them, and the cast to the target checks the actual values.
    """
    if pa.types.is_integer(arr.type) and pa.types.is_decimal(target):
        wide = pa.decimal128(38, target.scale) if target.scale <= 38 - 20 else pa.decimal256(76, target.scale)
        arr = arr.cast(wide, safe=True)
    return arr.cast(target, safe=True)


def _castable(value: Any, src: pa.DataType, target: pa.DataType) -> bool:
    try:
        _cast_array(pa.array([value], type=src), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True
