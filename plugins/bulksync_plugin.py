"""Airflow plugin registration for bulksync: the data-quality reports in the Airflow UI.

Every Airflow process imports this file: it imports nothing but Airflow's plugin base. The reports
app (:mod:`bulksync.plugin_app`: FastAPI, Jinja2) is imported by the api-server on the first request
to ``/bulksync``, so schedulers, workers and task processes never load it.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/bulksync"


class LazyReportsApp:
    """An ASGI app that builds :func:`bulksync.plugin_app.create_app` when the first request arrives."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one ASGI request (or lifespan event) with the real app."""
        if self._app is None:
            from bulksync.plugin_app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class BulksyncPlugin(AirflowPlugin):
    """Registers bulksync with Airflow: the reports app and its navigation entry."""

    name = "bulksync"
    fastapi_apps = [  # noqa: RUF012 - AirflowPlugin declares these as class attributes
        {"app": LazyReportsApp(), "url_prefix": URL_PREFIX, "name": "bulksync data-quality reports"},
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Data quality",
            # Relative to the UI's <base href>, so it also works when Airflow is served below a path.
            "href": f"{URL_PREFIX.lstrip('/')}/reports/",
            "url_route": "data-quality",
            "destination": "nav",
            "nav_top_level": True,
            "icon": f"{URL_PREFIX.lstrip('/')}/icon.svg",
        },
    ]
