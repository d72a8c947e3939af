"""Spec model of the ``api`` source: any HTTP API as data (``source: {kind: api, conn_id, options}``).

Either generic options (``endpoint``, ``records``, ``paginate``, ``window``, ``parent``, ``deletes``,
``total``, ``limits``) or ``preset: NAME`` + ``object: NAME`` (a data file of
``bulksync/sources/api/presets/``) with optional overrides of the same fields. A preset is expanded
before validation, so every error names the field of the resolved options. See docs/api.md.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from bulksync.spec.columns import TypeName
from bulksync.spec.common import Identifier, StrictModel

_SECRET_PARAMS = {"api_key", "apikey", "hapikey", "access_token", "client_secret", "password", "secret", "token"}
_PATH = re.compile(r"^(\$\.?)?[^\s]*$")
TimeFormat = Literal[
    "iso8601", "iso8601_ms", "iso8601_s", "epoch_s", "epoch_ms", "odata_v4", "odata_v2", "date", "sql_datetime"
]
"""How a window bound is written into a request (see :mod:`bulksync.sources.api.window`)."""


def _dotted(value: str) -> str:
    """A JSONPath-lite or dotted path (``$.results``, ``d.results``, ``properties.email``, ``data[0].id``)."""
    if not isinstance(value, str) or not _PATH.match(value):
        raise ValueError(f"{value!r} is not a dotted path (e.g. results, d.results, properties.email)")
    return value


class ApiColumn(StrictModel):
    """A declared column: ``{name: email, type: string, path: properties.email, nullable: true}``."""

    name: Identifier
    type: TypeName = "string"
    path: str | None = Field(None, description="Dotted path into the record (default: the name).")
    nullable: bool = True
    format: str | None = Field(
        None,
        description="For timestamp/date columns: iso8601 (default), epoch_s, epoch_ms, odata_v2 (/Date(ms)/), "
        "or a strptime pattern.",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        return None if v is None else _dotted(v)


class Endpoint(StrictModel):
    """The request of one page: method, path (``{placeholders}``), query params, JSON body, headers."""

    method: Literal["GET", "POST"] = "GET"
    path: str = Field(min_length=1, description="Path under the connection's base URL, e.g. /crm/v3/objects/deals.")
    params: dict[str, Any] = Field(default_factory=dict)
    body: Any = Field(None, description="JSON body (POST search, SuiteQL, GraphQL).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers (never secrets: see docs/api.md).")

    @field_validator("headers")
    @classmethod
    def _no_secrets(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if k.lower() in ("authorization", "x-api-key", "api-key", "cookie")]
        if bad:
            raise ValueError(f"header {bad[0]!r} holds credentials: put them in the Airflow connection, not the spec")
        return v

    @field_validator("params")
    @classmethod
    def _no_secret_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in v if k.lower().replace("-", "_") in _SECRET_PARAMS]
        if bad:
            raise ValueError(
                f"query parameter {bad[0]!r} holds credentials: put the key in the Airflow connection "
                "(auth_kind api_key with api_key_param), not the spec"
            )
        return v


class Records(StrictModel):
    """Where the records are and what they become."""

    path: str = Field("", description="Dotted path of the record list in a page ('' when the body is the list).")
    columns: Annotated[
        Annotated[list[ApiColumn], Tag("list")] | Annotated[Literal["infer"], Tag("infer")],
        Discriminator(lambda v: "infer" if v == "infer" else "list"),
    ] = Field(description="Declared columns, or 'infer' (profile the first pages; see `bulksync api try`).")
    missing_is_empty: bool = Field(
        False, description="A page without the records member is an empty page (else an error naming the path)."
    )

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _dotted(v)

    @model_validator(mode="after")
    def _unique(self) -> Records:
        if isinstance(self.columns, list):
            names = [c.name for c in self.columns]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"column names declared twice: {', '.join(dupes)}")
        return self


PAGING_KINDS = ("none", "next_link", "link_header", "cursor", "offset", "page", "odata", "graphql")


class Paginate(StrictModel):
    """How to get the next page. Kinds and the fields each uses are in docs/api.md#paginate."""

    kind: Literal["none", "next_link", "link_header", "cursor", "offset", "page", "odata", "graphql"] = "none"
    next_path: str | None = Field(None, description="next_link: body path of the next URL; cursor: of the token.")
    cursor_param: str | None = Field(None, description="cursor: the param (or body field) the token goes into.")
    cursor_in: Literal["params", "body"] = "params"
    cursor_from_last: str | None = Field(
        None, description="cursor: take the token from this path of the page's last record (Stripe starting_after)."
    )
    has_more_path: str | None = Field(None, description="Body path of a 'more pages' boolean (Stripe has_more).")
    limit_param: str | None = Field(None, description="Param (or body field) of the page size.")
    limit: int | None = Field(None, ge=1, le=100_000, description="Page size to ask for.")
    offset_param: str | None = Field(None, description="offset: the param of the record offset.")
    page_param: str | None = Field(None, description="page: the param of the page number.")
    start_page: int = Field(1, ge=0)
    in_body: bool = Field(False, description="offset/page/limit params go into the JSON body instead of the query.")
    odata_version: Literal["v4", "v2"] = "v4"
    page_info_path: str | None = Field(None, description="graphql: body path of the Relay pageInfo object.")
    cursor_variable: str = Field("after", description="graphql: the variable the end cursor goes into.")
    max_pages: int | None = Field(None, ge=1, description="Stop (with an error) after this many pages of one query.")
    check_keys: bool = Field(
        True, description="offset/page: refuse a page repeating primary keys already read (data shifting under paging)."
    )

    @model_validator(mode="after")
    def _needs(self) -> Paginate:
        need = {
            "next_link": ["next_path"],
            "cursor": ["cursor_param"],
            "offset": ["offset_param", "limit"],
            "page": ["page_param"],
            "graphql": ["page_info_path"],
        }.get(self.kind, [])
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"paginate kind {self.kind!r} needs {', '.join(missing)}")
        if self.kind == "cursor" and not (self.next_path or self.cursor_from_last):
            raise ValueError("paginate kind 'cursor' needs next_path (token in the body) or cursor_from_last")
        return self


