"""The :class:`StandIn` every API stand-in derives from: an ASGI app on uvicorn over HTTPS.

A stand-in declares its tables (:meth:`StandIn.build_tables`), its routes (:meth:`StandIn.routes`)
and how its vendor shapes errors (:meth:`StandIn.error_response`); the framework adds TLS with a
throw-away CA, the shared :class:`~bulksync.sandbox.asgi.auth.Authority`, fault injection on the API
routes, a movable clock and the admin endpoints under ``/__admin`` (mutate records, move the clock,
set faults, expire tokens, read the ground truth). It serves in a background thread of the calling
process (tests, the CLI) on a free port unless one is given.

A vendor whose wire formats go beyond the defaults plugs into hooks rather than replacing pieces:
:attr:`StandIn.faults_class` (its own fault kinds, answered by :meth:`StandIn.vendor_fault`),
:meth:`StandIn.build_credentials` / :meth:`StandIn.build_authority` (its token formats on the shared
token bookkeeping), :meth:`StandIn.fault_exempt` and :meth:`StandIn.precheck` (which requests count
and when the session is checked), :meth:`StandIn.admin_error` / :meth:`StandIn.admin_state` /
:meth:`StandIn.admin_done` (the admin answers). The Salesforce sandbox
(:class:`~bulksync.sandbox.salesforce.server.SalesforceSandbox`) is built that way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from bulksync.sandbox.asgi.admin import admin_routes
from bulksync.sandbox.asgi.auth import Authority, Credentials, Unauthorized, make_credentials
from bulksync.sandbox.asgi.clock import Clock
from bulksync.sandbox.asgi.faults import Faults, FaultSettings
from bulksync.sandbox.asgi.middleware import FaultMiddleware, quiet_injected_faults
from bulksync.sandbox.asgi.store import Row, Table
from bulksync.sandbox.asgi.tls import TlsFiles, make_tls

log = logging.getLogger(__name__)
ADMIN_HEADER = "X-Sandbox-Admin-Key"
DEFAULT_STAMP_END = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


@dataclass
class StandInConfig:
    """How to run a stand-in.

    Attributes:
        port: TCP port (0 picks a free one).
        host: address to listen on.
        public_host: host name clients use when it is not this machine.
        records: generated rows of every table not named in ``counts``.
        counts: generated rows per table, e.g. ``{"contacts": 1_000_000}``.
        stamp_end: generated rows' ``updated`` stamps end just before it ...
        stamp_step: ... ``stamp_step`` seconds apart (60: rows on every minute, so on window boundaries).
        token_lifetime: seconds an access token stays valid.
        rotate_refresh: refresh tokens rotate on every use.
        client_cert: require a client certificate of the stand-in's CA (mutual TLS).
        workdir: certificates and keys (a temp folder when None).
        faults: initial fault settings.
        options: stand-in specific settings (documented by each stand-in).
    """

    port: int = 0
    host: str = "127.0.0.1"
    public_host: str | None = None
    records: int = 200
    counts: dict[str, int] = field(default_factory=dict)
    stamp_end: dt.datetime = DEFAULT_STAMP_END
    stamp_step: float = 60.0
    token_lifetime: float = 3600.0
    rotate_refresh: bool = False
    client_cert: bool = False
    workdir: Path | None = None
    faults: FaultSettings = field(default_factory=FaultSettings)
    options: dict[str, Any] = field(default_factory=dict)


class StandIn:
    """A local stand-in of one vendor API. Subclasses set :attr:`name` and implement the hooks."""

    name: ClassVar[str] = ""
    token_paths: ClassVar[tuple[str, ...]] = ()
    """Paths exempt from fault injection (token endpoints, discovery documents)."""
    docs: ClassVar[tuple[str, ...]] = ()
    """The vendor documentation pages the stand-in follows."""
    faults_class: ClassVar[type[Faults]] = Faults
    """The fault settings and draws (a subclass adds vendor kinds)."""
    server_header: ClassVar[str | None] = None
    """The ``Server`` header value (None: uvicorn's own)."""

    def __init__(self, config: StandInConfig | None = None) -> None:
        self.config = config or StandInConfig()
        self._tmp = None if self.config.workdir else tempfile.mkdtemp(prefix=f"{self.name}-standin-")
        self.workdir = Path(self.config.workdir or self._tmp or ".")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls: TlsFiles = make_tls(
            self.workdir / "tls", (self.config.public_host,) if self.config.public_host else ()
        )
        self.credentials: Credentials = self.build_credentials()
        self.admin_key = secrets.token_hex(12)
        self.clock = Clock()
        self.faults = self.faults_class(self.config.faults)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.config.host, self.config.port))
        self._sock.listen(256)  # connections queue from now on: a CLI that announces itself before serving
        self.port = int(self._sock.getsockname()[1])
        self.auth: Authority = self.build_authority()
        self.tables: dict[str, Table] = self.build_tables()
        self.requests_by_path: dict[str, int] = {}
        app = Starlette(routes=[*admin_routes(self), *self.routes()])
        self.app = FaultMiddleware(app, self)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- what subclasses provide ----------------------------------------------------------------

    def build_credentials(self) -> Credentials:
        """The secrets the stand-in accepts (random per start)."""
        return make_credentials(self.workdir)

    def build_authority(self) -> Authority:
        """The token issuer and checker (called once :attr:`port` is known)."""
        return Authority(
            self.credentials, self.config.token_lifetime, self.config.rotate_refresh, audience=self.token_url
        )

    def build_tables(self) -> dict[str, Table]:
        """The stand-in's tables (generated rows)."""
        raise NotImplementedError

    def routes(self) -> list[Any]:
        """Starlette routes of the vendor API."""
        raise NotImplementedError

    def error_response(self, status: int, kind: str, message: str) -> Response:
        """The vendor's error body for ``status``.

        ``kind`` is one of throttle, unavailable, unauthorized, not_found, bad_request."""
        return self.json({"error": kind, "message": message}, status, self.retry_headers(status))

    def fault_exempt(self, path: str) -> bool:
        """Requests that never get faults nor count: admin and token endpoints by default."""
        return path.startswith("/__admin") or any(path.startswith(p) for p in self.token_paths)

    async def precheck(self, scope: dict[str, Any]) -> Response | None:
        """An answer that refuses an API request before its fault draw (none by default)."""
        return None

    async def vendor_fault(self, kind: str) -> Response | None:
        """Apply a fault kind of the stand-in's own: the answer to send, or None to serve the request."""
        raise NotImplementedError(f"{type(self).__name__} draws fault kind {kind!r} but does not apply it")

    def admin_error(self, status: int, message: str) -> Response:
        """An admin endpoint's error answer."""
        return self.json({"error": message}, status)

    def admin_state(self) -> dict[str, Any]:
        """``GET /__admin/state``."""
        from bulksync.sandbox.asgi.admin import default_state

        return default_state(self)

    def admin_done(self, body: dict[str, Any]) -> Response:
        """The answer of an admin action (expire tokens, set the clock)."""
        return self.json(body)

    def render(self, table: str, row: Row) -> dict[str, Any]:
        """A row in the vendor's shape (for the ground truth of :meth:`records`)."""
        return dict(row)

    def connection(self) -> dict[str, Any]:
        """The Airflow ``http`` connection (as a dict for ``AIRFLOW_CONN_…`` JSON) reaching this stand-in."""
        return self.http_connection({"auth_kind": "bearer", "token": ""})

    # -- shared helpers -----------------------------------------------------------------------

    @property
    def host_name(self) -> str:
        """The host clients connect to."""
        return self.config.public_host or "127.0.0.1"

    @property
    def address(self) -> tuple[str, int]:
        """The address the stand-in listens on."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def base_url(self) -> str:
        """``https://host:port``."""
        return f"https://{self.host_name}:{self.port}"

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint (stand-ins with OAuth override the path)."""
        return self.base_url + (self.token_paths[0] if self.token_paths else "/oauth/token")

    def http_connection(self, extra: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """An Airflow ``http`` connection to this stand-in over HTTPS.

        Args:
            extra: the connection's extras; the stand-in's CA bundle is added last as ``verify``.
            **fields: further connection fields (``login``, ``password``), after ``port``.

        Returns:
            ``{"conn_type": "http", "host", "schema": "https", "port", **fields, "extra"}``.
        """
        return {
            "conn_type": "http",
            "host": self.host_name,
            "schema": "https",
            "port": self.port,
            **fields,
            "extra": {**extra, "verify": str(self.tls.ca_bundle)},
        }

    def generated(self, name: str, make: Callable[[int, int], Row], default: int | None = None) -> Table:
        """A table of :meth:`count` generated rows.

        Args:
            name: the table (and ``counts`` key).
            make: ``(index, count)`` → row.
            default: rows when ``counts`` does not name the table (None: ``records``).

        Returns:
            The table, its row ``i`` made by ``make(i, count)``.
        """
        n = self.count(name, default)
        return Table(name, n, lambda i: make(i, n))

    def table(self, name: str) -> Table:
        """A table by name."""
        return self.tables[name]

    def count(self, name: str, default: int | None = None) -> int:
        """Generated rows of table ``name`` (config ``counts``, else ``records``)."""
        return int(self.config.counts.get(name, self.config.records if default is None else default))

    def stamp(self, i: int, count: int) -> dt.datetime:
        """The ``updated`` stamp of generated row ``i`` of ``count``: ``stamp_step`` apart, ending at ``stamp_end``."""
        return self.config.stamp_end - dt.timedelta(seconds=(count - i) * self.config.stamp_step)

    def retry_headers(self, status: int) -> dict[str, str]:
        """``Retry-After`` for 429/503 (seconds, rounded up to a whole second unless below one)."""
        if status not in (429, 503):
            return {}
        wait = self.faults.settings.retry_after
        return {"Retry-After": str(int(wait) if wait >= 1 and float(wait).is_integer() else wait)}

    @staticmethod
    def json(body: Any, status: int = 200, headers: dict[str, str] | None = None, media: str | None = None) -> Response:
        """A JSON response serialised with orjson (the fastest encoder here)."""
        import orjson

        return Response(orjson.dumps(body, default=_default), status, headers, media_type=media or "application/json")

    def unauthorized(self, exc: Unauthorized) -> Response:
        """The vendor's 401."""
        return self.error_response(401, "unauthorized", f"authentication failed ({exc.reason})")

    async def form(self, request: Request) -> dict[str, str]:
        """A token request's form fields."""
        from urllib.parse import parse_qsl

        return dict(parse_qsl((await request.body()).decode()))

    def basic(self, request: Request) -> tuple[str, str] | None:
        """HTTP Basic client credentials of a token request, if any."""
        import base64

        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("basic "):
            return None
        user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        return user, pw

    def records(self, name: str, include_deleted: bool = True) -> list[Row]:
        """The ground truth: every current row of ``name`` (vendor-neutral dicts)."""
        return list(self.tables[name].rows(include_deleted))

    def connection_json(self) -> str:
        """The connection as JSON for ``AIRFLOW_CONN_<ID>``."""
        return json.dumps(self.connection())

    def env_line(self, conn_id: str) -> str:
        """``export AIRFLOW_CONN_<ID>='…'``."""
        return f"export AIRFLOW_CONN_{conn_id.upper()}='{self.connection_json()}'"

    def admin_url(self, path: str) -> str:
        """URL of an admin endpoint."""
        return f"{self.base_url}/__admin/{quote(path)}"

    # -- serving ------------------------------------------------------------------------------

    def start(self) -> StandIn:
        """Serve in a background thread; returns once the server accepts connections."""
        import uvicorn

        quiet_injected_faults()
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(self.tls.cert),
            ssl_keyfile=str(self.tls.key),
            ssl_ca_certs=str(self.tls.ca_bundle) if self.config.client_cert else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if self.config.client_cert else ssl.CERT_NONE,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="httptools",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
            backlog=256,
            server_header=self.server_header is None,
            headers=[("Server", self.server_header)] if self.server_header else None,
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"{self.name}-standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self.name} stand-in did not start on port {self.port}")
            time.sleep(0.02)
        log.info("%s stand-in listening on %s", self.name, self.base_url)
        return self

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` (or Ctrl-C) in the calling thread's lifetime."""
        self.start()
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        """Stop serving and remove the temp folder."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # do not wait for clients' idle keep-alive connections
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
