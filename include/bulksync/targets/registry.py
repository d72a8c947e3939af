"""The registry of target kinds."""

from __future__ import annotations

import importlib
from typing import Any

from bulksync.errors import ConfigurationError
from bulksync.targets.base import Target

TARGETS: dict[str, str] = {
    "postgres": "bulksync.targets.postgres:PostgresTarget",
    "sqlite": "bulksync.targets.sql:SqlTarget",
    "azure_lake": "bulksync.targets.azure_lake:AzureLakeTarget",
    "salesforce": "bulksync.targets.salesforce:SalesforceTarget",
}


def make_target(spec: Any) -> Target:
    """Instantiate the Target of a dataset's ``target`` spec."""
    try:
        module, _, name = TARGETS[spec.kind].partition(":")
    except KeyError:
        raise ConfigurationError(f"unknown target kind {spec.kind!r}; registered: {', '.join(TARGETS)}") from None
    cls: type[Target] = getattr(importlib.import_module(module), name)
    return cls(spec)
