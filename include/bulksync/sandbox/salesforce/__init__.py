"""A local Salesforce org for demos, tests and benchmarks: REST, Bulk API 2.0 and OAuth over HTTPS.

Start it with ``bulksync sandbox salesforce`` or in-process::

    with SalesforceSandbox(SandboxConfig(counts={"Account": 10_000})) as sf:
        ...  # sf.login_url, sf.credentials, sf.ca_bundle, sf.store, sf.faults

See ``docs/salesforce-sandbox.md``.
"""

from __future__ import annotations

from bulksync.sandbox.salesforce.faults import FaultSettings
from bulksync.sandbox.salesforce.server import SalesforceSandbox, SandboxConfig

__all__ = ["FaultSettings", "SalesforceSandbox", "SandboxConfig"]
