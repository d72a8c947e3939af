"""Progress of a stage (issue 14 item 13): bars learn the total where it is known; logs give %, rate, ETA."""

from __future__ import annotations

import logging

import pytest

from bulksync import stages


class Bar:
    def __init__(self) -> None:
        self.total: int | None = -1
        self.done = 0

    def start(self, total: int | None) -> None:
        self.total = total

    def __call__(self, rows: int) -> None:
        self.done += rows


def test_a_bar_is_told_the_total_and_the_log_gives_percent_rate_and_eta(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(stages, "PROGRESS_EVERY_ROWS", 1000)
    bar = Bar()
    with caplog.at_level(logging.INFO, logger="bulksync.stages"):
        progress = stages._Progress("load orders", bar, 4000)
        for _ in range(4):
            progress.add(1000)
    assert (bar.total, bar.done) == (4000, 4000)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert lines[1].startswith("load orders: 2000 of 4000 rows (50%), ") and " rows/s, about " in lines[1]
    assert lines[1].endswith(" s left")


def test_without_a_total_the_log_says_rows_so_far(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(stages, "PROGRESS_EVERY_ROWS", 10)
    bar = Bar()
    with caplog.at_level(logging.INFO, logger="bulksync.stages"):
        progress = stages._Progress("extract x", bar)
        progress.add(15)
    assert bar.total is None
    assert caplog.records[0].getMessage().startswith("extract x: 15 rows so far (")
