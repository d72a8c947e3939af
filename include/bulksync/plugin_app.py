"""The web app the Airflow plugin mounts at ``/bulksync``: data-quality reports, rendered live from files.

Routes (relative to the mount point):

- ``GET /reports/`` — the pipelines the user may read, with the latest status of each dataset;
- ``GET /reports/{tenant}/{pipeline}`` — the pipeline's report (:func:`bulksync.quality.report.render_pipeline_report`);
- ``GET /reports/{tenant}/{pipeline}/data_docs/{path}`` — the pipeline's GX Data Docs files;
- ``GET /icon.svg`` — the navigation icon.

Inside Airflow, who the user is and what they may read comes from Airflow's auth manager: a report is
readable by whoever may read the DAG ``{tenant}__{pipeline}``. Imports only FastAPI, Jinja2 and pydantic
at module level; the plugin imports this module on the first request.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from bulksync.quality import report

log = logging.getLogger(__name__)

CSP = report.PAGE_CSP
"""The Content-Security-Policy of every response of the app (pages, Data Docs files, the icon)."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
REPORT_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}

ICON_SVG = (  # status-coloured bars: readable on the light nav and on its dark "selected" background
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
    '<rect x="3" y="12" width="4.5" height="9" rx="1" fill="#2da44e"/>'
    '<rect x="9.75" y="7" width="4.5" height="14" rx="1" fill="#d4a72c"/>'
    '<rect x="16.5" y="3" width="4.5" height="18" rx="1" fill="#e5534b"/></svg>'
)


class NotAuthenticatedError(Exception):
    """The request carries no valid Airflow credentials."""


class Access(Protocol):
    """Who the user is and which pipelines they may read."""

    async def user(self, request: Request) -> Any:
        """The user of the request; raises :class:`NotAuthenticatedError` when there is none."""
        ...

    def can_read(self, user: Any, tenant: str, pipeline: str) -> bool:
        """Whether ``user`` may read the reports of ``tenant/pipeline``."""
        ...

    def login_url(self, next_url: str) -> str | None:
        """Where to send an unauthenticated browser (``None``: answer 401)."""
        ...


class AirflowAccess:
    """Airflow's auth manager: a JWT (header or the UI's cookie), and read access to DAG ``{tenant}__{pipeline}``."""

    async def user(self, request: Request) -> Any:
        """Resolve the user the way Airflow's own API routes do."""
        from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
        from fastapi import HTTPException

        credentials = await bearer_scheme(request)
        try:
            return await get_user(request, _oauth_token=None, bearer_credentials=credentials)
        except HTTPException as exc:
            if exc.status_code in (401, 403):
                raise NotAuthenticatedError(str(exc.detail)) from exc
            raise

    def can_read(self, user: Any, tenant: str, pipeline: str) -> bool:
        """Ask the auth manager whether ``user`` may read the pipeline's DAG."""
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

        dag_id = f"{tenant}__{pipeline}"
        return bool(get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user))

    def login_url(self, next_url: str) -> str | None:
        """The auth manager's login page, coming back to ``next_url``."""
        from airflow.api_fastapi.app import get_auth_manager

        return str(get_auth_manager().get_url_login(next_url=next_url))


class OpenAccess:
    """Everyone may read everything: for serving reports outside Airflow (local use, tests)."""

    async def user(self, request: Request) -> Any:
        """No user."""
        return None

    def can_read(self, user: Any, tenant: str, pipeline: str) -> bool:
        """Always."""
        return True

    def login_url(self, next_url: str) -> str | None:
        """No login."""
        return None


def _html(text: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status_code, headers=REPORT_HEADERS)


