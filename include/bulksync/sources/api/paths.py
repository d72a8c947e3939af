"""Dotted paths into JSON (``results``, ``d.results``, ``$.data[0].id``, ``properties.email``).

A path is a JSONPath subset: an optional ``$``/``$.`` prefix, member names separated by dots, and
``[n]`` list indices. Members whose names hold dots or start with ``@`` are written as they are
(``@odata.nextLink`` is one member: a segment starting with ``@`` keeps the rest of the path).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

_INDEX = re.compile(r"\[(\d+)\]")
_EMPTY: dict[str, Any] = {}


@cache
def parts(path: str) -> tuple[str | int, ...]:
    """The segments of ``path``."""
    p = path[1:] if path.startswith("$") else path
    p = p[1:] if p.startswith(".") else p
    if not p:
        return ()
    out: list[str | int] = []
    rest = p
    while rest:
        if rest.startswith("@"):  # OData annotations: '@odata.nextLink', '@odata.count'
            out.append(rest)
            break
        seg, _, rest = rest.partition(".")
        name = _INDEX.split(seg)
        if name[0]:
            out.append(name[0])
        out.extend(int(i) for i in name[1::2])
    return tuple(out)


def get(obj: Any, path: str) -> Any:
    """The value at ``path`` in ``obj`` (None when any segment is missing)."""
    for seg in parts(path):
        if obj is None:
            return None
        try:
            obj = obj[seg]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def has(obj: Any, path: str) -> bool:
    """True when ``path`` exists in ``obj`` (even if its value is null)."""
    segs = parts(path)
    for seg in segs[:-1]:
        try:
            obj = obj[seg]
        except (KeyError, IndexError, TypeError):
            return False
    if not segs:
        return True
    try:
        obj[segs[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def column_values(records: list[Any], path: str) -> list[Any]:
    """``[get(r, path) for r in records]``, with fast paths for one and two member names."""
    segs = parts(path)
    if len(segs) == 1 and isinstance(segs[0], str):
        k = segs[0]
        try:
            return [r.get(k) for r in records]
        except AttributeError:
            pass
    elif len(segs) == 2 and all(isinstance(s, str) for s in segs):
        a, b = str(segs[0]), str(segs[1])
        try:
            return [(r.get(a) or _EMPTY).get(b) for r in records]
        except AttributeError:
            pass
    return [get(r, path) for r in records]


def getter(path: str) -> Callable[[Any], Any]:
    """A function reading ``path``."""
    return lambda obj: get(obj, path)
