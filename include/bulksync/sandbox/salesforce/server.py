"""The :class:`SalesforceSandbox`: Salesforce's REST, OAuth and Bulk API 2.0 on the stand-in framework.

The sandbox is a :class:`~bulksync.sandbox.asgi.base.StandIn`: a Starlette app on uvicorn over HTTPS
with the framework's throw-away CA (:mod:`bulksync.sandbox.asgi.tls`), fault injection
(:mod:`bulksync.sandbox.asgi.middleware`, with Salesforce's own kinds from
:mod:`~bulksync.sandbox.salesforce.faults`), token bookkeeping (:mod:`bulksync.sandbox.asgi.auth`,
with Salesforce's formats from :mod:`~bulksync.sandbox.salesforce.auth`), movable clock and
``/__admin`` endpoints (:mod:`bulksync.sandbox.asgi.admin`, plus ``validation-rules``). What is
Salesforce's stays here and in the modules beside it: the record store, SOQL, the REST resources
(:mod:`~bulksync.sandbox.salesforce.rest`), Bulk query and ingest jobs.

Requests are answered as Salesforce answers them (the bodies and headers the unmodified
simple_salesforce client relies on): JSON serialised like ``json.dumps``, errors as
``[{"errorCode", "message"}]``, ``Sforce-Limit-Info`` on every versioned API answer, Bulk results
streamed from their result file with ``Content-Length`` (never built in memory).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote

import pyarrow as pa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response as HttpResponse
from starlette.responses import StreamingResponse
from starlette.routing import Route

from bulksync.sandbox.asgi import ADMIN_HEADER, StandIn, StandInConfig
from bulksync.sandbox.asgi.admin import admin_guard
from bulksync.sandbox.asgi.faults import Faults as FrameworkFaults
from bulksync.sandbox.salesforce import engine, soql
from bulksync.sandbox.salesforce.auth import Authority, Credentials, OAuthError, make_credentials
from bulksync.sandbox.salesforce.bulk import JobManager
from bulksync.sandbox.salesforce.data import DEFAULT_MODSTAMP_END
from bulksync.sandbox.salesforce.errors import ApiError, limit_exceeded, not_found
from bulksync.sandbox.salesforce.faults import Faults, FaultSettings
from bulksync.sandbox.salesforce.ingest import IngestManager
from bulksync.sandbox.salesforce.rest import Api, Response
from bulksync.sandbox.salesforce.schema import find_object
from bulksync.sandbox.salesforce.store import Store

__all__ = ["ADMIN_HEADER", "SalesforceSandbox", "SandboxConfig"]

log = logging.getLogger(__name__)
TOKEN_PATH = "/services/oauth2/token"
JSON_TYPE = "application/json;charset=UTF-8"
METHODS = ["GET", "POST", "PATCH", "DELETE", "PUT"]


@dataclass
class SandboxConfig(StandInConfig):
    """How to run a sandbox (the framework's :class:`~bulksync.sandbox.asgi.base.StandInConfig` fields
    ``port``, ``host``, ``public_host``, ``token_lifetime``, ``workdir``, ``faults``, ``client_cert``, plus
    Salesforce's).

    Attributes:
        port: TCP port (0 picks a free one).
        host: address to listen on (``0.0.0.0`` inside a container).
        public_host: host name clients use when it is not this machine (a compose service name):
            the login and instance URLs and the certificate name it.
        records_per_object: seeded records of every object not named in ``counts``.
        counts: seeded records per object, e.g. ``{"Account": 2_000_000}``.
        seed: generator seed; the same seed gives the same records.
        token_lifetime: seconds an access token stays valid.
        job_seconds: simulated minimum processing time of a query job.
        workdir: folder for certificates and keys (a temp folder when None).
        modstamp_end: seeded ``SystemModstamp`` values lie in the eight weeks before it.
        faults: initial fault settings.
        max_upload_bytes: the largest ingest upload accepted (default: Salesforce's 150 MB of base64).
    """

    token_lifetime: float = 7200.0
    faults: FaultSettings = field(default_factory=FaultSettings)
    records_per_object: int = 1000
    seed: int = 20260101
    job_seconds: float = 0.3
    modstamp_end: dt.datetime = DEFAULT_MODSTAMP_END
    max_upload_bytes: int | None = None


class SalesforceSandbox(StandIn):
    """A local Salesforce org: HTTPS REST + Bulk API 2.0 + OAuth over seeded data.

    Use as a context manager (``with SalesforceSandbox(config) as sf:``) or call :meth:`start` /
    :meth:`stop`. The admin handle is the object itself: :attr:`store` (records), :attr:`faults`,
    :attr:`auth` (tokens), :meth:`set_clock`, :meth:`records`.
    """

    name: ClassVar[str] = "salesforce"
    token_paths: ClassVar[tuple[str, ...]] = (TOKEN_PATH,)
    faults_class: ClassVar[type[FrameworkFaults]] = Faults
    server_header: ClassVar[str | None] = "sandbox"
    docs: ClassVar[tuple[str, ...]] = (
        "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/",
        "https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/",
        "https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flows.htm",
    )
    config: SandboxConfig
    credentials: Credentials
    auth: Authority
    faults: Faults

    def __init__(self, config: SandboxConfig | None = None) -> None:
        super().__init__(config or SandboxConfig())
        c = self.config
        self.store = Store(c.counts, c.seed, c.modstamp_end, c.records_per_object)
        self.store.clock = self.clock.now
        self.jobs = JobManager(self.store, self.workdir, self.faults, c.job_seconds)
        self.ingest = IngestManager(self.store, self.faults, c.job_seconds, c.max_upload_bytes)
        self.api = Api(self.store, self.jobs, self.faults, self.ingest)

    # -- framework hooks ----------------------------------------------------------------------

    def build_credentials(self) -> Credentials:
        """Salesforce-shaped credentials and the connected app's JWT key (``jwt-key.pem``)."""
        return make_credentials(self.workdir)

    def build_authority(self) -> Authority:
        """The OAuth token endpoint's issuer, with Salesforce's token responses and errors."""
        return Authority(self.credentials, self.login_url, self.instance_url, self.config.token_lifetime)

    def build_tables(self) -> dict[str, Any]:
        """No framework tables: the org's records live in :attr:`store`."""
        return {}

    def routes(self) -> list[Any]:
        """The ``validation-rules`` admin endpoint, then every Salesforce path."""
        return [
            Route("/__admin/validation-rules", self._validation_rules, methods=["POST"]),
            Route("/{path:path}", self._dispatch, methods=METHODS),
        ]

    def fault_exempt(self, path: str) -> bool:
        """Only versioned API requests (``/services/data/vXX.X/…``) count and get faults."""
        return not path.startswith("/services/data/v")

    async def precheck(self, scope: dict[str, Any]) -> HttpResponse | None:
        """``INVALID_SESSION_ID`` before a request counts against the daily limit (as Salesforce does)."""
        try:
            self.auth.check(Headers(scope=scope).get("authorization"))
        except ApiError as exc:
            return self._error(exc)
        return None

    async def vendor_fault(self, kind: str) -> HttpResponse | None:
        """Salesforce's fault kinds: ``slow`` (then served), ``limit`` and ``exhausted`` (answered 403)."""
        if kind == "slow":
            await asyncio.sleep(self.faults.settings.slow_seconds)
            return None
        if kind == "limit":
            return self._error(ApiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."))
        if kind == "exhausted":
            return self._error(limit_exceeded())
        return await super().vendor_fault(kind)

    def error_response(self, status: int, kind: str, message: str) -> HttpResponse:
        """The framework's ``throttle`` and ``unavailable`` faults, as Salesforce answers them."""
        retry = self.retry_headers(status)
        if status == 503:
            message = "Server temporarily unavailable; retry later"
            return self._error(ApiError(503, "SERVER_UNAVAILABLE", message, retry))
        if status == 429:
            return self._error(ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests; retry later", retry))
        return self._error(ApiError(status, "UNKNOWN_EXCEPTION", message, retry))

    def admin_error(self, status: int, message: str) -> HttpResponse:
        """Admin errors in Salesforce's shape (403 ``INSUFFICIENT_ACCESS``, 400 ``INVALID_FIELD`` …)."""
        code = {403: "INSUFFICIENT_ACCESS", 400: "INVALID_FIELD", 404: "NOT_FOUND"}.get(status, "UNKNOWN_EXCEPTION")
        return self._error(ApiError(status, code, message))

    def admin_state(self) -> dict[str, Any]:
        """Fault settings, API usage, token counters, records per object and query jobs."""
        return {
            **self.faults.state(),
            "auth": dict(self.auth.counts),
            "records": self.store.totals,
            "jobs": len(self.jobs.jobs),
        }

    def admin_done(self, body: dict[str, Any]) -> HttpResponse:
        """Admin actions answer 204."""
        return self._render(Response(204), limit_info=False)

    @staticmethod
    def json(body: Any, status: int = 200, headers: dict[str, str] | None = None, media: str | None = None) -> Any:
        """JSON as Salesforce's clients have always seen it from the sandbox (``json.dumps``)."""
        data = json.dumps(body, default=str).encode()
        return HttpResponse(data, status, {**(headers or {}), "Content-Type": media or JSON_TYPE})

    def connection(self) -> dict[str, Any]:
        """The Airflow ``salesforce`` connection (``AIRFLOW_CONN_…`` JSON) reaching this sandbox."""
        return {"conn_type": "salesforce", "login": self.credentials.username, "extra": self.connection_extras()}

    # -- URLs and connections -----------------------------------------------------------------

    @property
    def login_url(self) -> str:
        """Where OAuth token requests go (``/services/oauth2/token``)."""
        return f"https://{self.config.public_host or 'localhost'}:{self.port}"

    @property
    def instance_url(self) -> str:
        """The org's instance URL (returned by the token endpoint)."""
        return f"https://{self.config.public_host or '127.0.0.1'}:{self.port}"

    @property
    def ca_bundle(self) -> Path:
        """CA certificate file that clients must trust (``requests`` ``verify=``)."""
        return self.tls.ca_bundle

    def connection_extras(self) -> dict[str, Any]:
        """Extras of an Airflow ``salesforce`` connection to this sandbox (client-credentials flow)."""
        return {
            "login_url": self.login_url,
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
            "ca_bundle": str(self.ca_bundle),
            "version": "59.0",
        }

    def connection_uri(self) -> str:
        """An Airflow connection URI (``salesforce://…?login_url=…``) for this sandbox."""
        query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in self.connection_extras().items())
        return f"salesforce://{quote(self.credentials.username, safe='')}@?{query}"

    def connection_json(self) -> str:
        """The same connection as JSON (``AIRFLOW_CONN_…`` accepts both)."""
        return json.dumps(self.connection())

    # -- the admin handle ---------------------------------------------------------------------

    def set_clock(self, now: dt.datetime | None) -> None:
        """Stamp later REST changes with ``now`` (``SystemModstamp`` etc.); None restores the real clock."""
        self.clock.set(now)

    def set_validation_rules(self, obj: str, rules: list[dict[str, Any]]) -> None:
        """Replace the validation rules of ``obj``: ``[{"name", "condition", "message", "field"}]``.

        ``condition`` is a SOQL WHERE expression over the object's fields; a record written by an
        ingest job for which it holds fails with ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` and the message.
        """
        from bulksync.sandbox.salesforce.apply import ValidationRule

        objdef = find_object(obj)
        if objdef is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{obj}' is not supported")
        parsed = [ValidationRule(**rule) for rule in rules]
        for rule in parsed:
            rule.expression(objdef)  # a bad condition is refused now, not in the middle of a job
        self.ingest.rules[objdef.name] = parsed

    def records(  # type: ignore[override]  # Salesforce's ground truth is an Arrow table of one object
        self, obj: str, fields: list[str] | None = None, include_deleted: bool = False
    ) -> pa.Table:
        """Every current record of ``obj`` (the truth to compare an extraction with), in Id order."""
        objdef = find_object(obj)
        if objdef is None:
            raise KeyError(obj)
        names = fields or [f.name for f in objdef.columns]
        query = soql.parse(f"SELECT {', '.join(names)} FROM {objdef.name}")
        tables = list(engine.scan(self.store, query, include_deleted))
        table = pa.concat_tables(tables) if tables else objdef.arrow_schema.empty_table()
        return table.select([f.name for f in query.fields])

    def token(self, body: bytes, query: str, authorization: str | None) -> Response:
        """POST ``/services/oauth2/token``: form fields in the body (or the query), client in Basic or the form."""
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace") or query).items()}
        basic = None
        if authorization and authorization.lower().startswith("basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            basic = (user, password)
        try:
            return Response(200, self.auth.grant(form, basic))
        except OAuthError as exc:
            return Response(exc.status, {"error": exc.error, "error_description": exc.description})

    # -- the HTTP layer -----------------------------------------------------------------------

    async def _validation_rules(self, request: Request) -> HttpResponse:
        if (denied := admin_guard(self, request)) is not None:
            return denied
        try:
            payload = json.loads(await request.body() or b"{}")
            self.set_validation_rules(str(payload.get("object", "")), payload.get("rules") or [])
        except ApiError as exc:
            return self._error(exc)
        return self.admin_done({})

    async def _dispatch(self, request: Request) -> HttpResponse:
        """Every Salesforce path (admin and fault injection happened before, in the framework)."""
        scope = request.scope
        method = request.method
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            body = await request.body()
            if path == TOKEN_PATH and method == "POST":
                answer = await run_in_threadpool(self.token, body, query, request.headers.get("authorization"))
                return self._render(answer, limit_info=False)
            if path.startswith("/__admin/"):
                return admin_guard(self, request) or self._error(not_found())
            if path.rstrip("/") == "/services/data":
                return self._render(Api.versions(), limit_info=False)
            if not path.startswith("/services/data/v"):
                raise not_found()
            self.auth.check(request.headers.get("authorization"))  # again: an ``expire`` fault came after precheck
            version, _, rest = path[len("/services/data/v") :].partition("/")
            return await run_in_threadpool(self._api, method, version, rest, query, body, request.headers)
        except ApiError as exc:
            return self._error(exc)
        except Exception:
            log.exception("sandbox: %s %s failed", method, path)
            error = Response(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred"}])
            return self._render(error, limit_info=False)

    def _api(self, method: str, version: str, rest: str, query: str, body: bytes, headers: Headers) -> HttpResponse:
        """One versioned request, answered in a worker thread (the store and SOQL engine block)."""
        try:
            return self._render(self.api.handle(method, version, rest, query, body, headers))
        except ApiError as exc:
            return self._error(exc)

    def _error(self, exc: ApiError) -> HttpResponse:
        return self._render(Response(exc.status, exc.body(), exc.headers))

    def _render(self, response: Response, limit_info: bool = True) -> HttpResponse:
        """The HTTP answer of a :class:`~bulksync.sandbox.salesforce.rest.Response`.

        Headers are set explicitly (Starlette would add a charset to ``text/csv``); a streamed body
        (Bulk results) goes out piece by piece with its ``Content-Length``.
        """
        body = response.body
        stream: Iterator[bytes] | None = None
        if body is None:
            content, length = b"", 0
        elif isinstance(body, bytes):
            content, length = body, len(body)
        elif response.length is not None:
            content, length, stream = b"", response.length, body
        else:
            content = json.dumps(body).encode()
            length = len(content)
        headers: dict[str, str] = {}
        if length or response.status != 204:
            headers["Content-Type"] = response.content_type
        headers["Content-Length"] = str(length)
        if limit_info:
            headers["Sforce-Limit-Info"] = f"api-usage={self.faults.api_used}/{self.faults.settings.daily_api_max}"
        headers.update(response.headers)
        if stream is not None:
            return StreamingResponse(stream, response.status, headers)
        return HttpResponse(content, response.status, headers)
