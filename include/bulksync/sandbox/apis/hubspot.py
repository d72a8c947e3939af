"""A stand-in of the HubSpot CRM v3 API (contacts, companies, deals; list, search, associations).

Follows the vendor documentation and the recordings in /work/shared/api-recordings/hubspot:

- Objects list: https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/get-crm-v3-objects-contacts
  ``GET /crm/v3/objects/{object}?limit=(≤100)&after=&properties=a,b&archived=&associations=``; the last
  page has no ``paging`` member; ``archived=true`` lists only archived objects (``archivedAt``).
- Search: https://developers.hubspot.com/docs/api-reference/search/guide — ``POST …/{object}/search`` with
  ``filterGroups`` (GTE/GT/LT/LTE/EQ/BETWEEN; dates as epoch milliseconds or ISO 8601), ``limit`` ≤ 200,
  ``after`` (an offset string, as recorded), ``total``; paging beyond 10,000 results gives 400; archived
  objects never appear.
- Rate limits: https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines — the
  ``X-HubSpot-RateLimit-*`` headers on list/GET answers (none on search); the recorded 429 has no
  ``Retry-After``: ``{"status":"error","message":"You have reached your secondly limit.","category":"RATE_LIMITS"}``.
- OAuth: https://developers.hubspot.com/docs/api/oauth/tokens — ``POST /oauth/v1/token`` (refresh_token grant,
  tokens valid 1,800 s); a private app's static token works as a bearer token too. 401 bodies carry
  ``category`` INVALID_AUTHENTICATION or EXPIRED_AUTHENTICATION.

Options (``StandInConfig.options``): ``contacts_per_company`` (5), ``rate_max`` (requests per 10 s in the
headers, default 100,000), ``enforce_rate_limit`` (429 once exceeded, default False).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import CITIES, INDUSTRIES, iso_ms, parse_time, person
from bulksync.sandbox.asgi import Query, Row, StandIn, Table, View
from bulksync.sandbox.asgi.auth import OAuthError, Unauthorized

DOCS = (
    "https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/get-crm-v3-objects-contacts",
    "https://developers.hubspot.com/docs/api-reference/search/guide",
    "https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines",
    "https://developers.hubspot.com/docs/api/oauth/tokens",
)
SEARCH_CAP = 10_000
LAST_MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
DEFAULT_PROPERTIES = {
    "contacts": ("firstname", "lastname", "email"),
    "companies": ("name", "domain"),
    "deals": ("dealname", "amount", "dealstage", "pipeline", "closedate"),
}
TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
BASE_ID = {"contacts": 100_000_000, "companies": 200_000_000, "deals": 300_000_000}


class HubSpotStandIn(StandIn):
    """``HubSpotStandIn(StandInConfig(counts={"contacts": 1000}))``; tables contacts, companies, deals."""

    name = "hubspot"
    token_paths = ("/oauth/v1/token",)
    docs = DOCS

    def build_tables(self) -> dict[str, Table]:
        self.per_company = int(self.config.options.get("contacts_per_company", 5))
        self.rate_max = int(self.config.options.get("rate_max", 100_000))
        self._calls: deque[float] = deque()
        self._rate_lock = threading.Lock()
        n_companies = self.count("companies", max(1, self.count("contacts") // self.per_company))
        tables = {}
        for obj in ("contacts", "companies", "deals"):
            n = n_companies if obj == "companies" else self.count(obj)
            tables[obj] = Table(obj, n, self._maker(obj, n, n_companies))
        return tables

    def _maker(self, obj: str, n: int, n_companies: int) -> Any:
        base = BASE_ID[obj]

        def make(i: int) -> Row:
            updated = self.stamp(i, n)
            row: Row = {
                "id": str(base + i),
                "created": updated - dt.timedelta(days=30),
                "updated": updated,
                "deleted": None,
            }
            if obj == "contacts":
                first, last = person(i)
                row.update(
                    firstname=first,
                    lastname=last,
                    email=f"{first}.{last}.{i}@example.com".lower(),
                    phone=f"+1-555-{i % 10_000:04d}",
                    jobtitle=None if i % 7 == 0 else "Engineer",
                    company=f"Company {i // self.per_company}",
                    associatedcompanyid=str(BASE_ID["companies"] + (i // self.per_company) % max(1, n_companies)),
                )
            elif obj == "companies":
                row.update(
                    name=f"Company {i}",
                    domain=f"company{i}.example.com",
                    city=CITIES[i % len(CITIES)],
                    industry=INDUSTRIES[i % len(INDUSTRIES)],
                    numberofemployees=str(10 + i % 990),
                    annualrevenue=f"{(i % 1000) * 1000 + 0.5:.2f}",
                )
            else:
                row.update(
                    dealname=f"Deal {i}",
                    amount=str(100 + i % 9_000) if i % 3 else f"{100 + i % 9_000}.50",
                    dealstage=("appointmentscheduled", "qualifiedtobuy", "closedwon")[i % 3],
                    pipeline="default",
                    closedate=None if i % 4 else iso_ms(updated + dt.timedelta(days=60)),
                    company_id=str(BASE_ID["companies"] + i % max(1, n_companies)),
                )
            return row

        return make

    # -- rendering ------------------------------------------------------------------------------

    def render(
        self, table: str, row: Row, props: list[str] | None = None, associations: list[str] | None = None
    ) -> dict[str, Any]:
        names = props or list(DEFAULT_PROPERTIES[table])
        p: dict[str, Any] = {}
        for name in names:  # a requested property the object has no value for comes back as null (recorded)
            if name not in ("id", "created", "updated", "deleted"):
                p[name] = row.get(name)
        p["createdate"] = iso_ms(row["created"])
        p[LAST_MODIFIED[table]] = iso_ms(row["updated"])
        p["hs_object_id"] = row["id"]
        out: dict[str, Any] = {
            "id": row["id"],
            "properties": p,
            "createdAt": iso_ms(row["created"]),
            "updatedAt": iso_ms(row["updated"]),
            "archived": row["deleted"] is not None,
        }
        if row["deleted"] is not None:
            out["archivedAt"] = iso_ms(row["deleted"])
        if associations:
            assoc: dict[str, Any] = {}
            for other in associations:
                key = "associatedcompanyid" if table == "contacts" else "company_id"
                if other == "companies" and row.get(key):
                    assoc["companies"] = {"results": [{"id": row[key], "type": f"{table[:-1]}_to_company"}]}
            if assoc:
                out["associations"] = assoc
        out["url"] = f"https://app.hubspot.com/contacts/147893286/record/{TYPE_IDS[table]}/{row['id']}"
        return out

    def error_response(self, status: int, kind: str, message: str) -> Response:
        if status == 429:  # the recorded body (with its correlationId), no Retry-After
            body = {
                "status": "error",
                "message": "You have reached your secondly limit.",
                "correlationId": str(uuid.uuid4()),
                "category": "RATE_LIMITS",
            }
            return self.json(body, 429)
        body = {
            "status": "error",
            "message": message,
            "correlationId": "00000000-0000-0000-0000-000000000000",
            "category": {
                "not_found": "OBJECT_NOT_FOUND",
                "bad_request": "VALIDATION_ERROR",
                "unavailable": "SERVICE_UNAVAILABLE",
            }.get(kind, kind),
        }
        return self.json(body, status, self.retry_headers(status) if status == 503 else None)

    def unauthorized(self, exc: Unauthorized) -> Response:
        if exc.reason == "expired":
            body = {
                "status": "error",
                "message": "The OAuth token used to make this call expired 1 second(s) ago.",
                "correlationId": "00000000-0000-0000-0000-000000000004",
                "category": "EXPIRED_AUTHENTICATION",
                "context": {"expire time": [iso_ms(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))]},
            }
        else:
            body = {
                "status": "error",
                "message": "Authentication credentials not found.",
                "correlationId": "00000000-0000-0000-0000-000000000003",
                "category": "INVALID_AUTHENTICATION",
            }
        return self.json(body, 401)

    def connection(self) -> dict[str, Any]:
        c = self.credentials
        return self.http_connection(
            {
                "auth_kind": "oauth2_refresh_token",
                "token_url": self.token_url,
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "refresh_token": c.refresh_token,
            }
        )

    # -- routes ---------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/v1/token", self.token, methods=["POST"]),
            Route("/crm/v3/objects/{object}", self.list_objects, methods=["GET"]),
            Route("/crm/v3/objects/{object}/search", self.search, methods=["POST"]),
            Route("/crm/v3/objects/{object}/{id}/associations/{to}", self.associations, methods=["GET"]),
        ]

    async def token(self, request: Request) -> Response:
        try:
            return self.json(self.auth.grant(await self.form(request), self.basic(request)))
        except OAuthError as exc:
            return self.json(
                {
                    "status": "BAD_REFRESH_TOKEN" if exc.error == "invalid_grant" else exc.error,
                    "message": exc.description,
                    "error": exc.error,
                    "error_description": exc.description,
                },
                exc.status,
            )

    def _check(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        try:
            if header and header[7:].strip() == self.credentials.api_key:
                return None  # a private app's static token
            self.auth.check_bearer(header)
        except Unauthorized as exc:
            return self.unauthorized(exc)
        return None

    def _object(self, request: Request) -> str | Response:
        obj = request.path_params["object"].lower()
        obj = {"contact": "contacts", "company": "companies", "deal": "deals"}.get(obj, obj)  # CONTACT was accepted
        if obj not in self.tables:
            return self.error_response(
                400, "bad_request", f"Unable to infer object type from: {request.path_params['object']}"
            )
        return obj

    def _rate_headers(self) -> dict[str, str]:
        now = time.monotonic()
        with self._rate_lock:
            while self._calls and self._calls[0] < now - 10:
                self._calls.popleft()
            self._calls.append(now)
            used = len(self._calls)
        second = sum(1 for t in self._calls if t > now - 1)
        secondly = max(1, self.rate_max // 10)
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.rate_max),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.rate_max - used)),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - second)),
        }

    async def list_objects(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        obj = self._object(request)
        if isinstance(obj, Response):
            return obj
        q = request.query_params
        headers = self._rate_headers()
        if self.config.options.get("enforce_rate_limit") and headers["X-HubSpot-RateLimit-Secondly-Remaining"] == "0":
            return self.error_response(429, "throttle", "secondly")
        limit = int(q.get("limit") or 10)
        if limit > 100:
            return self.error_response(400, "bad_request", "limit must be at most 100")
        archived = q.get("archived") == "true"
        view = self.tables[obj].view(Query(deleted="only" if archived else "exclude"))
        start = 0
        if q.get("after"):
            pos = view.position_after(q["after"])
            if pos is None:
                return self.error_response(400, "bad_request", f"invalid after {q['after']!r}")
            start = pos
        rows = view.slice(start, start + limit)
        props = [p for p in (q.get("properties") or "").split(",") if p] or None
        assoc = [a for a in (q.get("associations") or "").split(",") if a] or None
        body: dict[str, Any] = {"results": [self.render(obj, r, props, assoc) for r in rows]}
        if start + limit < len(view) and rows:
            after = rows[-1]["id"]
            body["paging"] = {"next": {"after": after, "link": f"{self.base_url}/crm/v3/objects/{obj}?after={after}"}}
        return self.json(body, 200, headers, "application/json;charset=utf-8")

    async def search(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        obj = self._object(request)
        if isinstance(obj, Response):
            return obj
        import orjson

        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return self.error_response(400, "bad_request", "Invalid input JSON")
        limit = int(body.get("limit") or 10)
        if limit > 200:
            return self.error_response(400, "bad_request", "limit must be at most 200")
        offset = int(body.get("after") or 0)
        if offset >= SEARCH_CAP:
            return self.error_response(
                400, "bad_request", "paging beyond the 10,000 result limit of the search endpoint"
            )
        view = self._search_view(obj, body.get("filterGroups") or [])
        if isinstance(view, Response):
            return view
        rows = view.slice(offset, offset + limit)
        out: dict[str, Any] = {
            "total": len(view),
            "results": [self.render(obj, r, body.get("properties") or None) for r in rows],
        }
        if offset + limit < len(view):
            out["paging"] = {"next": {"after": str(offset + limit)}}
        return self.json(out, 200, None, "application/json;charset=utf-8")

    def _search_view(self, obj: str, groups: list[dict[str, Any]]) -> View | Response:
        if len(groups) > 1:
            return self.error_response(400, "bad_request", "the stand-in supports one filterGroup")
        start = end = None
        start_inc, end_inc = True, False
        eq: dict[str, str] = {}
        for f in (groups[0].get("filters") or []) if groups else []:
            prop, op, value = f.get("propertyName"), f.get("operator"), f.get("value")
            if prop in ("lastmodifieddate", "hs_lastmodifieddate"):
                try:
                    t = parse_time(value)
                except ValueError:
                    return self.error_response(400, "bad_request", f"invalid date value {value!r}")
                if op in ("GTE", "GT"):
                    start, start_inc = t, op == "GTE"
                elif op in ("LT", "LTE"):
                    end, end_inc = t, op == "LTE"
                elif op == "BETWEEN":
                    start, end, end_inc = t, parse_time(f.get("highValue")), True
                else:
                    return self.error_response(400, "bad_request", f"operator {op} on {prop} is not supported here")
            elif op == "EQ":
                eq[str(prop)] = str(value)
            else:
                return self.error_response(400, "bad_request", f"filter {prop} {op} is not supported here")
        table = self.tables[obj]
        if obj == "contacts" and set(eq) == {"associatedcompanyid"} and start is None and end is None:
            idx = int(eq["associatedcompanyid"]) - BASE_ID["companies"]  # contacts of a company are contiguous
            lo, hi = max(0, idx * self.per_company), min(table.count, (idx + 1) * self.per_company)
            base = table.view(Query())
            hidden = [i for i in base.hidden if lo <= i < hi]
            extra = [r for r in base.extra if r.get("associatedcompanyid") == eq["associatedcompanyid"]]
            return View(table, lo, max(lo, hi), hidden, extra)
        where = (lambda r: all(str(r.get(k)) == v for k, v in eq.items())) if eq else None
        return table.view(Query(start=start, end=end, start_inclusive=start_inc, end_inclusive=end_inc, where=where))

    async def associations(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        obj = self._object(request)
        if isinstance(obj, Response):
            return obj
        parent, to = request.path_params["id"], request.path_params["to"]
        row = self.tables[obj].get(parent)
        if row is None or row["deleted"] is not None or obj != "companies" or to != "contacts":
            return self.error_response(404, "not_found", "resource not found")
        view = self._search_view(
            "contacts", [{"filters": [{"propertyName": "associatedcompanyid", "operator": "EQ", "value": parent}]}]
        )
        assert isinstance(view, View)
        limit = min(500, int(request.query_params.get("limit") or 500))
        start = int(request.query_params.get("after") or 0)
        rows = view.slice(start, start + limit)
        body: dict[str, Any] = {"results": [{"id": r["id"], "type": "company_to_contact"} for r in rows]}
        if start + limit < len(view):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return self.json(body, 200, self._rate_headers())
