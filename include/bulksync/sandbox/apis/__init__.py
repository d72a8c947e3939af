"""Stand-ins of the systems the ``api`` presets target, on the shared framework (:mod:`bulksync.sandbox.asgi`).

Each module follows its vendor's public documentation (cited in the module) and the recordings the
presets were checked against; :data:`STANDINS` names them for ``bulksync sandbox api`` and tests.
"""

from __future__ import annotations

import importlib
from typing import Any

STANDINS: dict[str, str] = {
    "hubspot": "bulksync.sandbox.apis.hubspot:HubSpotStandIn",
    "msgraph": "bulksync.sandbox.apis.msgraph:GraphStandIn",
    "stripe": "bulksync.sandbox.apis.stripe:StripeStandIn",
    "okta": "bulksync.sandbox.apis.okta:OktaStandIn",
    "dynamics365": "bulksync.sandbox.apis.dynamics365:DataverseStandIn",
    "sap_odata": "bulksync.sandbox.apis.sap_odata:SapODataStandIn",
    "netsuite_suiteql": "bulksync.sandbox.apis.netsuite_suiteql:NetSuiteStandIn",
    "workday_raas": "bulksync.sandbox.apis.workday_raas:WorkdayRaasStandIn",
    "acme_rest": "bulksync.sandbox.apis.acme_rest:AcmeRestStandIn",
}


def standin_class(name: str) -> Any:
    """The stand-in class of ``name`` (KeyError listing the known ones)."""
    if name not in STANDINS:
        raise KeyError(f"no stand-in {name!r}; stand-ins: {', '.join(STANDINS)}")
    module, _, cls = STANDINS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
