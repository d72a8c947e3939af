"""A stand-in of Workday Reports-as-a-Service (RaaS): Advanced custom reports enabled as web services, as JSON.

Workday's own RaaS guide (doc.workday.com, "Reports as a Service") needs a customer login, so this
stand-in follows the public secondary documentation and the connector fixtures in
/work/shared/api-recordings/workday (INDEX.md; no recorded response exists publicly):

- Workato's RaaS guide, https://docs.workato.com/connectors/workday/workday_raas.html — the report URL
  from *Actions > Web Service > View URLs*: ``GET https://{host}/ccx/service/customreport2/{tenant}/{owner}/
  {report}?format=json``; report prompts are query parameters (``Worker_Type!WID=…``, ``Base_Pay=0``);
  only Advanced reports can be web services.
- ServiceNow's "Workday RaaS report query parameters" and "Obtaining data from Workday using RaaS",
  https://www.servicenow.com/docs/r/integrate-applications/erp-integration-framework/erp-raas-report-query-parameters.html
  — every prompt is a text query parameter, each report defines its own.
- Iru's Workday Report source, https://docs.iru.com/en/compliance/sources/workday-report-source — HTTP
  Basic with an Integration System User (``ISU_name@tenant``), the ISU's security group needs Get access
  to the report's domains.
- The Airbyte connector's fixture (``source-workday/unit_tests/resource/http/response/json/report_2.json``)
  and Faros' ``customreports.json``: ``{"Report_Entry": [{alias: value, …}]}``, every value text, a
  multi-instance field as a list of objects (``Job_Family_Groups_for_Job_Profile_group``). Both are
  embedded below as :data:`DOC_EXAMPLES` and replayed by the tests.

What the stand-in does, and where it had to choose:

- **No paging**: the whole report in one answer (the documented behaviour); large reports are cut by
  their prompts, which is what the preset's window does.
- Two reports under tenant ``acme`` and owner ``ISU_bulksync``: ``Worker_Changes`` (table ``workers``,
  prompts ``Updated_From`` and ``Updated_Before`` as xs:dateTime, filtered ``Last_Updated >= Updated_From``
  and ``< Updated_Before``, the filter the docs page tells the report author to define) and
  ``Job_Profiles`` (table ``job_profiles``, no prompts, the shape of the Airbyte fixture).
- Date-times are rendered in the tenant's time zone with an offset (``2026-01-01T10:00:00.000-08:00``),
  dates as ``YYYY-MM-DD``, booleans as ``"1"``/``"0"``, numbers as text; fields without a value are left
  out of the entry (so readers must treat a missing alias as null). An empty report answers
  ``{"Report_Entry": []}``, or ``{}`` with ``options={"empty_without_member": True}`` (the docs do not say
  which; the preset accepts both).
- Without ``format=json`` the answer is XML (the web service's default output), as Workday does.
- Auth: HTTP Basic with the ISU, or an OAuth bearer token from ``POST /ccx/oauth2/{tenant}/token``
  (refresh-token grant of a registered API client). 401 for bad credentials, 400 for a prompt that is
  not a valid value, 404 for an unknown report, 429/503 with ``Retry-After`` (Workday publishes no RaaS
  rate limits; weekly service updates make a tenant unavailable for a while).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulksync.sandbox.apis.common import CITIES, person
from bulksync.sandbox.asgi import Query, Row, StandIn, Table
from bulksync.sandbox.asgi.auth import OAuthError, Unauthorized

DOCS = (
    "https://docs.workato.com/connectors/workday/workday_raas.html",
    "https://www.servicenow.com/docs/r/integrate-applications/erp-integration-framework/erp-raas-report-query-parameters.html",
    "https://docs.iru.com/en/compliance/sources/workday-report-source",
    "https://doc.workday.com/admin-guide/en-us/integration/workday-reports/report-as-a-service-raas.html",
)
TENANT, OWNER = "acme", "ISU_bulksync"
TENANT_TZ = dt.timezone(dt.timedelta(hours=-8))
REPORTS = {"Worker_Changes": "workers", "Job_Profiles": "job_profiles"}
JOB_PROFILES = ("Accountant", "Analyst", "Engineer", "Recruiter", "Designer", "Manager")
LEVELS = ("Individual Contributor", "Supervisor", "Manager", "Director")

# The public example payloads (api-recordings/workday): the Airbyte fixture's first entry and Faros' mock.
DOC_EXAMPLES: dict[str, Any] = {
    "airbyte_report_2": {
        "Report_Entry": [
            {
                "Job_Family_Ref_ID": "Job 1",
                "Management_Level": "Level 1",
                "Job_Profile_Ref_ID": "Profile 1",
                "Job_Profile": "Profile 1",
                "Job_Family_Group_for_Job_Family": "Family 1",
                "PLN_ESI_Job_Profile_Job_Family": "Profile 1",
                "Job_Family_Groups_for_Job_Profile_group": [{"Job_Family_Group_Ref_ID": "Family 1"}],
            }
        ]
    },
    "faros_customreports": {"Report_Entry": [{"A": "B", "foo": "bar", "C": "3"}, {"A": "D", "foo": "baz", "C": "4"}]},
}


def workday_datetime(value: dt.datetime) -> str:
    """``2026-01-01T10:00:00.000-08:00``: a date-time as RaaS renders it, in the tenant's time zone."""
    v = value.astimezone(TENANT_TZ)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}" + v.strftime("%z")[:3] + ":00"


