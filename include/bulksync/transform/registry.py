"""Named Python transforms, registered with a decorator from ``include/transforms/*.py``.

Example::

    from bulksync.transform.registry import transform

    @transform("normalize_phone")
    def normalize_phone(df, column="phone"):
        df[column] = df[column].str.replace(r"[^0-9+]", "", regex=True)
        return df

A spec then says ``- python: {name: normalize_phone, options: {column: phone}}``. The function
gets one pandas chunk and the options, and returns the transformed chunk. It must work row-local
(chunk by chunk); it must not depend on seeing the whole dataset.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bulksync.errors import ConfigurationError

log = logging.getLogger(__name__)

TransformFn = Callable[..., Any]
_REGISTRY: dict[str, TransformFn] = {}
_loaded_from: set[Path] = set()


def transform(name: str) -> Callable[[TransformFn], TransformFn]:
    """Register ``fn(df, **options) -> df`` under ``name`` for ``python`` transform steps."""

    def register(fn: TransformFn) -> TransformFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ConfigurationError(
                f"transform {name!r} is registered twice ({_REGISTRY[name].__module__}, {fn.__module__})"
            )
        _REGISTRY[name] = fn
        return fn

    return register


def transforms_dir() -> Path:
    """``$BULKSYNC_TRANSFORMS_DIR`` or ``include/transforms`` under ``$BULKSYNC_HOME``."""
    from bulksync.settings import resolve_path

    return resolve_path(os.environ.get("BULKSYNC_TRANSFORMS_DIR") or "include/transforms")


def load_transforms(folder: Path | None = None) -> dict[str, TransformFn]:
    """Import every module of the transforms folder once and return the registry."""
    folder = (folder or transforms_dir()).resolve()
    if folder in _loaded_from or not folder.is_dir():
        return _REGISTRY
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        mod_name = f"bulksync_transforms.{path.stem}"
        if mod_name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(mod_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    _loaded_from.add(folder)
    log.debug("named transforms: %s", sorted(_REGISTRY))
    return _REGISTRY


def get_transform(name: str) -> TransformFn:
    """Return a registered transform or raise naming the known ones."""
    registry = load_transforms()
    try:
        return registry[name]
    except KeyError:
        raise ConfigurationError(
            f"no transform named {name!r}; registered: {', '.join(sorted(registry)) or 'none'} "
            f"(define it with @transform({name!r}) in {transforms_dir()})"
        ) from None
