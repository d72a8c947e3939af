"""A stand-in of a Workday custom report served as a web service (RaaS), JSON format.

Workday's own documentation needs a login; this follows the public secondary sources collected in
/work/shared/api-recordings/workday (Workato's RaaS guide, Airbyte's and Faros' connector fixtures):

- URL: ``GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json``; report prompts are query
  parameters (here the dates ``Updated_From`` / ``Updated_To``, ISO 8601 with milliseconds, ``[from, to)``).
- Body: ``{"Report_Entry": [{…column aliases…}]}``; a multi-instance field is a list of objects; no paging.
  Whether an empty report has ``Report_Entry: []`` or no member is unknown: the stand-in leaves the
  member out (the preset accepts both).
- Auth: HTTP Basic with an integration system user (``ISU_name@tenant``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import CITIES, iso_ms, parse_time, person
from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import Unauthorized

DOCS = ("https://doc.workday.com/admin-guide/en-us/integration/workday-reports/report-as-a-service-raas.html",)


class WorkdayStandIn(StandIn):
    """Table ``workers``; report ``/ccx/service/customreport2/acme/ISU_Reports/Worker_Changes``."""

    name = "workday_raas"
    docs = DOCS

    def build_tables(self) -> dict[str, Table]:
        n = self.count("workers")
        return {"workers": Table("workers", n, lambda i: self._worker(i, n))}

    def _worker(self, i: int, n: int) -> Row:
        t = self.stamp(i, n)
        first, last = person(i)
        return {
            "id": f"{21000 + i}",
            "created": t - dt.timedelta(days=400),
            "updated": t,
            "deleted": None,
            "Legal_Name": f"{first} {last}",
            "Location": CITIES[i % len(CITIES)],
            "FTE": f"{(50 + i % 51) / 100:.2f}",
            "Active": "1" if i % 17 else "0",
            "Job_Profiles": [{"Job_Profile": "Analyst"}] + ([{"Job_Profile": "Lead"}] if i % 5 == 0 else []),
        }

    def render(self, table: str, row: Row) -> dict[str, Any]:
        return {
            "Employee_ID": row["id"],
            "Legal_Name": row["Legal_Name"],
            "Location": row["Location"],
            "FTE": row["FTE"],
            "Active": row["Active"],
            "Hire_Date": row["created"].strftime("%Y-%m-%d"),
            "Last_Updated": iso_ms(row["updated"]),
            "Job_Profiles_group": row["Job_Profiles"],
        }

    def error_response(self, status: int, kind: str, message: str) -> Response:
        return self.json({"error": message, "errors": [{"error": message}]}, status, self.retry_headers(status))

    def connection(self) -> dict[str, Any]:
        c = self.credentials
        return {
            "conn_type": "http",
            "host": self.host_name,
            "schema": "https",
            "port": self.port,
            "login": "ISU_Reports@acme",
            "password": c.password,
            "extra": {"auth_kind": "basic", "verify": str(self.tls.ca_bundle)},
        }

    def routes(self) -> list[Route]:
        return [Route("/ccx/service/customreport2/{tenant}/{owner}/{report}", self.report, methods=["GET"])]

    async def report(self, request: Request) -> Response:
        try:
            self.auth.check_basic(request.headers.get("authorization"), "ISU_Reports@acme", self.credentials.password)
        except Unauthorized:
            return Response("Unauthorized", 401, {"WWW-Authenticate": 'Basic realm="Workday"'}, media_type="text/plain")
        p = request.path_params
        if (p["tenant"], p["owner"], p["report"]) != ("acme", "ISU_Reports", "Worker_Changes"):
            return self.error_response(404, "not_found", "The report does not exist or is not a web service")
        q = request.query_params
        if q.get("format") != "json":
            return Response(
                "<wd:Report_Data xmlns:wd='urn:com.workday.report/Worker_Changes'/>", 200, media_type="text/xml"
            )
        try:
            start = parse_time(q["Updated_From"]) if q.get("Updated_From") else None
            end = parse_time(q["Updated_To"]) if q.get("Updated_To") else None
        except ValueError:
            return self.error_response(400, "bad_request", "Invalid prompt value")
        rows = [self.render("workers", r) for r in self.tables["workers"].view(Query(start=start, end=end)).iter()]
        return self.json({"Report_Entry": rows} if rows else {})
