"""``acme_rest``: a small REST/OData/GraphQL API with one endpoint per paging kind, for the generic
source's tests and the worked example of docs/api.md (a system with no preset).

One table, ``items`` (``{"id": int, "name", "amount": "12.50", "updated_at": ISO, "tags": [...]}``),
served by every paging style the engine knows, each as its usual vendor shapes it:

- ``GET /v1/items/next``    body ``{"data": [...], "next": "<absolute URL>"}``;
- ``GET /v1/items/link``    ``Link: <…>; rel="next"`` (RFC 8288), as Okta and GitHub;
- ``GET /v1/items/cursor``  ``{"data": [...], "meta": {"next_cursor": "…"}}``, ``?cursor=``;
- ``GET /v1/items/after``   Stripe-like ``{"data", "has_more"}`` with ``?starting_after=<last id>``;
- ``GET /v1/items/offset``  ``?offset=&limit=`` with ``{"items": [...], "total": n}``;
- ``GET /v1/items/page``    ``?page=&per_page=`` with ``{"results": [...]}``;
- ``GET /odata/v4/Items``   ``@odata.nextLink`` with ``$skiptoken``, ``@odata.count``;
- ``GET /odata/v2/Items``   ``{"d": {"results": [...], "__next": …, "__count": "n"}}`` (a string, as Gateway);
- ``POST /graphql``         Relay ``items(first, after) {edges {node}, pageInfo {hasNextPage endCursor}}``;
- ``GET /v1/accounts`` and ``GET /v1/accounts/{id}/items`` (parent fan-out; ``missing_parent`` 404s).

Every listing takes ``updated_since`` / ``updated_before`` (ISO 8601, ``[since, before)``). Bad inputs on
demand through ``options``: ``repeat_token`` (the cursor endpoint repeats page 2's token), ``shift_offset``
(the offset endpoint's data shifts by one record after the first page; ``gap_offset`` the other way),
``bad_record`` (record index → a replacement dict), ``nonjson`` / ``html`` (the next endpoint answers
plain text / an HTML page with 200).
Auth (option ``auth``): ``api_key`` (``X-API-Key``, default), ``api_key_query`` (``?api_key=``), ``basic``,
``oauth`` (bearer tokens of ``POST /oauth/token``: client credentials, refresh token, JWT bearer) or ``oauth1``
(NetSuite-style OAuth 1.0a HMAC-SHA256 with realm ``ACME_SB1``).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import iso_s
from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import OAuthError, Unauthorized


class AcmeRestStandIn(StandIn):
    """Tables ``items`` and ``accounts`` (items i belong to account i // 10)."""

    name = "acme_rest"
    token_paths = ("/oauth/token",)

    def build_tables(self) -> dict[str, Table]:
        items = self.generated("items", self._item)
        self.per_account = int(self.config.options.get("items_per_account", 10))
        return {
            "items": items,
            "accounts": Table("accounts", max(1, -(-items.count // self.per_account)), self._account),
        }

    def _item(self, i: int, n: int) -> Row:
        updated = self.stamp(i, n)
        return {
            "id": str(1000 + i),
            "created": updated,
            "updated": updated,
            "deleted": None,
            "name": f"item {i}",
            "amount": f"{i % 500}.{i % 100:02d}",
            "tags": ["a", "b"][: i % 3],
            "account": str(i // self.per_account),
        }

    def _account(self, i: int) -> Row:
        return {
            "id": str(i),
            "created": self.config.stamp_end,
            "updated": self.config.stamp_end,
            "deleted": None,
            "name": f"account {i}",
        }

    def render(self, table: str, row: Row) -> dict[str, Any]:
        if table == "accounts":
            return {"id": int(row["id"]), "name": row["name"]}
        out = {
            "id": int(row["id"]),
            "name": row["name"],
            "amount": row["amount"],
            "updated_at": iso_s(row["updated"]),
            "tags": row["tags"],
            "account_id": int(row["account"]),
        }
        bad = (self.config.options.get("bad_record") or {}).get(int(row["id"]) - 1000)
        return {**out, **bad} if bad else out

    def error_response(self, status: int, kind: str, message: str) -> Response:
        return self.json({"error": {"code": kind, "message": message}}, status, self.retry_headers(status))

    def connection(self) -> dict[str, Any]:
        return self.http_connection(
            {"auth_kind": "api_key", "api_key_header": "X-API-Key"}, password=self.credentials.api_key
        )

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/v1/items/{style}", self.items, methods=["GET"]),
            Route("/odata/{version}/Items", self.odata, methods=["GET"]),
            Route("/graphql", self.graphql, methods=["POST"]),
            Route("/v1/accounts", self.accounts, methods=["GET"]),
            Route("/v1/accounts/{id}/items", self.account_items, methods=["GET"]),
        ]

    def _check(self, request: Request) -> Response | None:
        mode = self.config.options.get("auth", "api_key")
        header = request.headers.get("authorization")
        try:
            if mode == "api_key":
                self.auth.check_static(request.headers.get("x-api-key"), self.credentials.api_key)
            elif mode == "api_key_query":
                self.auth.check_static(request.query_params.get("api_key"), self.credentials.api_key)
            elif mode == "basic":
                self.auth.check_basic(header, self.credentials.username, self.credentials.password)
            elif mode == "oauth1":
                self.auth.check_oauth1(request.method, str(request.url), header, "ACME_SB1")
            else:  # oauth: tokens from /oauth/token
                self.auth.check_bearer(header)
        except Unauthorized as exc:
            return self.json({"error": {"code": "unauthorized", "message": f"credentials {exc.reason}"}}, 401)
        return None

    async def token(self, request: Request) -> Response:
        try:
            return self.json(self.auth.grant(await self.form(request), self.basic(request)))
        except OAuthError as exc:
            return self.json({"error": exc.error, "error_description": exc.description}, exc.status)

    def _view(self, q: Any) -> Any:
        since, before = q.get("updated_since"), q.get("updated_before")
        parse = lambda v: dt.datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None  # noqa: E731
        return self.tables["items"].view(Query(start=parse(since), end=parse(before)))

    @staticmethod
    def _tok(n: int) -> str:
        return base64.urlsafe_b64encode(f"pos:{n}".encode()).decode()

    @staticmethod
    def _untok(t: str) -> int:
        return int(base64.urlsafe_b64decode(t.encode()).decode().split(":")[1])

    async def items(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        style, q, opts = request.path_params["style"], dict(request.query_params), self.config.options
        view = self._view(q)
        limit = int(q.get("limit") or q.get("per_page") or 25)
        if style == "next":
            if opts.get("nonjson"):
                return PlainTextResponse("upstream error: please try later", 200)
            if opts.get("html"):
                return HTMLResponse("<html><body><h1>Login</h1></body></html>", 200)
            pos = int(q.pop("pos", 0))
            rows = view.slice(pos, pos + limit)
            body: dict[str, Any] = {"data": [self.render("items", r) for r in rows]}
            if pos + limit < len(view):
                body["next"] = f"{self.base_url}/v1/items/next?{urlencode({**q, 'pos': pos + limit})}"
            return self.json(body)
        if style == "link":
            pos = int(q.pop("pos", 0))
            rows = view.slice(pos, pos + limit)
            links = [f'<{self.base_url}/v1/items/link?{urlencode({**q, "pos": pos})}>; rel="self"']
            if pos + limit < len(view):
                links.append(f'<{self.base_url}/v1/items/link?{urlencode({**q, "pos": pos + limit})}>; rel="next"')
            return self.json([self.render("items", r) for r in rows], 200, {"Link": ", ".join(links)})
        if style == "cursor":
            pos = self._untok(q["cursor"]) if q.get("cursor") else 0
            rows = view.slice(pos, pos + limit)
            nxt = None
            if pos + limit < len(view):
                nxt = self._tok(limit if opts.get("repeat_token") and pos >= limit else pos + limit)
            return self.json({"data": [self.render("items", r) for r in rows], "meta": {"next_cursor": nxt}})
        if style == "after":
            pos = 0
            if q.get("starting_after"):
                found = view.position_after(str(q["starting_after"]))
                if found is None:
                    return self.error_response(400, "resource_missing", f"No such item: '{q['starting_after']}'")
                pos = found
            rows = view.slice(pos, pos + limit)
            return self.json(
                {
                    "object": "list",
                    "data": [self.render("items", r) for r in rows],
                    "has_more": pos + limit < len(view),
                    "url": "/v1/items/after",
                }
            )
        if style == "offset":
            off = int(q.get("offset") or 0)
            if opts.get("shift_offset") and off > 0:
                off -= 1  # a record was inserted before this page: everything moved down by one
            if opts.get("gap_offset") and off > 0:
                off += 1  # a record was deleted before this page: everything moved up by one
            rows = view.slice(off, off + limit)
            return self.json({"items": [self.render("items", r) for r in rows], "total": len(view)})
        if style == "page":
            page = int(q.get("page") or 1)
            rows = view.slice((page - 1) * limit, page * limit)
            return self.json({"results": [self.render("items", r) for r in rows], "page": page})
        return self.error_response(404, "not_found", f"no style {style!r}")

    async def odata(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        version, q = request.path_params["version"], dict(request.query_params)
        view = self._view(q)
        top = int(q.get("$top") or 25)
        pos = self._untok(q.pop("$skiptoken")) if "$skiptoken" in q else int(q.get("$skip") or 0)
        rows = [self.render("items", r) for r in view.slice(pos, pos + top)]
        nxt = (
            f"{self.base_url}{request.url.path}?{urlencode({**q, '$skiptoken': self._tok(pos + top)})}"
            if pos + top < len(view)
            else None
        )
        if version == "v4":
            body: dict[str, Any] = {"@odata.context": f"{self.base_url}/odata/v4/$metadata#Items"}
            if q.get("$count") == "true" and pos == 0:
                body["@odata.count"] = len(view)
            body["value"] = rows
            if nxt:
                body["@odata.nextLink"] = nxt
            return self.json(body)
        d: dict[str, Any] = {
            "results": [
                {
                    "__metadata": {"uri": f"{self.base_url}/odata/v2/Items('{r['id']}')", "type": "ACME.Item"},
                    **r,
                    "updated_at": f"/Date({_epoch_ms(r['updated_at'])})/",
                }
                for r in rows
            ]
        }
        if q.get("$inlinecount") == "allpages":
            d["__count"] = str(len(view))
        if nxt:
            d["__next"] = nxt
        return self.json({"d": d})

    async def graphql(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        body = orjson.loads(await request.body())
        v = body.get("variables") or {}
        if "items" not in body.get("query", ""):
            return self.json({"data": None, "errors": [{"message": "Cannot query field on type Query", "path": ["x"]}]})
        view = self._view({"updated_since": v.get("since"), "updated_before": v.get("before")})
        first = int(v.get("first") or 25)
        pos = self._untok(v["after"]) if v.get("after") else 0
        rows = view.slice(pos, pos + first)
        edges = [{"cursor": self._tok(pos + i + 1), "node": self.render("items", r)} for i, r in enumerate(rows)]
        info = {"hasNextPage": pos + first < len(view), "endCursor": edges[-1]["cursor"] if edges else None}
        return self.json({"data": {"items": {"edges": edges, "pageInfo": info, "totalCount": len(view)}}})

    async def accounts(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        rows = [self.render("accounts", r) for r in self.tables["accounts"].rows(include_deleted=False)]
        extra = self.config.options.get("missing_parent")
        if extra is not None:
            rows.append({"id": int(extra), "name": "ghost"})
        return self.json({"data": rows})

    async def account_items(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        acc = request.path_params["id"]
        if self.tables["accounts"].get(acc) is None:
            return self.error_response(404, "not_found", f"account {acc} does not exist")
        view = self.tables["items"].view(Query(where=lambda r: r["account"] == acc))
        return self.json({"data": [self.render("items", r) for r in view.iter()]})


def _epoch_ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
