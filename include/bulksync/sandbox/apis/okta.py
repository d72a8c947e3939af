"""A stand-in of the Okta Users API from the vendor documentation and the recordings in
/work/shared/api-recordings/okta.

- Users: https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/#tag/User/operation/listUsers
  ``GET /api/v1/users?limit=(≤200)&after=&search=`` answers a JSON array; ``search`` takes SCIM filters such
  as ``lastUpdated ge "2026-01-01T00:00:00.000Z" and lastUpdated lt "…"`` and then lists every status,
  DEPROVISIONED (deactivated) users included; without it DEPROVISIONED users are left out.
- Paging: https://developer.okta.com/docs/reference/core-okta-api/#link-header — one ``link`` header per
  relation (self, then next); the last page has only ``rel="self"`` (recorded_list_users_single_page.json).
- Rate limits: https://developer.okta.com/docs/reference/rl-best-practices/ — ``X-Rate-Limit-Limit``,
  ``-Remaining``, ``-Reset`` (UTC epoch seconds) on every answer; 429 ``E0000047`` without ``Retry-After``
  (wait until the reset). 401 ``E0000011`` "Invalid token provided".
- Auth: ``Authorization: SSWS <API token>`` (https://developer.okta.com/docs/guides/create-an-api-token/).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import iso_ms, parse_time, person
from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import Unauthorized

_SEARCH = re.compile(r'lastUpdated\s+(ge|gt|lt|le)\s+"([^"]+)"', re.I)
DOCS = (
    "https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/",
    "https://developer.okta.com/docs/reference/core-okta-api/#link-header",
    "https://developer.okta.com/docs/reference/rl-best-practices/",
)


class OktaStandIn(StandIn):
    """Table ``users`` (``status`` ACTIVE, STAGED …; deleting a user deactivates it: DEPROVISIONED)."""

    name = "okta"
    docs = DOCS

    def build_tables(self) -> dict[str, Table]:
        self.token = "00" + self.credentials.api_key[4:]
        return {"users": self.generated("users", self._user)}

    def _user(self, i: int, n: int) -> Row:
        t = self.stamp(i, n)
        first, last = person(i)
        login = f"{first}.{last}.{i}@acme.example".lower()
        return {
            "id": f"00u{i:017d}",
            "created": t - dt.timedelta(days=20),
            "updated": t,
            "deleted": None,
            "status": ("ACTIVE", "ACTIVE", "STAGED", "PROVISIONED", "SUSPENDED")[i % 5],
            "firstName": first,
            "lastName": last,
            "login": login,
            "email": login,
            "mobilePhone": None if i % 2 else f"+1-555-{i % 9999:04d}",
        }

    def render(self, table: str, row: Row) -> dict[str, Any]:
        deleted = row["deleted"] is not None
        return {
            "id": row["id"],
            "status": "DEPROVISIONED" if deleted else row["status"],
            "created": iso_ms(row["created"]),
            "activated": None if row["status"] == "STAGED" else iso_ms(row["created"]),
            "statusChanged": iso_ms(row["deleted"]) if deleted else None,
            "lastLogin": None,
            "lastUpdated": iso_ms(row["updated"]),
            "passwordChanged": None,
            "type": {"id": "oty14u78ldxtbv6BP698"},
            "profile": {
                "firstName": row["firstName"],
                "lastName": row["lastName"],
                "mobilePhone": row["mobilePhone"],
                "secondEmail": None,
                "login": row["login"],
                "email": row["email"],
            },
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"{self.base_url}/api/v1/users/{row['id']}"}},
        }

    def _limits(self, remaining: int = 298) -> dict[str, str]:
        reset = int(time.time() + max(1.0, self.faults.settings.retry_after))
        return {"X-Rate-Limit-Limit": "300", "X-Rate-Limit-Remaining": str(remaining), "X-Rate-Limit-Reset": str(reset)}

    def error_response(self, status: int, kind: str, message: str) -> Response:
        if status == 429:
            body = {
                "errorCode": "E0000047",
                "errorSummary": "API call exceeded rate limit due to too many requests.",
                "errorLink": "E0000047",
                "errorId": "oae0000000000000000000",
                "errorCauses": [],
            }
            return self.json(body, 429, self._limits(0))
        body = {
            "errorCode": "E0000009" if status >= 500 else "E0000001",
            "errorSummary": message,
            "errorLink": "E0000001",
            "errorId": "oae0000000000000000001",
            "errorCauses": [],
        }
        return self.json(body, status, self.retry_headers(status))

    def connection(self) -> dict[str, Any]:
        return self.http_connection({"auth_kind": "bearer", "token_prefix": "SSWS"}, password=self.token)

    def routes(self) -> list[Route]:
        return [Route("/api/v1/users", self.users, methods=["GET"])]

    async def users(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        try:
            self.auth.check_static(header[5:] if header.startswith("SSWS ") else None, self.token)
        except Unauthorized:
            return self.json(
                {
                    "errorCode": "E0000011",
                    "errorSummary": "Invalid token provided",
                    "errorLink": "E0000011",
                    "errorId": "oae0000000000000000002",
                    "errorCauses": [],
                },
                401,
            )
        q = dict(request.query_params)
        limit = min(200, int(q.get("limit") or 200))
        start = end = None
        start_inc = True
        search = q.get("search")
        for op, value in _SEARCH.findall(search or ""):
            t = parse_time(value)
            if op.lower() in ("ge", "gt"):
                start, start_inc = t, op.lower() == "ge"
            else:
                end = t
        view = self.tables["users"].view(
            Query(start=start, end=end, start_inclusive=start_inc, deleted="include" if search else "exclude")
        )
        pos = 0
        if q.get("after"):
            found = view.position_after(q["after"])
            if found is None:
                return self.error_response(400, "bad_request", "Invalid after cursor")
            pos = found
        rows = view.slice(pos, pos + limit)
        self_q = {k: v for k, v in q.items()}
        links = [f'<{self.base_url}/api/v1/users?{urlencode(self_q)}>; rel="self"']
        if pos + limit < len(view) and rows:
            links.append(f'<{self.base_url}/api/v1/users?{urlencode({**self_q, "after": rows[-1]["id"]})}>; rel="next"')
        headers = [(b"link", link.encode()) for link in links]
        resp = self.json([self.render("users", r) for r in rows], 200, self._limits())
        resp.raw_headers.extend(headers)  # separate link headers, as the current docs show
        return resp
