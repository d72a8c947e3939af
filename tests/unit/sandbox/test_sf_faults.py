"""Fault draws: seeded (repeatable), in the configured shares, counted against the daily limit."""

from __future__ import annotations

from collections import Counter

import pytest

from bulksync.sandbox.salesforce.faults import Faults, FaultSettings


def test_draws_follow_shares_and_repeat_with_the_seed() -> None:
    settings = dict(unavailable_share=0.1, throttle_share=0.05, drop_share=0.05, truncate_share=0.02, seed=3)
    first = Faults(FaultSettings(**settings))
    draws = [first.draw() for _ in range(20_000)]
    again = Faults(FaultSettings(**settings))
    assert [again.draw() for _ in range(20_000)] == draws
    counts = Counter(draws)
    assert counts["unavailable"] == pytest.approx(2000, rel=0.1)
    assert counts["throttle"] == pytest.approx(1000, rel=0.15)
    assert counts["drop"] == pytest.approx(1000, rel=0.15)
    assert counts["truncate"] == pytest.approx(400, rel=0.25)
    assert counts[None] == pytest.approx(15_600, rel=0.05)
    assert first.api_used == 20_000


def test_daily_limit_and_failed_jobs() -> None:
    faults = Faults(FaultSettings(daily_api_max=2, fail_jobs=1))
    assert [faults.draw() for _ in range(4)] == [None, None, "exhausted", "exhausted"]
    assert [faults.take_job_failure() for _ in range(3)] == [True, False, False]
    faults.configure(daily_api_max=10)
    assert faults.draw() is None
    with pytest.raises(TypeError, match="unknown fault settings: \\['nonsense'\\]"):
        faults.configure(nonsense=1)
    faults.configure(drop_share=1.0)
    faults.clear()
    assert faults.draw() is None and faults.settings.daily_api_max == 10
