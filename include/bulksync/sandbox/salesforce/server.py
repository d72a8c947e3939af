"""The HTTPS server and the :class:`SalesforceSandbox` that ties store, auth, jobs and faults together."""

from __future__ import annotations

import base64
import contextlib
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pyarrow as pa

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
from bulksync.sandbox.salesforce.tls import make_tls

log = logging.getLogger(__name__)
ADMIN_HEADER = "X-Sandbox-Admin-Key"


@dataclass
class SandboxConfig:
    """How to run a sandbox.

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

    port: int = 0
    host: str = "127.0.0.1"
    public_host: str | None = None
    records_per_object: int = 1000
    counts: dict[str, int] = field(default_factory=dict)
    seed: int = 20260101
    token_lifetime: float = 7200.0
    job_seconds: float = 0.3
    workdir: Path | None = None
    modstamp_end: dt.datetime = DEFAULT_MODSTAMP_END
    faults: FaultSettings = field(default_factory=FaultSettings)
    max_upload_bytes: int | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    sandbox: SalesforceSandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "sandbox"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        try:
            if url.path == "/services/oauth2/token" and method == "POST":
                return self._send(sandbox.token(body, url.query, self.headers.get("Authorization")))
            if url.path.startswith("/__admin/"):
                if not secrets.compare_digest(self.headers.get(ADMIN_HEADER, ""), sandbox.admin_key):
                    raise ApiError(403, "INSUFFICIENT_ACCESS", f"admin endpoints need the {ADMIN_HEADER} header")
                return self._send(sandbox.admin(method, url.path[len("/__admin/") :], body))
            if url.path.rstrip("/") == "/services/data":
                return self._send(Api.versions())
            if not url.path.startswith("/services/data/v"):
                raise not_found()
            sandbox.auth.check(self.headers.get("Authorization"))
            fault = sandbox.faults.draw()
            if fault and self._fault(fault):
                return None
            version, _, rest = url.path[len("/services/data/v") :].partition("/")
            response = sandbox.api.handle(method, version, rest, url.query, body, self.headers)
            self._send(response, limit_info=True, truncate=fault == "truncate")
        except ApiError as exc:
            self._send(Response(exc.status, exc.body(), exc.headers), limit_info=True)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception:
            log.exception("sandbox: %s %s failed", method, self.path)
            self._send(Response(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred"}]))
        return None

    def _fault(self, fault: str) -> bool:
        s = self.server.sandbox.faults.settings
        retry = {"Retry-After": str(s.retry_after)}
        if fault == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault == "slow":
            time.sleep(s.slow_seconds)
            return False
        if fault == "truncate":
            return False  # answered, but cut short by _send
        error = {
            "unavailable": ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable; retry later", retry),
            "throttle": ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests; retry later", retry),
            "limit": ApiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
            "exhausted": limit_exceeded(),
        }[fault]
        self._send(Response(error.status, error.body(), error.headers), limit_info=True)
        return True

    def _send(self, response: Response, limit_info: bool = False, truncate: bool = False) -> None:
        body = response.body
        chunks: Any
        if body is None:
            chunks, length = [], 0
        elif isinstance(body, bytes):
            chunks, length = [body], len(body)
        elif response.length is not None:
            chunks, length = body, response.length
        else:
            data = json.dumps(body).encode()
            chunks, length = [data], len(data)
        self.send_response(response.status)
        if length or response.status != 204:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(length))
        if limit_info:
            faults = self.server.sandbox.faults
            self.send_header("Sforce-Limit-Info", f"api-usage={faults.api_used}/{faults.settings.daily_api_max}")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        budget = length // 2 if truncate else length
        for chunk in chunks:
            if truncate and len(chunk) >= budget:
                self.wfile.write(chunk[:budget])
                self.wfile.flush()
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            budget -= len(chunk)
            self.wfile.write(chunk)


class SalesforceSandbox:
    """A local Salesforce org: HTTPS REST + Bulk API 2.0 + OAuth over seeded data.

    Use as a context manager (``with SalesforceSandbox(config) as sf:``) or call :meth:`start` /
    :meth:`stop`. The admin handle is the object itself: :attr:`store` (records), :attr:`faults`,
    :attr:`auth` (tokens), :meth:`set_clock`, :meth:`records`.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._tmp = None if self.config.workdir else tempfile.mkdtemp(prefix="sf-sandbox-")
        self.workdir = Path(self.config.workdir or self._tmp or ".")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls = make_tls(self.workdir / "tls", (self.config.public_host,) if self.config.public_host else ())
        self.credentials: Credentials = make_credentials(self.workdir)
        self.admin_key = secrets.token_hex(12)
        self.store = Store(
            self.config.counts, self.config.seed, self.config.modstamp_end, self.config.records_per_object
        )
        self.faults = Faults(self.config.faults)
        self.jobs = JobManager(self.store, self.workdir, self.faults, self.config.job_seconds)
        self.ingest = IngestManager(self.store, self.faults, self.config.job_seconds, self.config.max_upload_bytes)
        self.api = Api(self.store, self.jobs, self.faults, self.ingest)
        self.httpd = _Server((self.config.host, self.config.port), _Handler)
        self.httpd.sandbox = self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.cert, self.tls.key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.auth = Authority(self.credentials, self.login_url, self.instance_url, self.config.token_lifetime)
        self._thread: threading.Thread | None = None

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
        return json.dumps(
            {"conn_type": "salesforce", "login": self.credentials.username, "extra": self.connection_extras()}
        )

    def start(self) -> SalesforceSandbox:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sf-sandbox", daemon=True)
        self._thread.start()
        log.info("salesforce sandbox listening on %s", self.instance_url)
        return self

    def serve_forever(self) -> None:
        """Serve in the foreground (the CLI)."""
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and remove the temp folder."""
        if self._thread:  # shutdown() waits for a serve_forever loop, so only when one was started
            self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> SalesforceSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_clock(self, now: dt.datetime | None) -> None:
        """Stamp later REST changes with ``now`` (``SystemModstamp`` etc.); None restores the real clock."""
        if now is None:
            self.store.clock = lambda: dt.datetime.now(dt.UTC)
        else:
            fixed = now.astimezone(dt.UTC)
            self.store.clock = lambda: fixed

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

    def records(self, obj: str, fields: list[str] | None = None, include_deleted: bool = False) -> pa.Table:
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
        """POST ``/services/oauth2/token``."""
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace") or query).items()}
        basic = None
        if authorization and authorization.lower().startswith("basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            basic = (user, password)
        try:
            return Response(200, self.auth.grant(form, basic))
        except OAuthError as exc:
            return Response(exc.status, {"error": exc.error, "error_description": exc.description})

    def admin(self, method: str, path: str, body: bytes) -> Response:
        """``/__admin/state`` (GET), ``faults``, ``faults/clear``, ``expire-tokens``, ``clock``,
        ``validation-rules`` (POST)."""
        payload = json.loads(body or b"{}")
        if (method, path) == ("GET", "state"):
            return Response(200, {**self.faults.state(), "records": self.store.totals, "jobs": len(self.jobs.jobs)})
        if method != "POST":
            raise not_found()
        if path == "faults":
            try:
                self.faults.configure(**payload)
            except TypeError as exc:
                raise ApiError(400, "INVALID_FIELD", str(exc)) from None
            return Response(200, self.faults.state())
        if path == "faults/clear":
            self.faults.clear()
            return Response(200, self.faults.state())
        if path == "expire-tokens":
            self.auth.expire_all()
            return Response(204)
        if path == "validation-rules":
            self.set_validation_rules(str(payload.get("object", "")), payload.get("rules") or [])
            return Response(204)
        if path == "clock":
            now = payload.get("now")
            self.set_clock(dt.datetime.fromisoformat(now.replace("Z", "+00:00")) if now else None)
            return Response(204)
        raise not_found()
