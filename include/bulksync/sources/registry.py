"""The registry of source kinds: a spec names a kind, never an import path."""

from __future__ import annotations

import importlib
from typing import Any

from bulksync.errors import ConfigurationError
from bulksync.sources.base import Source
from bulksync.staging.partition import Window

# kind -> module defining a Source subclass whose ``kind`` matches
SOURCES: dict[str, str] = {
    "sql": "bulksync.sources.sql",
    "csv_files": "bulksync.sources.csv_files",
    "file_drop": "bulksync.sources.file_drop.source",
    "ibmi": "bulksync.sources.ibmi",
    "salesforce": "bulksync.sources.salesforce",
    "api": "bulksync.sources.api.source",
}


def source_class(kind: str) -> type[Source]:
    """Return the Source implementation of a kind."""
    try:
        module = importlib.import_module(SOURCES[kind])
    except KeyError:
        raise ConfigurationError(f"unknown source kind {kind!r}; registered: {', '.join(SOURCES)}") from None
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Source) and getattr(obj, "kind", None) == kind:
            return obj
    raise ConfigurationError(f"module {SOURCES[kind]} defines no Source of kind {kind!r}")  # pragma: no cover


def make_source(spec: Any, window: Window, chunk: dict[str, Any] | None = None) -> Source:
    """Instantiate the Source for a dataset's ``source`` spec, a window and (optionally) a chunk."""
    return source_class(spec.kind)(spec, window, chunk)
