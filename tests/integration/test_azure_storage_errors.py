"""A storage key refused after the extract (rotated or revoked mid-run): every later stage — each in its own
process, as Airflow runs tasks, and in the same process as ``bulksync run`` does — fails with the same
:class:`StorageAccessError` naming the storage account, container and connection, never the key, instead of
a raw ``HttpResponseError`` (Azurite, real SDK)."""

from __future__ import annotations

from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import StorageAccessError
from tests.azurite import Azurite
from tests.file_drop_runs import result, spawn
from tests.helpers import DAY
from tests.integration.test_azure_staging import ctx, orders, spec_for

WRONG = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
__all__ = ["orders"]  # the fixture


def refused(container: str) -> str:
    return (
        f"storage account 'devstoreaccount1' refused the credentials of Airflow connection 'azurite' for container "
        f"'{container}' (HTTP 403"
    )


@pytest.fixture
def staged(orders: str, azurite: Azurite, container: str) -> Any:
    """A spec staged on Azure whose extract, transform and load ran with the right key."""
    spec = spec_for(container)
    ds = spec.datasets[0]
    stages.extract_all(spec, ds, ctx("run-1"))
    stages.transform(spec, ds, ctx("run-1"))
    stages.load(spec, ds, ctx("run-1"))
    return spec


def test_every_later_stage_in_its_own_process_names_the_connection(
    staged: Any, azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AZURITE", azurite.key_conn(WRONG))  # the key was rotated
    for stage in ("transform", "load", "reconcile"):
        out = result(spawn(staged, DAY, "run-1", stages=[stage]))
        assert not out["ok"], stage
        assert out["error"].startswith(f"StorageAccessError: {refused(container)}"), (stage, out["error"])
        assert (
            WRONG not in out["stderr"] and WRONG[:16] not in out["stderr"] and "HttpResponseError" not in out["stderr"]
        )


def test_a_key_refused_later_in_the_same_process_gives_the_same_error(
    staged: Any, azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AZURITE", azurite.key_conn(WRONG))  # this process checked the container already
    with pytest.raises(StorageAccessError) as info:
        stages.reconcile(staged, staged.datasets[0], ctx("run-1"))
    assert str(info.value).startswith(refused(container)) and WRONG not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