class Window(StrictModel):
    """How the run's data interval ``[start, end)`` reaches the API."""

    cursor_field: Identifier = Field(description="The declared column holding each record's change time.")
    format: TimeFormat = "iso8601"
    params: dict[str, Any] = Field(default_factory=dict, description="Query params with {start} / {end}.")
    body: Any = Field(None, description="Body fragment with {start} / {end}, merged into the endpoint's body.")
    overlap_minutes: int = Field(0, ge=0, description="Re-read this many minutes before the window start.")
    max_results: int | None = Field(
        None, ge=1, description="The API's cap on one query's results: a window whose total exceeds it is split."
    )
    split_hook: str | None = Field(None, description="A registered splitter hook (default: halve the window).")
    endpoint: Endpoint | None = Field(None, description="The request of a window when it differs (HubSpot search).")
    paginate: Paginate | None = Field(None, description="Paging of the window's request when it differs.")
    min_slice_seconds: float = Field(1.0, gt=0, description="Refuse to split a window below this width.")
    requests_per_second: float | None = Field(
        None,
        gt=0,
        description="Client-side budget of the window's requests when the API limits them more "
        "tightly than the others (HubSpot search: 5 a second).",
    )


class Parent(StrictModel):
    """Fan-out: read a parent listing, then the endpoint once per parent id (``{parent_id}`` in its path)."""

    endpoint: Endpoint
    records_path: str = Field("", description="Path of the parent list in a parent page.")
    key_path: str = Field("id", description="Path of the id in a parent record.")
    paginate: Paginate = Field(default_factory=Paginate)
    column: Identifier = Field("parent_id", description="Output column receiving the parent id (declare it).")
    concurrency: int = Field(4, ge=1, le=64, description="Parents read at once (bounded).")
    on_missing: Literal["fail", "skip"] = Field(
        "fail", description="A 404 for a parent id: fail (naming it) or skip it (counted in the manifest)."
    )


class DeletesRequest(StrictModel):
    """A second request listing deleted records (HubSpot ``archived=true``, Stripe ``*.deleted`` events)."""

    path: str | None = Field(None, description="Endpoint path (default: the main endpoint's).")
    method: Literal["GET", "POST"] | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="Params replacing the main ones' same keys.")
    body: Any = None
    records_path: str | None = None
    record_path: str | None = Field(None, description="Path of the deleted object inside each listed item.")
    window_field: str | None = Field(None, description="Path of the deletion time, filtered to the window here.")
    window_params: dict[str, Any] = Field(default_factory=dict, description="Params with {start}/{end}.")


