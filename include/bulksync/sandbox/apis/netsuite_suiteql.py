"""A stand-in of NetSuite SuiteQL over REST web services (``POST /services/rest/query/v1/suiteql``).

Follows Oracle's NetSuite Help Center pages and /work/shared/api-recordings/netsuite (INDEX.md; no
public recording of a SuiteQL answer exists, so the paging sequence there is hand-written from the docs):

- Executing SuiteQL Queries Through REST Web Services,
  https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_157909186990.html — ``POST …/suiteql``
  with the query in the body member ``q``; ``limit`` and ``offset`` in the URL; at most **100,000 results**
  per query (more needs SuiteAnalytics Connect).
- Using SuiteQL with SuiteTalk REST Web Services,
  https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_158394344595.html — the header
  ``Prefer: transient``; the query must sort by a unique key, or pages may duplicate or miss rows.
- Collection Paging, https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156414087576.html —
  ``{"links": [{rel, href}…], "count", "hasMore", "items", "offset", "totalResults"}``, ``limit`` up to 1,000.
- Token-based authentication, https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4247337262.html
  (OAuth 1.0a, ``realm`` = the account id, HMAC-SHA256, a nonce used once, the timestamp within minutes).
- Concurrency governance, https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156088671993.html —
  a request over the account's concurrency limit is refused with 429 ``CONCURRENCY_LIMIT_EXCEEDED``, and no
  ``Retry-After`` is documented.
- Error bodies are RFC 7807-style with ``o:errorDetails[{detail, o:errorCode}]`` (``handwritten_error_bodies.json``:
  401 ``INVALID_LOGIN``, 429 ``CONCURRENCY_LIMIT_EXCEEDED``, 400 ``INVALID_PARAMETER`` for a query error).
- Deleted records: the SuiteQL table ``DeletedRecord`` (``recordid``, ``type``, ``name``, ``deleteddate``) of
  the NetSuite2.com data source (Records Catalog), the SuiteQL side of SOAP ``getDeleted``
  (https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_N3497592.html).

SuiteQL is SQL; the stand-in understands the subset the preset sends (``SELECT expr [AS alias], … FROM
table [WHERE cond AND …] ORDER BY col``, expressions ``col`` and ``TO_CHAR(col, 'fmt')``, conditions ``col
op TO_TIMESTAMP('…', 'fmt')`` or ``col op 'text'``) and refuses anything else with NetSuite's 400 for an
invalid query. As NetSuite does, every value is text, booleans are ``"T"``/``"F"``, a date or date-time
column without ``TO_CHAR`` is rendered in the account's date format (``M/D/YYYY``, the US default) and a
null column is left out of an item. Times are those of the integration user's time zone, which the preset
requires to be GMT. Tables: ``customer``, ``transaction``; ``DeletedRecord`` lists deleted customers.

Options: ``account`` (``1234567_SB1``), ``concurrency_limit`` (429 beyond that many requests at once; 0 = off),
``max_results`` (the per-query cap, 100,000; lower it to test window splitting cheaply), ``query_seconds`` (how
long a query holds its concurrency slot), ``delete_on_request`` (``{request number: [customer ids]}`` deleted
just before that authenticated SuiteQL request is answered: data changing under offset paging).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import CITIES, person
from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import Unauthorized

DOCS = (
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_157909186990.html",
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_158394344595.html",
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156414087576.html",
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4247337262.html",
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156088671993.html",
    "https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_N3497592.html",
)
PATH = "/services/rest/query/v1/suiteql"
MAX_LIMIT, MAX_RESULTS = 1000, 100_000
COLLECTION = "application/vnd.oracle.resource+json; type=collection; charset=UTF-8"
ERROR_TYPE = {
    400: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
    401: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
    404: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5",
    429: "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
    503: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.4",
}
ERROR_CODE = {
    "throttle": "CONCURRENCY_LIMIT_EXCEEDED",
    "unavailable": "SERVICE_UNAVAILABLE",
    "not_found": "NONEXISTENT_ID",
    "bad_request": "INVALID_PARAMETER",
    "unauthorized": "INVALID_LOGIN",
}
TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Bad Request", 503: "Service Unavailable"}

# column -> (row key, kind); kind: text, bool, date, datetime
COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "customer": {
        "id": ("id", "text"),
        "entityid": ("entityid", "text"),
        "companyname": ("companyname", "text"),
        "email": ("email", "text"),
        "phone": ("phone", "text"),
        "isinactive": ("isinactive", "bool"),
        "creditlimit": ("creditlimit", "text"),
        "datecreated": ("created", "datetime"),
        "lastmodifieddate": ("updated", "datetime"),
    },
    "transaction": {
        "id": ("id", "text"),
        "tranid": ("tranid", "text"),
        "type": ("type", "text"),
        "trandate": ("trandate", "date"),
        "entity": ("entity", "text"),
        "status": ("status", "text"),
        "foreigntotal": ("foreigntotal", "text"),
        "currency": ("currency", "text"),
        "createddate": ("created", "datetime"),
        "lastmodifieddate": ("updated", "datetime"),
    },
    "deletedrecord": {
        "recordid": ("id", "text"),
        "type": ("type", "text"),
        "name": ("entityid", "text"),
        "deleteddate": ("deleted", "datetime"),
        "iscustomrecord": ("iscustomrecord", "bool"),
    },
}
_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+(?P<table>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?:ASC|DESC))?)?\s*$",
    re.I | re.S,
)
_EXPR = re.compile(
    r"^(?:TO_CHAR\(\s*(?P<fcol>\w+)\s*,\s*'(?P<fmt>[^']*)'\s*\)|(?P<col>\w+))(?:\s+AS\s+(?P<alias>\w+))?$", re.I
)
_COND = re.compile(
    r"^(?P<col>\w+)\s*(?P<op>>=|<=|<>|=|>|<)\s*(?:TO_TIMESTAMP\(\s*'(?P<ts>[^']*)'\s*,\s*'(?P<tsfmt>[^']*)'\s*\)"
    r"|'(?P<text>[^']*)')$",
    re.I,
)


class SuiteQLError(Exception):
    """A query the stand-in (and NetSuite) refuses with 400."""


def oracle_format(fmt: str) -> str:
    """An Oracle ``TO_CHAR``/``TO_TIMESTAMP`` format as a strftime pattern (the elements SuiteQL users write)."""
    out, i = [], 0
    tokens = (("YYYY", "%Y"), ("HH24", "%H"), ("MM", "%m"), ("DD", "%d"), ("MI", "%M"), ("SS", "%S"))
    while i < len(fmt):
        if fmt[i] == '"':
            j = fmt.index('"', i + 1)
            out.append(fmt[i + 1 : j].replace("%", "%%"))
            i = j + 1
            continue
        for tok, rep in tokens:
            if fmt[i : i + len(tok)].upper() == tok:
                out.append(rep)
                i += len(tok)
                break
        else:
            if fmt[i].isalpha():
                raise SuiteQLError(f"unsupported date format element in {fmt!r}")
            out.append(fmt[i])
            i += 1
    return "".join(out)


def _split(cols: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in cols:
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


class NetSuiteStandIn(StandIn):
    """Tables ``customer`` and ``transaction`` (entities of customer ``i // 3``), queried by SuiteQL."""

    name = "netsuite_suiteql"
    docs = DOCS

    def build_tables(self) -> dict[str, Table]:
        self.account = str(self.config.options.get("account", "1234567_SB1"))
        self.concurrency_limit = int(self.config.options.get("concurrency_limit", 0))
        self.max_results = int(self.config.options.get("max_results", MAX_RESULTS))
        self.query_seconds = float(self.config.options.get("query_seconds", 0.0))
        self.delete_on_request = {
            int(k): list(v) for k, v in dict(self.config.options.get("delete_on_request", {})).items()
        }
        self.served = 0
        self._in_flight = 0
        self.concurrency_refused = 0
        self._lock = threading.Lock()
        self.nonces: set[str] = set()
        self.queries: list[str] = []
        return {
            "customer": self.generated("customer", self._customer),
            "transaction": self.generated("transaction", self._transaction),
        }

    def _customer(self, i: int, n: int) -> Row:
        t = self.stamp(i, n)
        first, last = person(i)
        return {
            "id": str(1000 + i),
            "created": t - dt.timedelta(days=30),
            "updated": t,
            "deleted": None,
            "entityid": f"CUST{1000 + i}",
            "companyname": f"{last} {CITIES[i % len(CITIES)]} Ltd",
            "email": None if i % 7 == 0 else f"{first}.{i}@example.com".lower(),
            "phone": f"+1 555 {i % 10000:04d}",
            "isinactive": i % 17 == 0,
            "creditlimit": None if i % 3 else f"{(i % 50) * 1000}.00",
            "type": "customer",
            "iscustomrecord": False,
        }

    def _transaction(self, i: int, m: int) -> Row:
        t = self.stamp(i, m)
        return {
            "id": str(50000 + i),
            "created": t - dt.timedelta(hours=2),
            "updated": t,
            "deleted": None,
            "tranid": f"INV{50000 + i}",
            "type": "CustInvc" if i % 4 else "SalesOrd",
            "trandate": (t - dt.timedelta(days=i % 5)).date(),
            "entity": str(1000 + i // 3),
            "status": ("A", "B", "C")[i % 3],
            "foreigntotal": f"{(i * 37) % 5000}.{(i * 13) % 100:02d}",
            "currency": "1",
        }

    # -- rendering ------------------------------------------------------------------------------

    @staticmethod
    def _value(raw: Any, kind: str, fmt: str | None) -> str | None:
        if raw is None:
            return None
        if kind == "bool":
            return "T" if raw else "F"
        if kind in ("date", "datetime"):
            value = raw if isinstance(raw, dt.datetime) else dt.datetime(raw.year, raw.month, raw.day, tzinfo=dt.UTC)
            if fmt is not None:
                return value.astimezone(dt.UTC).strftime(oracle_format(fmt))
            return f"{value.month}/{value.day}/{value.year}"  # the account's date format
        return str(raw)

    def render(self, table: str, row: Row) -> dict[str, Any]:
        """A row with every column, as ``SELECT * FROM table`` would give it."""
        cols = COLUMNS.get(table, {})
        item: dict[str, Any] = {"links": []}
        for name, (key, kind) in cols.items():
            v = self._value(row.get(key), kind, None)
            if v is not None:
                item[name] = v
        return item

    def error_response(self, status: int, kind: str, message: str) -> Response:
        code = ERROR_CODE.get(kind, "UNEXPECTED_ERROR")
        detail = "Concurrent request limit exceeded. Request blocked." if status == 429 else message
        body = {
            "type": ERROR_TYPE.get(status, ERROR_TYPE[400]),
            "title": TITLES.get(status, "Error"),
            "status": status,
            "o:errorDetails": [{"detail": detail, "o:errorCode": code}],
        }
        return self.json(body, status, None, "application/vnd.oracle.resource+json; type=error; charset=UTF-8")

    def unauthorized(self, exc: Unauthorized) -> Response:
        return self.error_response(
            401,
            "unauthorized",
            "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
            "Setup > Users/Roles > User Management > View Login Audit Trail.",
        )

    def connection(self) -> dict[str, Any]:
        c = self.credentials
        return self.http_connection(
            {
                "auth_kind": "oauth1_tba",
                "account": self.account,
                "consumer_key": c.consumer_key,
                "consumer_secret": c.consumer_secret,
                "token_id": c.token_id,
                "token_secret": c.token_secret,
            }
        )

    def routes(self) -> list[Route]:
        return [Route(PATH, self.suiteql, methods=["POST"])]

    # -- the endpoint ---------------------------------------------------------------------------

    def _check(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        try:
            self.auth.check_oauth1(request.method, str(request.url), header, self.account)
            from oauthlib.oauth1.rfc5849 import utils

            nonce = dict(utils.parse_authorization_header(header or "")).get("oauth_nonce", "")
            with self._lock:
                if nonce in self.nonces:
                    raise Unauthorized("invalid")  # NetSuite refuses a nonce used before
                self.nonces.add(nonce)
        except Unauthorized as exc:
            return self.unauthorized(exc)
        return None

    async def suiteql(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        self.served += 1
        for key in self.delete_on_request.get(self.served, ()):  # a user deleting records while we read
            self.tables["customer"].delete(key, self.clock.now())
        with self._lock:
            self._in_flight += 1
            over = self.concurrency_limit and self._in_flight > self.concurrency_limit
            self.concurrency_refused += bool(over)
        try:
            if over:
                return self.error_response(429, "throttle", "")
            if self.query_seconds:
                await asyncio.sleep(self.query_seconds)  # the query runs while the request holds its slot
            return await self._answer(request)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _answer(self, request: Request) -> Response:
        import orjson

        if "transient" not in request.headers.get("prefer", "").lower():
            return self.error_response(400, "bad_request", "The request must have the header Prefer: transient.")
        q = request.query_params
        try:
            limit, offset = int(q.get("limit", MAX_LIMIT)), int(q.get("offset", 0))
        except ValueError:
            return self.error_response(400, "bad_request", "The limit and offset parameters must be integers.")
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return self.error_response(
                400, "bad_request", f"The limit must be between 1 and {MAX_LIMIT}, the offset >= 0."
            )
        try:
            text = orjson.loads(await request.body())["q"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self.error_response(400, "bad_request", "The request body must be JSON with the query in member q.")
        self.queries.append(text)
        try:
            _, select, view = self._run(str(text))
        except SuiteQLError as exc:
            return self.error_response(
                400,
                "bad_request",
                f"Invalid search query. Detailed unprocessed description follows. Search error occurred: {exc}",
            )
        total = len(view)
        if offset >= self.max_results:  # the documented cap; the stand-in refuses the page past it
            return self.error_response(
                400,
                "bad_request",
                f"SuiteQL returns at most {self.max_results} results of a query; "
                "narrow the query or use SuiteAnalytics Connect.",
            )
        rows = view.slice(offset, offset + limit)
        items = []
        for r in rows:
            item: dict[str, Any] = {"links": []}
            for alias, key, kind, fmt in select:
                v = self._value(r.get(key), kind, fmt)
                if v is not None:
                    item[alias] = v
            items.append(item)
        reachable = total
        has_more = offset + len(items) < reachable
        url = lambda off: f"{self.base_url}{PATH}?{urlencode({'limit': limit, 'offset': off})}"  # noqa: E731
        last = max(0, (reachable - 1) // limit * limit)
        links = ([{"rel": "previous", "href": url(max(0, offset - limit))}] if offset > 0 else []) + [
            {"rel": "first", "href": url(0)}
        ]
        links += ([{"rel": "next", "href": url(offset + limit)}] if has_more else []) + [
            {"rel": "last", "href": url(last)},
            {"rel": "self", "href": url(offset)},
        ]
        body = {
            "links": links,
            "count": len(items),
            "hasMore": has_more,
            "items": items,
            "offset": offset,
            "totalResults": total,
        }
        return self.json(body, 200, None, COLLECTION)

    def _run(self, text: str) -> tuple[str, list[tuple[str, str, str, str | None]], Any]:
        m = _SELECT.match(text)
        if not m:
            raise SuiteQLError("the stand-in understands SELECT … FROM table [WHERE …] ORDER BY column")
        table = m["table"].lower()
        if table not in COLUMNS:
            raise SuiteQLError(f"Record '{m['table']}' was not found.")
        cols = COLUMNS[table]

        def column(name: str) -> tuple[str, str]:
            if name.lower() not in cols:
                raise SuiteQLError(f"Field '{name}' for record '{table}' was not found.")
            return cols[name.lower()]

        select = []
        for expr in _split(m["cols"]):
            e = _EXPR.match(expr)
            if not e:
                raise SuiteQLError(f"unsupported expression {expr!r}")
            name = e["fcol"] or e["col"]
            key, kind = column(name)
            select.append(((e["alias"] or name).lower(), key, kind, e["fmt"]))
        stamp_field: str | None = None
        bounds: dict[str, tuple[dt.datetime, bool]] = {}
        equals: list[tuple[str, str, str]] = []
        for cond in re.split(r"\s+AND\s+", m["where"] or "", flags=re.I) if m["where"] else []:
            c = _COND.match(cond.strip())
            if not c:
                raise SuiteQLError(f"unsupported condition {cond!r}")
            key, kind = column(c["col"])
            if c["ts"] is not None:
                try:
                    value = dt.datetime.strptime(c["ts"], oracle_format(c["tsfmt"])).replace(tzinfo=dt.UTC)
                except ValueError:
                    raise SuiteQLError(f"'{c['ts']}' does not match the format '{c['tsfmt']}'") from None
                if stamp_field not in (None, key) or kind != "datetime" or c["op"] in ("=", "<>"):
                    raise SuiteQLError(f"unsupported condition {cond!r}")
                stamp_field = key
                side = "start" if c["op"] in (">=", ">") else "end"
                bounds[side] = (value, c["op"] in (">=", "<="))
            else:
                equals.append((key, c["op"], c["text"]))
        if table == "deletedrecord":
            source, deleted = self.tables["customer"], "only"
            equals = [e for e in equals if not (e[0] == "type" and e[1] == "=" and e[2].lower() == "customer")]
            if any(e[0] == "type" for e in equals):
                source, deleted = self.tables["customer"], "none"
        else:
            source, deleted = self.tables[table], "exclude"

        def where(row: Row) -> bool:
            return all((str(row.get(k)) == v) == (op == "=") for k, op, v in equals)

        start, end = bounds.get("start"), bounds.get("end")
        query = Query(
            field=stamp_field or ("deleted" if deleted == "only" else "updated"),
            start=start[0] if start else None,
            end=end[0] if end else None,
            start_inclusive=start[1] if start else True,
            end_inclusive=end[1] if end else False,
            deleted="only" if deleted in ("only", "none") else "exclude",
            where=(lambda r: False) if deleted == "none" else (where if equals else None),
        )
        view = source.view(query)
        order = (m["order"] or "").lower()
        if view.extra and order and column(order)[0] == "id":
            # ORDER BY id: changed rows keep their place (the overlay is sorted in, not appended)
            return table, select, _Rows(sorted(view.iter(), key=lambda r: int(r["id"])))
        return table, select, view


class _Rows(list[Row]):
    """An ordered result held in memory (small tables with changes), sliced like a View."""

    def slice(self, start: int, stop: int) -> list[Row]:
        return self[start:stop]
