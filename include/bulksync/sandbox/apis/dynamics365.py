"""A stand-in of the Dataverse Web API (Dynamics 365, OData v4) and of the Entra ID token endpoint.

From the vendor documentation (and /work/shared/api-recordings/dataverse):

- Paging: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/page-results —
  ``Prefer: odata.maxpagesize=N`` (echoed in ``Preference-Applied``), ``@odata.nextLink`` with a
  ``$skiptoken`` paging cookie, placed after ``value``; ``$skip`` is not supported.
- Counting: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/count-rows —
  ``$count=true`` gives ``@odata.count``, capped at 5,000 (with
  ``@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded: true``).
- Filters: ``$filter=modifiedon ge 2026-01-01T00:00:00Z and modifiedon lt …`` (OData v4 literals).
- Limits: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/api-limits — 429 with
  ``Retry-After`` seconds and ``{"error": {"code": "0x80072322", "message": "Number of requests exceeded
  the limit of 6000 over time window of 300 seconds."}}``.
- Auth: Entra ID client credentials with the scope ``https://{org}.crm.dynamics.com/.default`` (MSAL).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import CITIES, iso_s
from bulksync.sandbox.apis.msgraph import GraphStandIn
from bulksync.sandbox.asgi import Query, Row, Table

_FILTER = re.compile(r"(\w+)\s+(ge|gt|lt|le)\s+(\S+)", re.I)
COUNT_CAP = 5000
SAFE = "$(),'=/"  # the documented nextLink keeps $ = / quotes and parentheses as they are, spaces as %20
DOCS = (
    "https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/page-results",
    "https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/count-rows",
    "https://learn.microsoft.com/en-us/power-apps/developer/data-platform/api-limits",
)


class DataverseStandIn(GraphStandIn):
    """Table ``accounts`` of ``https://acme.crm.dynamics.com`` (the org name is the option ``org``)."""

    name = "dynamics365"
    docs = DOCS

    @property
    def scope(self) -> str:  # type: ignore[override]
        return f"https://{self.config.options.get('org', 'acme')}.crm.dynamics.com/.default"

    def build_tables(self) -> dict[str, Table]:
        return {"accounts": self.generated("accounts", self._account)}

    def _account(self, i: int, n: int) -> Row:
        t = self.stamp(i, n)
        return {
            "id": f"{i:08x}-d01c-ed11-b83e-000d3a572421",
            "created": t - dt.timedelta(days=10),
            "updated": t,
            "deleted": None,
            "name": f"Account {i}",
            "accountnumber": f"AC{i:06d}",
            "address1_city": CITIES[i % len(CITIES)],
            "revenue": f"{(i % 700) * 1000}.25",
            "numberofemployees": 5 + i % 500,
            "statecode": 0,
        }

    def render(self, table: str, row: Row, select: list[str] | None = None, delta: bool = False) -> dict[str, Any]:
        full = {
            "@odata.etag": f'W/"{70000000 + int(row["updated"].timestamp()) % 1000000}"',
            "accountid": row["id"],
            "name": row["name"],
            "accountnumber": row["accountnumber"],
            "address1_city": row["address1_city"],
            "revenue": float(row["revenue"]),
            "numberofemployees": row["numberofemployees"],
            "statecode": row["statecode"],
            "createdon": iso_s(row["created"]),
            "modifiedon": iso_s(row["updated"]),
        }
        if select:
            return {k: v for k, v in full.items() if k in select or k in ("@odata.etag", "accountid")}
        return full

    def error_response(self, status: int, kind: str, message: str) -> Response:
        if status == 429:
            msg = "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
            return self.json({"error": {"code": "0x80072322", "message": msg}}, 429, self.retry_headers(429))
        return self.json(
            {"error": {"code": "0x80040217" if status == 404 else "0x80040216", "message": message}},
            status,
            self.retry_headers(status),
        )

    def routes(self) -> list[Route]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route("/api/data/v9.2/accounts", self.accounts, methods=["GET"]),
            Route("/api/data/v9.2/accounts/$count", self.count_rows, methods=["GET"]),
        ]

    async def count_rows(self, request: Request) -> Response:
        """``GET …/accounts/$count``: the number as text/plain, capped at 5,000 like ``@odata.count``."""
        if (denied := self._check(request)) is not None:
            return denied
        n = min(len(self.tables["accounts"].view(Query())), COUNT_CAP)
        return Response(str(n), 200, {"OData-Version": "4.0"}, media_type="text/plain")

    async def accounts(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        q = dict(request.query_params)
        if "$skip" in q:
            return self.error_response(400, "bad_request", "The query parameter $skip is not supported")
        prefer = ",".join(request.headers.getlist("prefer"))  # one header or several (count-rows example)
        m = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = min(5000, int(m.group(1))) if m else 5000
        page = 1
        if "$skiptoken" in q:
            m2 = re.search(r'pagenumber="(\d+)"', q.pop("$skiptoken"))
            page = int(m2.group(1)) if m2 else 1
        start = end = None
        for field, op, value in _FILTER.findall(q.get("$filter", "")):
            if field != "modifiedon":
                return self.error_response(400, "bad_request", f"filter on {field} is not supported here")
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if op.lower() in ("ge", "gt"):
                start = t
            else:
                end = t
        view = self.tables["accounts"].view(Query(start=start, end=end))
        rows = view.slice((page - 1) * size, page * size)
        select = [s for s in q.get("$select", "").split(",") if s] or None
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/api/data/v9.2/$metadata#accounts"}
        counted = q.get("$count") == "true"
        if counted:
            body["@odata.count"] = min(len(view), COUNT_CAP)
        if "odata.include-annotations" in prefer:  # only when asked for; -1 without $count=true (count-rows.md)
            body["@Microsoft.Dynamics.CRM.totalrecordcount"] = min(len(view), COUNT_CAP) if counted else -1
            body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = counted and len(view) > COUNT_CAP
        body["value"] = [self.render("accounts", r, select) for r in rows]
        if page * size < len(view):
            last, first = rows[-1]["id"].upper(), rows[0]["id"].upper()
            cookie = re.sub(  # encoded once, lower-case hex, inside the token (as in page-results.md)
                r"%[0-9A-F]{2}",
                lambda m: m.group(0).lower(),
                quote(f'<cookie page="{page}"><accountid last="{{{last}}}" first="{{{first}}}" /></cookie>', safe=""),
            )
            token = f'<cookie pagenumber="{page + 1}" pagingcookie="{cookie}" istracking="False" />'
            query = urlencode({**q, "$skiptoken": token}, safe=SAFE, quote_via=quote)
            body["@odata.nextLink"] = f"{self.base_url}/api/data/v9.2/accounts?{query}"
        headers = {"OData-Version": "4.0", "x-ms-ratelimit-burst-remaining-xrm-requests": "5999"}
        applied = [f"odata.maxpagesize={size}"] if m else []
        applied += re.findall(r'odata\.include-annotations="[^"]*"', prefer)
        if applied:
            headers["Preference-Applied"] = ",".join(applied)
        return self.json(body, 200, headers, "application/json; odata.metadata=minimal")
