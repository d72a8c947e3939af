"""The ``salesforce`` source: Bulk API 2.0 query jobs streamed into Arrow (see docs/salesforce.md)."""

from __future__ import annotations

from bulksync.sources.salesforce.source import SalesforceSource

__all__ = ["SalesforceSource"]
