"""A stand-in of NetSuite's SuiteQL REST endpoint with token-based authentication (OAuth 1.0a).

From Oracle's documentation (excerpts in /work/shared/api-recordings/netsuite; no public recording exists):

- SuiteQL: https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_157909186990.html —
  ``POST /services/rest/query/v1/suiteql?limit=(≤1000)&offset=`` with ``Prefer: transient`` and a body
  ``{"q": "SELECT …"}``; the answer ``{"links": [first/previous/next/last/self], "count", "hasMore",
  "items": [{"links": [], …}], "offset", "totalResults"}``; column names come back in lower case and
  values as text.
- Collection paging: https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156414087576.html
- TBA: https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4247337262.html — OAuth 1.0a
  with HMAC-SHA256 and the account id as ``realm``.
- Errors (RFC 7807 style): ``{"type", "title", "status", "o:errorDetails": [{"detail", "o:errorCode"}]}``;
  429 ``CONCURRENCY_LIMIT_EXCEEDED`` without a documented ``Retry-After``; 401 ``INVALID_LOGIN``.

The stand-in understands the queries of the preset: ``SELECT … FROM transaction`` with
``lastmodifieddate >= TO_TIMESTAMP('…', 'YYYY-MM-DD HH24:MI:SS') AND lastmodifieddate < TO_TIMESTAMP(…)``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import Unauthorized

PATH = "/services/rest/query/v1/suiteql"
_BOUND = re.compile(r"lastmodifieddate\s*(>=|>|<|<=)\s*TO_TIMESTAMP\('([^']+)'", re.I)
DOCS = (
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_157909186990.html",
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156414087576.html",
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4247337262.html",
)


class NetSuiteStandIn(StandIn):
    """Table ``transactions``; the account id (``realm``) is the option ``account`` (``1234567_SB1``)."""

    name = "netsuite_suiteql"
    docs = DOCS

    @property
    def account(self) -> str:
        return str(self.config.options.get("account", "1234567_SB1"))

    def build_tables(self) -> dict[str, Table]:
        n = self.count("transactions")
        return {"transactions": Table("transactions", n, lambda i: self._txn(i, n))}

    def _txn(self, i: int, n: int) -> Row:
        t = self.stamp(i, n)
        return {
            "id": str(5000 + i),
            "created": t - dt.timedelta(days=2),
            "updated": t,
            "deleted": None,
            "tranid": f"SO{i:06d}",
            "type": ("SalesOrd", "CustInvc", "CashSale")[i % 3],
            "entity": str(300 + i % 40),
            "foreigntotal": f"{(i % 900) * 11}.{i % 100:02d}",
            "currency": "1" if i % 2 else "2",
        }

    def render(self, table: str, row: Row) -> dict[str, Any]:
        return {
            "links": [],
            "id": row["id"],
            "tranid": row["tranid"],
            "type": row["type"],
            "entity": row["entity"],
            "foreigntotal": row["foreigntotal"],
            "currency": row["currency"],
            "lastmodifieddate": row["updated"].strftime("%Y-%m-%d %H:%M:%S"),
        }

    def error_response(self, status: int, kind: str, message: str) -> Response:
        code = {429: "CONCURRENCY_LIMIT_EXCEEDED", 401: "INVALID_LOGIN", 400: "INVALID_PARAMETER"}.get(
            status, "UNEXPECTED_ERROR"
        )
        body = {
            "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15",
            "title": kind,
            "status": status,
            "o:errorDetails": [{"detail": message, "o:errorCode": code}],
        }
        return self.json(
            body, status, None if status == 429 else self.retry_headers(status), "application/vnd.oracle.resource+json"
        )

    def connection(self) -> dict[str, Any]:
        c = self.credentials
        return {
            "conn_type": "http",
            "host": self.host_name,
            "schema": "https",
            "port": self.port,
            "extra": {
                "auth_kind": "oauth1_tba",
                "account": self.account,
                "consumer_key": c.consumer_key,
                "consumer_secret": c.consumer_secret,
                "token_id": c.token_id,
                "token_secret": c.token_secret,
                "verify": str(self.tls.ca_bundle),
            },
        }

    def routes(self) -> list[Route]:
        return [Route(PATH, self.suiteql, methods=["POST"])]

    async def suiteql(self, request: Request) -> Response:
        try:
            self.auth.check_oauth1("POST", str(request.url), request.headers.get("authorization"), self.account)
        except Unauthorized:
            return self.error_response(
                401, "Unauthorized", "Invalid login attempt. For more details, see the Login Audit Trail."
            )
        if request.headers.get("prefer", "").lower() != "transient":
            return self.error_response(400, "Bad Request", "SuiteQL requests need the header Prefer: transient")
        try:
            q = str(orjson.loads(await request.body())["q"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self.error_response(400, "Bad Request", 'The request body must be {"q": "SELECT ..."}')
        if "from transaction" not in q.lower():
            return self.error_response(400, "Bad Request", "Search error occurred: Record 'x' was not found.")
        start = end = None
        for op, value in _BOUND.findall(q):
            t = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
            if op.startswith(">"):
                start = t
            else:
                end = t
        view = self.tables["transactions"].view(Query(start=start, end=end))
        limit = min(1000, int(request.query_params.get("limit") or 1000))
        offset = int(request.query_params.get("offset") or 0)
        rows = view.slice(offset, offset + limit)
        total = len(view)

        def link(rel: str, off: int) -> dict[str, str]:
            return {"rel": rel, "href": f"{self.base_url}{PATH}?{urlencode({'limit': limit, 'offset': off})}"}

        links = [link("first", 0)]
        if offset > 0:
            links.append(link("previous", max(0, offset - limit)))
        if offset + limit < total:
            links.append(link("next", offset + limit))
        links += [link("last", max(0, (total - 1) // limit * limit)), link("self", offset)]
        body = {
            "links": links,
            "count": len(rows),
            "hasMore": offset + limit < total,
            "items": [self.render("transactions", r) for r in rows],
            "offset": offset,
            "totalResults": total,
        }
        return self.json(body, 200, None, "application/vnd.oracle.resource+json; type=collection; charset=UTF-8")
