"""A stand-in of Stripe's list API (customers, events) from the vendor documentation and fixtures.

- Pagination: https://docs.stripe.com/api/pagination — ``{"object": "list", "url", "has_more", "data"}``,
  newest first; ``limit`` 1–100 (default 10); ``starting_after=<id>`` continues after that object.
- Customers list: https://docs.stripe.com/api/customers/list — ``created[gt|gte|lt|lte]`` in Unix seconds;
  deleted customers are not listed. The customer object as stripe-mock serves it (stripe/openapi
  ``fixtures3.json``, /work/shared/api-recordings/stripe/spec_fixture_customer.json).
- Events: https://docs.stripe.com/api/events/list — ``type=customer.deleted`` events carry the deleted
  customer in ``data.object``.
- Auth and errors: https://docs.stripe.com/api/authentication (secret key as Bearer token or Basic user),
  https://docs.stripe.com/rate-limits — 429 ``rate_limit`` without a documented ``Retry-After``; 401
  ``Invalid API Key provided: sk_test_****…``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import person
from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import Unauthorized

DOCS = (
    "https://docs.stripe.com/api/pagination",
    "https://docs.stripe.com/api/customers/list",
    "https://docs.stripe.com/api/events/list",
    "https://docs.stripe.com/rate-limits",
)


class StripeStandIn(StandIn):
    """Table ``customers`` (``created`` non-decreasing); deleting a customer records a customer.deleted event."""

    name = "stripe"
    docs = DOCS

    def build_tables(self) -> dict[str, Table]:
        self.key = "sk_test_" + self.credentials.api_key[4:]
        return {"customers": self.generated("customers", self._customer)}

    def _customer(self, i: int, n: int) -> Row:
        t = self.stamp(i, n)
        first, last = person(i)
        return {
            "id": f"cus_{i:014d}",
            "created": t,
            "updated": t,
            "deleted": None,
            "email": f"{first}.{i}@example.com".lower(),
            "name": f"{first} {last}",
            "balance": (i % 7) * 100 - 300,
            "currency": "usd" if i % 4 else "eur",
            "delinquent": i % 9 == 0,
            "metadata": {"tier": ("gold", "silver", "bronze")[i % 3]},
        }

    def render(self, table: str, row: Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "object": "customer",
            "address": None,
            "balance": row["balance"],
            "created": int(row["created"].timestamp()),
            "currency": row["currency"],
            "customer_account": None,  # in the recorded 2026 field set (stripe/recorded_list_customers_single_page)
            "default_source": None,
            "delinquent": row["delinquent"],
            "description": None,
            "discount": None,
            "email": row["email"],
            "invoice_prefix": row["id"][-7:].upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": row["metadata"],
            "name": row["name"],
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }

    def error_response(self, status: int, kind: str, message: str) -> Response:
        if status == 429:
            body = {
                "error": {
                    "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                    "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
                }
            }
            return self.json(body, 429)
        return self.json(
            {"error": {"message": message, "type": "api_error" if status >= 500 else "invalid_request_error"}}, status
        )

    def connection(self) -> dict[str, Any]:
        return self.http_connection({"auth_kind": "bearer"}, password=self.key)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/customers", self.customers, methods=["GET"]),
            Route("/v1/events", self.events, methods=["GET"]),
        ]

    def _check(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        try:
            if header.lower().startswith("basic "):
                self.auth.check_basic(header, self.key, "")
            else:
                self.auth.check_static(header[7:] if header.lower().startswith("bearer ") else None, self.key)
        except Unauthorized as exc:
            if exc.reason == "missing":
                return self.json(
                    {"error": {"message": "You did not provide an API key.", "type": "invalid_request_error"}}, 401
                )
            return self.json(
                {
                    "error": {
                        "message": "Invalid API Key provided: sk_test_*********" + header[-4:],
                        "type": "invalid_request_error",
                    }
                },
                401,
            )
        return None

    @staticmethod
    def _created(q: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for op in ("gt", "gte", "lt", "lte"):
            v = q.get(f"created[{op}]")
            if v is not None:
                out[op] = dt.datetime.fromtimestamp(int(v), dt.UTC)
        return out

    def _page(self, request: Request, rows: list[dict[str, Any]], url: str) -> Response:
        q = request.query_params
        limit = int(q.get("limit") or 10)
        if not 1 <= limit <= 100:
            return self.error_response(400, "bad_request", "Invalid integer: limit must be between 1 and 100")
        start = 0
        if q.get("starting_after"):
            ids = [r["id"] for r in rows]
            if q["starting_after"] not in ids:
                return self.error_response(400, "bad_request", f"No such object: '{q['starting_after']}'")
            start = ids.index(q["starting_after"]) + 1
        page = rows[start : start + limit]
        return self.json({"object": "list", "data": page, "has_more": start + limit < len(rows), "url": url})

    async def customers(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        c = self._created(request.query_params)
        view = self.tables["customers"].view(
            Query(
                field="created",
                start=c.get("gte") or c.get("gt"),
                end=c.get("lt") or c.get("lte"),
                start_inclusive="gt" not in c,
                end_inclusive="lte" in c,
            )
        )
        # newest first: walk the ascending view backwards (a page at a time keeps a million rows cheap)
        q = request.query_params
        limit = int(q.get("limit") or 10)
        if not 1 <= limit <= 100:
            return self.error_response(400, "bad_request", "Invalid integer: limit must be between 1 and 100")
        n = len(view)
        start = 0
        if q.get("starting_after"):
            pos = view.position_after(q["starting_after"])
            if pos is None:
                return self.error_response(400, "bad_request", f"No such customer: '{q['starting_after']}'")
            start = n - pos + 1
        hi = n - start
        rows = list(reversed(view.slice(max(0, hi - limit), hi)))
        return self.json(
            {
                "object": "list",
                "data": [self.render("customers", r) for r in rows],
                "has_more": hi - limit > 0,
                "url": "/v1/customers",
            }
        )

    async def events(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        q = request.query_params
        if q.get("type") not in (None, "customer.deleted"):
            return self.json({"object": "list", "data": [], "has_more": False, "url": "/v1/events"})
        c = self._created(q)
        view = self.tables["customers"].view(
            Query(field="deleted", start=c.get("gte"), end=c.get("lt"), deleted="only")
        )
        rows = sorted(view.iter(), key=lambda r: r["deleted"], reverse=True)
        events = [
            {
                "id": f"evt_{r['id'][4:]}",
                "object": "event",
                "api_version": "2024-06-20",
                "type": "customer.deleted",
                "created": int(r["deleted"].timestamp()),
                "data": {"object": {**self.render("customers", r), "deleted": True}},
            }
            for r in rows
        ]
        return self._page(request, events, "/v1/events")
