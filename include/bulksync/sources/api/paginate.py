"""Paginators: from one page (and the call that fetched it) to the call of the next page, or None.

Kinds (``paginate.kind``): ``none``; ``next_link`` (a URL at a body path, absolute or relative);
``link_header`` (RFC 8288 ``Link: <…>; rel="next"``, in one header or several); ``cursor`` (a token at a
body path, or taken from the last record, into a param or a body field; ``has_more_path`` may end it);
``offset`` (``offset_param`` advanced by the records received, ``limit``); ``page`` (``page_param`` + 1);
``odata`` (v4 ``@odata.nextLink`` followed verbatim, v2 ``d.__next``); ``graphql`` (Relay
``pageInfo {hasNextPage endCursor}`` into the ``cursor_variable``).

Every token or link is remembered: one that comes back (the API loops) stops the read with an error
instead of reading the same pages forever. See https://www.rfc-editor.org/rfc/rfc8288 for ``Link``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin, urlsplit

from bulksync.sources.api import paths
from bulksync.sources.api.client import Call, Page
from bulksync.sources.api.errors import ApiDataError, where
from bulksync.spec.api import Paginate

_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+(?:=(?:\"[^\"]*\"|[^;,]*))?)*)")
_REL = re.compile(r";\s*rel\s*=\s*(?:\"([^\"]*)\"|([^;,\s]+))", re.I)


def link_next(values: list[str]) -> str | None:
    """The ``rel="next"`` target of ``Link`` header values (each may join several links with commas)."""
    for value in values:
        for target, params in _LINK.findall(value):
            for quoted, bare in _REL.findall(params):
                if "next" in (quoted or bare).lower().split():
                    return str(target)
    return None


def _set(body: Any, key: str, value: Any) -> Any:
    out = copy.deepcopy(body) if isinstance(body, dict) else {}
    target = out
    segs = key.split(".")
    for seg in segs[:-1]:
        target = target.setdefault(seg, {})
    target[segs[-1]] = value
    return out


class Paginator:
    """Walks the pages of one query (a fresh instance per query)."""

    def __init__(self, spec: Paginate) -> None:
        self.spec = spec
        self.seen: dict[str, int] = {}
        self.offset = 0

    def first(self, call: Call) -> Call:
        """The first call, with the page size (and the first offset or page) set."""
        s = self.spec
        changes: dict[str, Any] = {}
        if s.limit_param and s.limit:
            changes[s.limit_param] = s.limit
        if s.kind == "offset" and s.offset_param:
            changes[s.offset_param] = 0
        if s.kind == "page" and s.page_param:
            changes[s.page_param] = s.start_page
        return self._with(call, changes, s.in_body)

    def _with(self, call: Call, changes: dict[str, Any], in_body: bool) -> Call:
        if not changes:
            return call
        if in_body:
            body = call.body
            for k, v in changes.items():
                body = _set(body, k, v)
            return replace(call, body=body)
        return replace(call, params={**(call.params or {}), **changes})

    def _remember(self, token: str, page: Page) -> None:
        if token in self.seen:
            raise ApiDataError(
                f"{where(page.label, page.number)}: the next-page token {_short(token)!r} was already given by page "
                f"{self.seen[token]}; the API is sending the same pages again, so the read stopped instead of "
                "looping. Rerun later; if it persists, report it to the vendor"
            )
        self.seen[token] = page.number

    def next(self, call: Call, page: Page, records: list[Any]) -> Call | None:
        """The call of the page after ``page``, or None after the last page."""
        s = self.spec
        nxt = page.number + 1
        if s.max_pages and page.number >= s.max_pages:
            raise ApiDataError(
                f"{where(page.label, page.number)}: more than paginate.max_pages={s.max_pages} pages; raise the "
                "limit or narrow the query"
            )
        body = page.body
        if s.has_more_path is not None and paths.get(body, s.has_more_path) is False:
            return None
        kind = s.kind
        if kind == "none":
            return None
        if kind in ("next_link", "link_header", "odata"):
            if kind == "next_link":
                link = paths.get(body, s.next_path or "")
            elif kind == "link_header":
                link = link_next(page.headers.get_list("link"))
            elif s.odata_version == "v4":
                link = paths.get(body, "@odata.nextLink")
            else:
                link = paths.get(body, "d.__next") or paths.get(body, "__next")
            if not link:
                return None
            link = urljoin(page.url, str(link))
            self._remember(link, page)
            return replace(call, url=link, params=None, page=nxt, method="GET" if kind != "next_link" else call.method)
        if kind == "cursor":
            if s.cursor_from_last:
                if not records:
                    return None
                token = paths.get(records[-1], s.cursor_from_last)
            else:
                token = paths.get(body, s.next_path or "")
            if token in (None, "") or (s.has_more_path is None and s.cursor_from_last and not records):
                return None
            self._remember(str(token), page)
            assert s.cursor_param is not None
            return replace(self._with(call, {s.cursor_param: token}, s.cursor_in == "body"), page=nxt)
        if kind == "offset":
            got = len(records)
            if got == 0 or (s.limit and got < s.limit and s.has_more_path is None):
                return None
            self.offset += got
            assert s.offset_param is not None
            return replace(self._with(call, {s.offset_param: self.offset}, s.in_body), page=nxt)
        if kind == "page":
            got = len(records)
            if got == 0 or (s.limit and got < s.limit and s.has_more_path is None):
                return None
            assert s.page_param is not None
            return replace(self._with(call, {s.page_param: s.start_page + page.number}, s.in_body), page=nxt)
        if kind == "graphql":
            info = paths.get(body, s.page_info_path or "") or {}
            if not info.get("hasNextPage"):
                return None
            token = info.get("endCursor")
            if not token:
                raise ApiDataError(
                    f"{where(page.label, page.number)}: pageInfo.hasNextPage is true but endCursor is empty"
                )
            self._remember(str(token), page)
            return replace(call, body=_set(call.body, f"variables.{s.cursor_variable}", token), page=nxt)
        raise AssertionError(kind)  # pragma: no cover


def _short(token: str) -> str:
    if "://" in token:
        u = urlsplit(token)
        token = u.path + ("?" + u.query if u.query else "")
    return token if len(token) <= 80 else token[:77] + "..."
