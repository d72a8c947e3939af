"""The ``salesforce`` target: Bulk API 2.0 ingest jobs, every record accounted for (docs/salesforce-write-back.md).

:class:`SalesforceTarget` is imported on first use, so ``bulksync sf`` (the CLI) and DAG parsing stay light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SalesforceTarget"]


def __getattr__(name: str) -> Any:
    if name == "SalesforceTarget":
        from bulksync.targets.salesforce.target import SalesforceTarget

        return SalesforceTarget
    raise AttributeError(name)
