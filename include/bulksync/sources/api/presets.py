"""Presets: data files (``presets/<system>.yaml``) that turn a system's objects into ``api`` options.

A preset file holds ``name``, ``title``, ``docs`` (vendor pages), ``auth`` (the connection's auth
kinds, documented), ``defaults`` (options shared by every object) and ``objects`` (per object:
``endpoint``, ``records`` with declared columns, ``primary_key``, ``window``, ``deletes``, ``total``…).
A spec's ``{preset, object, …overrides}`` is expanded to ``defaults ⊕ objects[object] ⊕ overrides``
(mappings merge key by key, lists and scalars replace) and then validated like generic options.
The format is described in docs/api-preset-authoring.md.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

import yaml

PRESET_DIR = "bulksync.sources.api"


@cache
def _load(name: str) -> dict[str, Any]:
    try:
        text = resources.files(PRESET_DIR).joinpath("presets", f"{name}.yaml").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(preset_names())}") from None
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("objects"), dict):
        raise ValueError(f"preset file {name}.yaml has no 'objects' mapping")
    return data


def preset_names() -> list[str]:
    """The presets shipped in the package."""
    folder = resources.files(PRESET_DIR).joinpath("presets")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset(name: str) -> dict[str, Any]:
    """A preset's parsed file (a copy)."""
    return copy.deepcopy(_load(name))


def merge(base: Any, over: Any) -> Any:
    """``over`` merged into ``base``: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def expand(options: dict[str, Any]) -> dict[str, Any]:
    """Generic options from ``{preset, object, ...overrides}``.

    Raises:
        ValueError: unknown preset or object (the message lists the known ones).
    """
    name = str(options["preset"])
    data = _load(name)
    obj = options.get("object")
    objects = data["objects"]
    if not obj:
        raise ValueError(f"preset {name!r} needs 'object': one of {', '.join(objects)}")
    if obj not in objects:
        raise ValueError(f"preset {name!r} has no object {obj!r}; objects: {', '.join(objects)}")
    overrides = {k: v for k, v in options.items() if k not in ("preset", "object")}
    resolved = merge(merge(data.get("defaults") or {}, objects[obj]), overrides)
    resolved.pop("description", None)
    return {**resolved, "preset": name, "object": obj}
