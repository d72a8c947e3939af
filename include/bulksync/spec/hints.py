"""Hints for spec errors: the YAML line of a field, and "did you mean" for misspelt keys and kinds.

Used by :func:`bulksync.spec.loader.parse_spec` when it turns pydantic's errors into problems.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel


def line_of(text: str | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML key or item at ``loc`` (the deepest one that exists), or None."""
    if not text:
        return None
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(part, str) and "=" in part:
            continue  # a union tag (kind=sql) is not in the YAML
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        elif isinstance(part, str) and isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part]
            if not match:
                break
            key, node = match[0]
            line = key.start_mark.line + 1
        else:
            break
    return line


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Annotated, Optional, unions, lists, dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return out
    for arg in typing.get_args(annotation):
        out.extend(_models(arg))
    return out


def _tagged(model: type[BaseModel], key: str, value: str) -> bool:
    """True when ``model``'s field ``key`` can only hold ``value`` (a Literal or its default)."""
    info = model.model_fields.get(key)
    if info is None:
        return False
    if typing.get_origin(info.annotation) is typing.Literal:
        return value in [str(a) for a in typing.get_args(info.annotation)]
    return str(info.default) == value


def fields_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names (and aliases) valid at ``loc``'s last part, from ``root`` down."""
    models = [root]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # list index: the same candidate models
        if isinstance(part, str) and "=" in part:  # union tag such as ``kind=sql``: that member only
            key, _, value = part.partition("=")
            models = [m for m in models if _tagged(m, key, value)] or models
            continue
        nxt: list[type[BaseModel]] = []
        for m in models:
            info = m.model_fields.get(part) or next((f for f in m.model_fields.values() if f.alias == part), None)
            if info is not None:
                nxt.extend(_models(info.annotation))
        models = nxt or models
    names: list[str] = []
    for m in models:
        for name, info in m.model_fields.items():
            names.append(info.alias or name)
    return sorted(set(names))


def did_you_mean(root: type[BaseModel], err: Mapping[str, Any]) -> str:
    """``; did you mean 'table'?`` for a misspelt key, kind or transform step, else ``""``."""
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
        close = difflib.get_close_matches(loc[-1], fields_at(root, loc), n=2, cutoff=0.6)
    elif err["type"] in ("literal_error", "union_tag_invalid", "enum") and isinstance(err.get("input"), str):
        ctx = err.get("ctx") or {}
        expected = str(ctx.get("expected_tags") or ctx.get("expected") or "")
        choices = re.findall(r"'([^']+)'", expected)
        close = difflib.get_close_matches(err["input"], choices, n=2, cutoff=0.6)
    elif str(err["type"]).startswith("unknown_") and isinstance(err.get("input"), dict):
        # bulksync's own errors list the choices after the last colon: "... registered kinds: sql, csv_files"
        choices = re.findall(r"[a-z0-9_]+", str(err["msg"]).rsplit(":", 1)[-1])
        given = [str(err["input"]["kind"])] if "kind" in err["input"] else [str(k) for k in err["input"]]
        close = [c for word in given for c in difflib.get_close_matches(word, choices, n=1, cutoff=0.6)]
    else:
        return ""
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