def _prefix(request: Request) -> str:
    """The URL prefix the app is mounted under (``/bulksync`` in Airflow, maybe below Airflow's base path)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _data_docs_file(tenant: str, pipeline: str, path: str) -> Path | None:
    """The file ``path`` names inside the pipeline's ``data_docs/`` folder, or ``None`` if it is not one.

    Refuses anything that resolves outside that folder (``..``, absolute paths, symlinks pointing out).
    """
    base = (report.pipeline_dir(tenant, pipeline) / report.DATA_DOCS_DIR).resolve()
    if not base.is_dir() or "\x00" in path:
        return None
    target = (base / path.lstrip("/")).resolve()
    if not target.is_relative_to(base):
        return None
    if target.is_dir():
        target = target / report.INDEX_HTML
    return target if target.is_file() else None


def create_app(access: Access | None = None) -> FastAPI:
    """Build the reports app.

    Args:
        access: Authentication and authorization; default :class:`AirflowAccess` (requires the Airflow api-server).

    Returns:
        A FastAPI app to mount (the plugin mounts it at ``/bulksync``).
    """
    guard: Access = access if access is not None else AirflowAccess()
    app = FastAPI(title="bulksync data-quality reports", docs_url=None, redoc_url=None, openapi_url=None)

    async def current_user(request: Request) -> Any:
        return await guard.user(request)

    user_dep = Depends(current_user)

    @app.exception_handler(NotAuthenticatedError)
    async def _not_authenticated(request: Request, exc: NotAuthenticatedError) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = guard.login_url(target)
        if login and request.method == "GET":
            return RedirectResponse(login, status_code=303)
        page = report.render_message("Login required", f"Log in to Airflow to see data-quality reports ({exc}).")
        return _html(page, 401)

    def not_found(request: Request, user: Any, tenant: str, pipeline: str) -> HTMLResponse:
        prefix = _prefix(request)
        readable = [(t, p) for t, p in report.list_pipelines() if guard.can_read(user, t, p)]
        items = [(f"{t} / {p}", f"{prefix}/reports/{quote(t)}/{quote(p)}") for t, p in readable]
        page = report.render_message(
            "Report not found",
            f"No data-quality runs are recorded for pipeline {tenant}/{pipeline}. Reports appear after the "
            "pipeline's validate step has run at least once; check the tenant and pipeline names (the DAG id is "
            "{tenant}__{pipeline}).",
            items=items,
            items_heading="Pipelines with reports:" if items else "",
            back_href=f"{prefix}/reports/",
        )
        return _html(page, 404)

    def forbidden(request: Request, tenant: str, pipeline: str) -> HTMLResponse:
        page = report.render_message(
            "Not allowed",
            f"You may not read DAG {tenant}__{pipeline}, so its data-quality report is not shown. "
            "Ask an Airflow admin for read access to that DAG.",
            back_href=f"{_prefix(request)}/reports/",
        )
        return _html(page, 403)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Response:
        """Every answer, redirects and errors included, carries the CSP (FastAPI's own 404/422 too)."""
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{_prefix(request)}/reports/", status_code=307)

    @app.get("/icon.svg", include_in_schema=False)
    def icon() -> Response:
        return Response(
            ICON_SVG, media_type="image/svg+xml", headers={**SECURITY_HEADERS, "Cache-Control": "max-age=86400"}
        )

    @app.get("/reports/", response_class=HTMLResponse)
    def reports_index(request: Request, user: Any = user_dep) -> HTMLResponse:
        """The pipelines the user may read, with the latest status of each dataset."""
        readable = [(t, p) for t, p in report.list_pipelines() if guard.can_read(user, t, p)]
        return _html(report.render_reports_index(base_url=_prefix(request) or "/", pipelines=readable))

    @app.get("/reports/{tenant}/{pipeline}", response_class=HTMLResponse)
    def pipeline_report(request: Request, tenant: str, pipeline: str, user: Any = user_dep) -> HTMLResponse:
        """One pipeline's data-quality report, live from the run records."""
        if not (report.is_safe_name(tenant) and report.is_safe_name(pipeline)):
            return not_found(request, user, tenant, pipeline)
        if not guard.can_read(user, tenant, pipeline):
            return forbidden(request, tenant, pipeline)
        try:
            page = report.render_pipeline_report(tenant, pipeline, base_url=_prefix(request) or "/")
        except report.ReportNotFoundError:
            return not_found(request, user, tenant, pipeline)
        return _html(page)

    @app.get("/reports/{tenant}/{pipeline}/data_docs/{path:path}")
    def data_docs(request: Request, tenant: str, pipeline: str, path: str, user: Any = user_dep) -> Response:
        """A file of the pipeline's Data Docs site (nothing outside its ``data_docs/`` folder)."""
        if not (report.is_safe_name(tenant) and report.is_safe_name(pipeline)):
            return not_found(request, user, tenant, pipeline)
        if not guard.can_read(user, tenant, pipeline):
            return forbidden(request, tenant, pipeline)
        file = _data_docs_file(tenant, pipeline, path)
        if file is None:
            log.info("data docs: refused or missing %r for %s/%s", path, tenant, pipeline)
            page = report.render_message(
                "Data Docs file not found",
                f"{path!r} is not a file in the Data Docs of {tenant}/{pipeline}.",
                back_href=f"{_prefix(request)}/reports/{quote(tenant)}/{quote(pipeline)}",
                back_text=f"Report of {tenant}/{pipeline}",
            )
            return _html(page, 404)
        return FileResponse(file, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    return app
