"""A stand-in of an SAP Gateway OData v2 service (``API_SALES_ORDER_SRV``, entity set ``A_SalesOrder``).

From the OData v2 JSON format and SAP's documentation (and /work/shared/api-recordings/sap_odata_v2):

- JSON format: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-odata/ (OData v2 JSON
  verbose): ``{"d": {"results": [...], "__count": "n", "__next": "…"}}``; ``__count`` is a *string*
  (as Gateway sends it) with ``$inlinecount=allpages``; each entry has ``__metadata {uri, type}``;
  ``Edm.DateTime`` values are ``/Date(ms)/``, ``Edm.DateTimeOffset`` ``/Date(ms+0000)/``; decimals are strings.
- Server-driven paging: https://help.sap.com/docs/SAP_NETWEAVER_750/68bf513362174d54b58cddec28794093
  (SAP Gateway "Server-Side Paging"): ``__next`` with ``$skiptoken``; client paging with ``$top``/``$skip``.
- Filters: ``$filter=LastChangeDateTime ge datetimeoffset'2026-01-01T00:00:00Z' and … lt …``.
- Errors: the Gateway envelope ``{"error": {"code": "SY/530", "message": {"lang": "en", "value": …},
  "innererror": {"errordetails": [...]}}}``.
- Auth: HTTP Basic (a technical user), ``sap-client`` as a query parameter.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import Unauthorized

SERVICE = "/sap/opu/odata/sap/API_SALES_ORDER_SRV"
_FILTER = re.compile(r"(\w+)\s+(ge|gt|lt|le)\s+datetime(?:offset)?'([^']+)'", re.I)
SAFE = "$',()"  # __next keeps $ and quotes as they are ($skiptoken='opaque' in the pyodata mocks)
DOCS = (
    "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-odata/",
    "https://help.sap.com/docs/SAP_NETWEAVER_750/68bf513362174d54b58cddec28794093",
    "https://api.sap.com/api/API_SALES_ORDER_SRV/overview",
)


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


class SapODataStandIn(StandIn):
    """Table ``sales_orders``; option ``page_size`` (server-side paging, default 1000)."""

    name = "sap_odata"
    docs = DOCS

    def build_tables(self) -> dict[str, Table]:
        self.page_size = int(self.config.options.get("page_size", 1000))
        return {"sales_orders": self.generated("sales_orders", self._order)}

    def _order(self, i: int, n: int) -> Row:
        t = self.stamp(i, n)
        return {
            "id": str(1_000_000 + i),
            "created": t.replace(hour=0, minute=0, second=0, microsecond=0),
            "updated": t,
            "deleted": None,
            "SalesOrderType": ("OR", "TA", "CR")[i % 3],
            "SoldToParty": f"{17100000 + i % 90:08d}",
            "TotalNetAmount": f"{(i % 5000) * 3}.{i % 100:02d}",
            "TransactionCurrency": "EUR" if i % 2 else "USD",
            "OverallSDProcessStatus": ("A", "B", "C")[i % 3],
        }

    def render(self, table: str, row: Row) -> dict[str, Any]:
        so = row["id"]
        return {
            "__metadata": {  # uri and type, as in the recorded and specified v2 entries (no v4-style "id")
                "uri": f"{self.base_url}{SERVICE}/A_SalesOrder('{so}')",
                "type": "API_SALES_ORDER_SRV.A_SalesOrderType",
            },
            "SalesOrder": so,
            "SalesOrderType": row["SalesOrderType"],
            "SoldToParty": row["SoldToParty"],
            "CreationDate": f"/Date({_ms(row['created'])})/",
            "LastChangeDateTime": f"/Date({_ms(row['updated'])}+0000)/",
            "TotalNetAmount": row["TotalNetAmount"],
            "TransactionCurrency": row["TransactionCurrency"],
            "OverallSDProcessStatus": row["OverallSDProcessStatus"],
        }

    def error_response(self, status: int, kind: str, message: str) -> Response:
        body = {
            "error": {
                "code": "SY/530" if status < 500 else "/IWFND/CM_BEC/026",
                "message": {"lang": "en", "value": message},
                "innererror": {
                    "application": {
                        "component_id": "SD-SLS",
                        "service_namespace": "/SAP/",
                        "service_id": "API_SALES_ORDER_SRV",
                        "service_version": "0001",
                    },
                    "transactionid": "0000000000000000",
                    "errordetails": [],
                },
            }
        }
        return self.json(body, status, self.retry_headers(status))

    def connection(self) -> dict[str, Any]:
        c = self.credentials
        return self.http_connection({"auth_kind": "basic"}, login=c.username, password=c.password)

    def routes(self) -> list[Route]:
        return [Route(f"{SERVICE}/A_SalesOrder", self.orders, methods=["GET"])]

    async def orders(self, request: Request) -> Response:
        try:
            self.auth.check_basic(
                request.headers.get("authorization"), self.credentials.username, self.credentials.password
            )
        except Unauthorized:
            return Response("<html><body>Logon failed</body></html>", 401, media_type="text/html")
        q = dict(request.query_params)
        if q.get("$inlinecount", "none") not in ("allpages", "none"):  # MS-ODATA: any other value is a 4xx
            return self.error_response(400, "bad_request", f"Invalid value {q['$inlinecount']!r} for $inlinecount")
        if q.get("$format") != "json":
            return self.error_response(400, "bad_request", "Only $format=json is served by the stand-in")
        start = end = None
        for field, op, value in _FILTER.findall(q.get("$filter", "")):
            if field != "LastChangeDateTime":
                return self.error_response(400, "bad_request", f"Property {field} not filterable here")
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
            if op.lower() in ("ge", "gt"):
                start = t
            else:
                end = t
        view = self.tables["sales_orders"].view(Query(start=start, end=end))
        pos = int(q.pop("$skiptoken", 0) or 0) or int(q.get("$skip") or 0)
        top = int(q["$top"]) if "$top" in q else None
        size = min(self.page_size, top) if top else self.page_size
        rows = view.slice(pos, pos + size)
        d: dict[str, Any] = {"results": [self.render("sales_orders", r) for r in rows]}
        if q.get("$inlinecount") == "allpages":
            d["__count"] = str(len(view))
        if top is None and pos + size < len(view):
            d["__next"] = (
                f"{self.base_url}{SERVICE}/A_SalesOrder?{urlencode({**q, '$skiptoken': pos + size}, safe=SAFE)}"
            )
        return self.json({"d": d}, 200, {"dataserviceversion": "2.0"})