class Deletes(StrictModel):
    """How the API reports deleted or archived records, mapped to a boolean ``flag`` column."""

    flag: Identifier = Field("IsDeleted", description="The boolean column (use delete_flag on a merge target).")
    when_path: str | None = Field(None, description="A record is deleted when this path is present and not null…")
    equals: Any = Field(None, description="… or equals this value (e.g. archived: true).")
    request: DeletesRequest | None = None

    @model_validator(mode="after")
    def _some(self) -> Deletes:
        if self.when_path is None and self.request is None:
            raise ValueError("deletes needs when_path (a member marking deleted records) and/or request")
        return self


class Total(StrictModel):
    """Where the API states the number of records of the query (first page)."""

    path: str
    capped_at: int | None = Field(None, description="A total equal to this is a cap, not a count (Dataverse 5000).")


class Limits(StrictModel):
    """Client-side rate limit, retries and the circuit breaker of this connection."""

    requests_per_second: float | None = Field(None, gt=0, description="Client-side budget per connection.")
    max_attempts: int = Field(6, ge=1, le=30, description="Attempts per request on transient failures.")
    initial_wait_seconds: float = Field(0.5, ge=0)
    max_wait_seconds: float = Field(60.0, gt=0, description="Longest backoff (Retry-After included).")
    timeout_seconds: float = Field(60.0, gt=0)
    breaker_failures: int = Field(
        20, ge=1, description="Open the circuit breaker after this many failed requests in a row (across retries)."
    )


class Hooks(StrictModel):
    """Named protocol hooks (registered in code, see bulksync.sources.api.protocol)."""

    sign: str | None = Field(None, description="A request-signing hook.")
    page: str | None = Field(None, description="A hook post-processing each page's body.")


class ApiOptions(StrictModel):
    """Options of the ``api`` source (after a preset is expanded)."""

    preset: str | None = Field(None, description="A preset name (see `bulksync api presets`).")
    object: str | None = Field(None, description="One of the preset's objects.")
    endpoint: Endpoint
    records: Records
    primary_key: list[Identifier] = Field(default_factory=list)
    paginate: Paginate = Field(default_factory=Paginate)
    incremental: bool = Field(False, description="Read only the run's data interval (needs window).")
    window: Window | None = None
    parent: Parent | None = None
    deletes: Deletes | None = None
    total: Total | None = None
    limits: Limits = Field(default_factory=Limits)
    hooks: Hooks = Field(default_factory=Hooks)
    batch_records: int = Field(20_000, ge=100, le=1_000_000, description="Records per Arrow batch (memory bound).")

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset"):
            from bulksync.sources.api.presets import expand

            return expand(data)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ApiOptions:
        cols = self.records.columns
        names = [c.name for c in cols] if isinstance(cols, list) else None
        if self.incremental and self.window is None:
            raise ValueError("'incremental: true' needs 'window' (how the data interval reaches the API)")
        if names is not None:
            for what, wanted in (
                ("primary_key", self.primary_key),
                ("window.cursor_field", [self.window.cursor_field] if self.window else []),
                ("parent.column", [self.parent.column] if self.parent else []),
            ):
                missing = [n for n in wanted if n not in names]
                if missing:
                    raise ValueError(
                        f"{what} names undeclared columns: {', '.join(missing)}; declare them in records.columns"
                    )
            if self.deletes and self.deletes.flag in names:
                raise ValueError(f"deletes.flag {self.deletes.flag!r} is added by the source; do not declare it")
        if self.deletes and not self.primary_key:
            raise ValueError("deletes needs primary_key (a delete is applied by key)")
        if names is None and self.parent is not None:
            raise ValueError(
                "records.columns: infer cannot profile a parent fan-out (its path needs a parent id, and the "
                "parent's column would be left out); declare the columns: `bulksync api try` on a copy of the "
                "dataset whose path names one parent id prints the fragment to paste"
            )
        return self


class ApiSourceSpec(StrictModel):
    """``source: {kind: api, conn_id: ..., options: {...}}``; the connection is an Airflow ``http`` one."""

    kind: Literal["api"]
    conn_id: str = Field(min_length=1, description="Airflow connection id (type http, auth kind in extras).")
    options: ApiOptions

    def pool_name(self) -> str | None:
        """The Airflow pool of this connection's extract tasks (``airflow pools set api__{conn_id} N``)."""
        return f"api__{self.conn_id}"
