"""A stand-in of Microsoft Graph v1.0 (users, groups with delta queries; directory audits) and of the
Entra ID token endpoint MSAL talks to.

Follows the vendor documentation and the recordings in /work/shared/api-recordings/graph:

- Paging: https://learn.microsoft.com/en-us/graph/paging — follow ``@odata.nextLink`` verbatim (it keeps
  every other query option and carries an opaque ``$skiptoken``); pages may be empty; ``@odata.count`` only
  on the first page and only with ``$count=true`` and ``ConsistencyLevel: eventual``.
- Delta query: https://learn.microsoft.com/en-us/graph/delta-query-users — an initial round of pages ending
  with ``@odata.deltaLink``; deleted users come as ``{"id", "@removed": {"reason": "changed"|"deleted"}}``.
  The recorded groups round has ten empty pages that still carry a nextLink before the deltaLink
  (``empty_pages`` below reproduces them).
- Throttling: https://learn.microsoft.com/en-us/graph/throttling — 429 ``TooManyRequests`` with
  ``Retry-After`` in seconds; 401 ``InvalidAuthenticationToken``.
- Tokens: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow —
  ``POST /{tenant}/oauth2/v2.0/token`` with ``scope=https://graph.microsoft.com/.default``; MSAL first reads
  ``/{tenant}/v2.0/.well-known/openid-configuration``.
- Directory audits: https://learn.microsoft.com/en-us/graph/api/directoryaudit-list — ``$filter`` on
  ``activityDateTime`` with ``ge``/``lt``.

Options: ``tenant`` (``contoso-tenant``), ``page_size`` (100), ``empty_pages`` (2).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from typing import Any, ClassVar
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import CITIES, iso_s, person
from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import OAuthError, Unauthorized

DOCS = (
    "https://learn.microsoft.com/en-us/graph/paging",
    "https://learn.microsoft.com/en-us/graph/delta-query-users",
    "https://learn.microsoft.com/en-us/graph/throttling",
    "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow",
    "https://learn.microsoft.com/en-us/graph/api/directoryaudit-list",
)
SCOPE = "https://graph.microsoft.com/.default"
GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
_FILTER = re.compile(r"(\w+)\s+(ge|gt|lt|le)\s+(\S+)", re.I)
USER_FIELDS = (
    "displayName",
    "givenName",
    "surname",
    "mail",
    "userPrincipalName",
    "jobTitle",
    "accountEnabled",
    "businessPhones",
    "officeLocation",
    "createdDateTime",
)


# The properties GET /v1.0/users returns without $select (graph/recorded_list_users_single_page.json).
USER_DEFAULTS = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)


def guid(kind: int, i: int) -> str:
    """A GUID-shaped id that sorts with ``i``."""
    return f"{i:08x}-{kind:04x}-4000-8000-00000000b5e1"


class GraphStandIn(StandIn):
    """Tables ``users``, ``groups``, ``directory_audits``."""

    name = "msgraph"
    docs: ClassVar[tuple[str, ...]] = DOCS
    scope = SCOPE

    @property
    def tenant(self) -> str:
        return str(self.config.options.get("tenant", "contoso-tenant"))

    @property
    def token_paths(self) -> tuple[str, ...]:  # type: ignore[override]
        return (f"/{self.tenant}/",)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/token"

    def build_tables(self) -> dict[str, Table]:
        self.page_size = int(self.config.options.get("page_size", 100))
        self.empty_pages = int(self.config.options.get("empty_pages", 2))
        return {
            "users": Table("users", self.count("users"), self._user),
            "groups": Table("groups", self.count("groups"), self._group),
            "directory_audits": Table("directory_audits", self.count("directory_audits"), self._audit),
        }

    def _user(self, i: int) -> Row:
        n = self.count("users")
        first, last = person(i)
        updated = self.stamp(i, n)
        upn = f"{first}.{last}.{i}@contoso.example".lower()
        return {
            "id": guid(1, i),
            "created": updated - dt.timedelta(days=90),
            "updated": updated,
            "deleted": None,
            "displayName": f"{first} {last}",
            "givenName": first,
            "surname": last,
            "mail": upn,
            "userPrincipalName": upn,
            "jobTitle": None if i % 5 == 0 else "Analyst",
            "accountEnabled": i % 11 != 0,
            "businessPhones": [] if i % 3 else [f"+1 425 555 {i % 10_000:04d}"],
            "officeLocation": CITIES[i % len(CITIES)],
            "preferredLanguage": "en-US" if i % 4 else "de-DE",
            "lastPasswordChangeDateTime": iso_s(updated - dt.timedelta(days=i % 60)),
        }

    def _group(self, i: int) -> Row:
        updated = self.stamp(i, self.count("groups"))
        return {
            "id": guid(2, i),
            "created": updated - dt.timedelta(days=90),
            "updated": updated,
            "deleted": None,
            "displayName": f"Team {i}",
            "mailNickname": f"team{i}",
            "mailEnabled": i % 2 == 0,
            "securityEnabled": i % 2 == 1,
            "groupTypes": ["Unified"] if i % 2 == 0 else [],
            "visibility": "Private" if i % 4 == 0 else "Public",
        }

    def _audit(self, i: int) -> Row:
        when = self.stamp(i, self.count("directory_audits"))
        first, last = person(i)
        return {
            "id": f"Directory_{guid(3, i)}",
            "created": when,
            "updated": when,
            "deleted": None,
            "category": ("UserManagement", "GroupManagement", "ApplicationManagement")[i % 3],
            "activityDisplayName": ("Update user", "Add member to group", "Consent to application")[i % 3],
            "result": "success" if i % 13 else "failure",
            "loggedByService": "Core Directory",
            "initiatedBy": {"user": {"userPrincipalName": f"{first}.{last}@contoso.example".lower(), "id": guid(1, i)}},
        }

    # -- rendering ------------------------------------------------------------------------------

    def render(self, table: str, row: Row, select: list[str] | None = None, delta: bool = False) -> dict[str, Any]:
        """One object: the selected properties (a list's defaults without ``$select``), null when unset; a delta
        page leaves null and empty properties out (both as recorded in graph/recorded_*)."""
        if table == "directory_audits":
            out = {k: v for k, v in row.items() if k not in ("created", "updated", "deleted")}
            out["activityDateTime"] = iso_s(row["updated"])
            return out
        fields = [k for k in row if k not in ("id", "created", "updated", "deleted")]
        out = {}
        default = USER_DEFAULTS if table == "users" else [*fields, "createdDateTime"]
        for k in select or default:
            if k == "createdDateTime":
                out[k] = iso_s(row["created"])
            elif k != "id":
                out[k] = row.get(k)
        out["id"] = row["id"]
        if delta:
            out = {k: v for k, v in out.items() if v is not None and v != []}
        return out

    def error_response(self, status: int, kind: str, message: str) -> Response:
        codes = {
            429: "TooManyRequests",
            503: "serviceNotAvailable",
            404: "Request_ResourceNotFound",
            400: "Request_BadRequest",
            401: "InvalidAuthenticationToken",
        }
        inner = {
            "code": str(status),
            "date": iso_s(dt.datetime.now(dt.UTC))[:-1],
            "message": message,
            "request-id": "94fb3b52-452a-4535-a601-69e0a90e3aa2",
            "status": str(status),
        }
        msg = "Please retry again later." if status in (429, 503) else message
        return self.json(
            {"error": {"code": codes.get(status, "generalException"), "innerError": inner, "message": msg}},
            status,
            self.retry_headers(status),
        )

    def unauthorized(self, exc: Unauthorized) -> Response:
        msg = {"missing": "Access token is empty.", "expired": "Access token has expired or is not yet valid."}.get(
            exc.reason, "Invalid JWT token. The token is malformed."
        )
        return self.json(
            {
                "error": {
                    "code": "InvalidAuthenticationToken",
                    "message": msg,
                    "innerError": {
                        "date": iso_s(dt.datetime.now(dt.UTC))[:-1],
                        "request-id": "4a43e743-e897-4758-8d7d-21858c198e1d",
                        "client-request-id": "4a43e743-e897-4758-8d7d-21858c198e1d",
                    },
                }
            },
            401,
        )

    def connection(self) -> dict[str, Any]:
        c = self.credentials
        return self.http_connection(
            {"auth_kind": "msal", "tenant_id": self.tenant, "authority_host": self.base_url, "scope": self.scope},
            login=c.client_id,
            password=c.client_secret,
        )

    # -- routes ---------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route("/v1.0/users/delta", self.delta, methods=["GET"]),
            Route("/v1.0/groups/delta", self.delta, methods=["GET"]),
            Route("/v1.0/users", self.listing, methods=["GET"]),
            Route("/v1.0/groups", self.listing, methods=["GET"]),
            Route("/v1.0/auditLogs/directoryAudits", self.listing, methods=["GET"]),
        ]

    async def openid(self, request: Request) -> Response:
        t = request.path_params["tenant"]
        base = f"{self.base_url}/{t}"
        return self.json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{self.base_url}/{t}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }
        )

    async def token(self, request: Request) -> Response:
        form = await self.form(request)
        if request.path_params["tenant"] != self.tenant:
            return self.json({"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."}, 400)
        if form.get("scope", "").split()[:1] != [self.scope]:
            return self.json(
                {
                    "error": "invalid_scope",
                    "error_description": "AADSTS1002012: The provided value for scope is not valid.",
                },
                400,
            )
        try:
            body = self.auth.grant(form, self.basic(request))
        except OAuthError as exc:
            return self.json({"error": exc.error, "error_description": f"AADSTS7000215: {exc.description}"}, exc.status)
        return self.json({**body, "ext_expires_in": body["expires_in"]})

    def _check(self, request: Request) -> Response | None:
        try:
            self.auth.check_bearer(request.headers.get("authorization"))
        except Unauthorized as exc:
            return self.unauthorized(exc)
        return None

    @staticmethod
    def _token(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")

    @staticmethod
    def _untoken(value: str) -> dict[str, Any]:
        return dict(orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))))

    def _table(self, path: str) -> str:
        return "directory_audits" if "auditLogs" in path else path.split("/")[2]

    async def listing(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        table = self._table(request.url.path)
        q = dict(request.query_params)
        try:
            state = self._untoken(q.pop("$skiptoken")) if "$skiptoken" in q else {"o": 0}
        except ValueError:
            return self.error_response(400, "bad_request", "Invalid $skiptoken")
        top = min(999, int(q.get("$top") or self.page_size))
        start = end = None
        start_inc = True
        for _field, op, value in _FILTER.findall(q.get("$filter", "")):
            t = dt.datetime.fromisoformat(value.strip("'").replace("Z", "+00:00"))
            if op.lower() in ("ge", "gt"):
                start, start_inc = t, op.lower() == "ge"
            else:
                end = t
        view = self.tables[table].view(Query(start=start, end=end, start_inclusive=start_inc))
        offset = int(state["o"])
        rows = view.slice(offset, offset + top)
        select = [s for s in q.get("$select", "").split(",") if s] or None
        body: dict[str, Any] = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{table}"}
        if q.get("$count") == "true" and offset == 0:
            if request.headers.get("consistencylevel", "").lower() != "eventual":
                return self.error_response(
                    400, "bad_request", "$count requires the ConsistencyLevel header set to eventual"
                )
            body["@odata.count"] = len(view)
        body["value"] = [self.render(table, r, select) for r in rows]
        if offset + top < len(view):
            query = urlencode({**q, "$skiptoken": self._token({"o": offset + top})}, safe="$")
            body["@odata.nextLink"] = f"{self.base_url}{request.url.path}?{query}"
        return self.json(body, 200, {**self.graph_headers(), "x-ms-resource-unit": "1"}, GRAPH_JSON)

    async def delta(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        table = request.url.path.split("/")[2]
        q = dict(request.query_params)
        try:
            if "$skiptoken" in q:
                state = self._untoken(q["$skiptoken"])
            elif "$deltatoken" in q:
                state = {"o": 0, "since": self._untoken(q["$deltatoken"])["since"], "sel": q.get("$select", "")}
            else:
                state = {"o": 0, "since": None, "sel": q.get("$select", "")}
        except ValueError:
            return self.error_response(400, "bad_request", "Invalid token")
        since = dt.datetime.fromisoformat(state["since"]) if state.get("since") else None
        view = self.tables[table].view(Query(start=since, start_inclusive=False, deleted="include"))
        offset, size = int(state["o"]), self.page_size
        select = [s for s in state.get("sel", "").split(",") if s] or None
        values: list[dict[str, Any]] = []
        for r in view.slice(offset, offset + size):
            if r["deleted"] is not None:
                values.append({"id": r["id"], "@removed": {"reason": "changed"}})
            else:
                values.append(self.render(table, r, select, delta=True))
        body: dict[str, Any] = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{table}"}
        total_pages = -(-len(view) // size) + self.empty_pages
        page_no = int(state.get("p", 0))
        if page_no + 1 < total_pages:
            nxt = {**state, "o": offset + size, "p": page_no + 1}
            body["@odata.nextLink"] = f"{self.base_url}/v1.0/{table}/delta?$skiptoken={self._token(nxt)}"
        else:
            now = self.clock.now().isoformat()
            body["@odata.deltaLink"] = f"{self.base_url}/v1.0/{table}/delta?$deltatoken={self._token({'since': now})}"
        body["value"] = values
        return self.json(body, 200, {**self.graph_headers(), "Preference-Applied": "odata.track-changes"}, GRAPH_JSON)

    def graph_headers(self) -> dict[str, str]:
        """The response headers every recorded Graph answer carries (request-id twice, the diagnostic)."""
        rid = str(uuid.uuid4())
        return {
            "request-id": rid,
            "client-request-id": rid,
            "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"4","ScaleUnit":"000"}}',
            "OData-Version": "4.0",
        }