class WorkdayRaasStandIn(StandIn):
    """Reports ``Worker_Changes`` (table ``workers``) and ``Job_Profiles`` (table ``job_profiles``)."""

    name = "workday_raas"
    token_paths = (f"/ccx/oauth2/{TENANT}/token",)
    docs = DOCS

    def build_tables(self) -> dict[str, Table]:
        self.isu = f"{OWNER}@{TENANT}"
        return {
            "workers": self.generated("workers", self._worker),
            "job_profiles": self.generated("job_profiles", self._profile, 24),
        }

    def _worker(self, i: int, n: int) -> Row:
        t = self.stamp(i, n)
        first, last = person(i)
        hired = dt.date(2015, 1, 1) + dt.timedelta(days=(i * 37) % 3650)
        return {
            "id": f"{210000 + i}",
            "created": t,
            "updated": t,
            "deleted": None,
            "Worker": f"{first} {last}",
            "Email_Work": None if i % 11 == 0 else f"{first}.{last}.{i}@acme.example".lower(),
            "Hire_Date": hired,
            "Job_Profile": JOB_PROFILES[i % len(JOB_PROFILES)],
            "Location": CITIES[i % len(CITIES)],
            "Annual_Base_Pay": f"{50000 + (i * 1379) % 90000}.{(i * 7) % 100:02d}",
            "Active": i % 13 != 0,
            "Cost_Centers_group": [{"Cost_Center_Ref_ID": f"CC{100 + i % 9}"}]
            + ([{"Cost_Center_Ref_ID": "CC900"}] if i % 5 == 0 else []),
        }

    def _profile(self, i: int, m: int) -> Row:
        t = self.stamp(i, m)
        fam = f"Family {1 + i % 4}"
        return {
            "id": f"JP{1000 + i}",
            "created": t,
            "updated": t,
            "deleted": None,
            "Job_Profile": f"{JOB_PROFILES[i % len(JOB_PROFILES)]} {1 + i // len(JOB_PROFILES)}",
            "Management_Level": LEVELS[i % len(LEVELS)],
            "Job_Family_Ref_ID": f"JF{200 + i % 8}",
            "Job_Family_Group_for_Job_Family": fam,
            "Job_Family_Groups_for_Job_Profile_group": [{"Job_Family_Group_Ref_ID": fam}],
        }

    def render(self, table: str, row: Row) -> dict[str, Any]:
        if table == "job_profiles":
            entry = {
                "Job_Family_Ref_ID": row["Job_Family_Ref_ID"],
                "Management_Level": row["Management_Level"],
                "Job_Profile_Ref_ID": row["id"],
                "Job_Profile": row["Job_Profile"],
                "Job_Family_Group_for_Job_Family": row["Job_Family_Group_for_Job_Family"],
                "Job_Family_Groups_for_Job_Profile_group": row["Job_Family_Groups_for_Job_Profile_group"],
            }
        else:
            entry = {
                "Employee_ID": row["id"],
                "Worker": row["Worker"],
                "Email_Work": row.get("Email_Work"),
                "Hire_Date": row["Hire_Date"].isoformat() if row.get("Hire_Date") else None,
                "Job_Profile": row.get("Job_Profile"),
                "Location": row.get("Location"),
                "Annual_Base_Pay": row.get("Annual_Base_Pay"),
                "Active": "1" if row.get("Active") else "0",
                "Cost_Centers_group": row.get("Cost_Centers_group") or None,
                "Last_Updated": workday_datetime(row["updated"]),
            }
        return {k: v for k, v in entry.items() if v is not None}  # RaaS leaves out fields without a value

    def error_response(self, status: int, kind: str, message: str) -> Response:
        body = {"error": message, "errors": [{"error": message}]}
        return self.json(body, status, self.retry_headers(status))

    def unauthorized(self, exc: Unauthorized) -> Response:
        text = "invalid username or password" if exc.reason != "expired" else "invalid or expired token"
        return self.json({"error": text, "errors": [{"error": text}]}, 401)

    def connection(self) -> dict[str, Any]:
        """Basic with the ISU; ``options={"auth": "oauth"}`` gives a refresh-token API client instead."""
        base = f"https://{self.host_name}:{self.port}/ccx/service/customreport2/{TENANT}"
        extra: dict[str, Any] = {"auth_kind": "basic", "verify": str(self.tls.ca_bundle)}
        conn: dict[str, Any] = {
            "conn_type": "http",
            "host": base,
            "login": self.isu,
            "password": self.credentials.password,
        }
        if self.config.options.get("auth") == "oauth":
            c = self.credentials
            conn = {"conn_type": "http", "host": base}
            extra = {
                **extra,
                "auth_kind": "oauth2_refresh_token",
                "token_url": self.token_url,
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "refresh_token": c.refresh_token,
            }
        return {**conn, "extra": extra}

    def routes(self) -> list[Route]:
        return [
            Route(f"/ccx/oauth2/{TENANT}/token", self.token, methods=["POST"]),
            Route("/ccx/service/customreport2/{tenant}/{owner}/{report}", self.report, methods=["GET"]),
        ]

    async def token(self, request: Request) -> Response:
        try:
            return self.json(self.auth.grant(await self.form(request), self.basic(request)))
        except OAuthError as exc:
            return self.json({"error": exc.error, "error_description": exc.description}, exc.status)

    def _check(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        try:
            if header.lower().startswith("basic "):
                self.auth.check_basic(header, self.isu, self.credentials.password)
            else:
                self.auth.check_bearer(header or None)
        except Unauthorized as exc:
            return self.unauthorized(exc)
        return None

    async def report(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        p = request.path_params
        table = REPORTS.get(p["report"])
        if p["tenant"] != TENANT or p["owner"] != OWNER or table is None:
            return self.error_response(404, "not_found", f"Invalid report: {p['owner']}/{p['report']}")
        q = request.query_params
        bounds: dict[str, dt.datetime] = {}
        for prompt in ("Updated_From", "Updated_Before"):
            if q.get(prompt) and table == "workers":
                try:
                    value = dt.datetime.fromisoformat(q[prompt].replace("Z", "+00:00"))
                except ValueError:
                    return self.error_response(400, "bad_request", f"Invalid value for prompt {prompt}: {q[prompt]!r}")
                bounds[prompt] = value if value.tzinfo else value.replace(tzinfo=TENANT_TZ)
        rows = self.tables[table].view(
            Query(field="updated", start=bounds.get("Updated_From"), end=bounds.get("Updated_Before"))
        )
        entries = [self.render(table, r) for r in rows.iter()]
        if (q.get("format") or "").lower() != "json":
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f'<wd:Report_Data xmlns:wd="urn:com.workday.report/{p["report"]}"/>'
            )
            return Response(xml, 200, media_type="application/xml")
        if not entries and self.config.options.get("empty_without_member"):
            return self.json({})
        return self.json({"Report_Entry": entries})
