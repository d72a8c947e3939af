"""The ``salesforce`` target: Bulk API 2.0 ingest jobs, every record accounted for (docs/salesforce-write-back.md)."""

from __future__ import annotations

from bulksync.targets.salesforce.target import SalesforceTarget

__all__ = ["SalesforceTarget"]
