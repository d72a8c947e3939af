"""Helpers the vendor stand-ins share: deterministic sample values and time formats."""

from __future__ import annotations

import datetime as dt

FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia", "Tim")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie")
CITIES = ("Berlin", "Lyon", "Austin", "Osaka", "Porto", "Leeds", "Gdansk", "Turin", "Ghent", "Malmo")
INDUSTRIES = ("SOFTWARE", "RETAIL", "LOGISTICS", "BANKING", "INSURANCE", "MANUFACTURING")


def iso_ms(value: dt.datetime) -> str:
    """``2026-01-01T00:00:00.000Z`` (HubSpot, Stripe docs, Workday)."""
    v = value.astimezone(dt.UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def iso_s(value: dt.datetime) -> str:
    """``2026-01-01T00:00:00Z`` (Graph, Okta without fractions)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> dt.datetime:
    """A filter value: epoch milliseconds (number or digits) or ISO 8601."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC)
    text = str(value).replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def person(i: int) -> tuple[str, str]:
    """A deterministic first and last name."""
    return FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
