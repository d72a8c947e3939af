"""The Salesforce client's backoff: exponential with jitter, Retry-After honoured, capped (no network).

The retries themselves run against the sandbox's faults in tests/integration/test_salesforce_extract.py.
"""

from __future__ import annotations

from typing import Any

from tenacity import RetryCallState

from bulksync.sources.salesforce.api import SalesforceApi, _Retry
from bulksync.spec.salesforce import SalesforceOptions


class _Outcome:
    def __init__(self, exc: BaseException) -> None:
        self._exc = exc

    def exception(self) -> BaseException:
        return self._exc


def wait(api: SalesforceApi, attempt: int, exc: BaseException) -> float:
    state: Any = RetryCallState.__new__(RetryCallState)
    state.attempt_number = attempt
    state.outcome = _Outcome(exc)
    return api._wait(state)


def test_backoff_doubles_with_jitter_honours_retry_after_and_is_capped() -> None:
    opts = SalesforceOptions(object="Account", retry_initial_wait_seconds=1.0, retry_max_wait_seconds=30)
    api = SalesforceApi(hook=None, options=opts)  # type: ignore[arg-type]
    for attempt, (lo, hi) in {1: (0.5, 1.0), 2: (1.0, 2.0), 3: (2.0, 4.0), 4: (4.0, 8.0)}.items():
        waits = [wait(api, attempt, _Retry("503")) for _ in range(50)]
        assert all(lo <= w <= hi for w in waits) and len(set(waits)) > 1, (attempt, waits[:5])
    assert wait(api, 1, _Retry("429", retry_after=7)) == 7
    assert wait(api, 1, _Retry("429", retry_after=600)) == 30
    assert wait(api, 10, _Retry("503")) == 30
