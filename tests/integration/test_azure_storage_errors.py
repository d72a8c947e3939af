"""A storage key refused after the extract (rotated or revoked mid-run): every later stage — each in its own
process, as Airflow runs tasks, and in the same process as ``bulksync run`` does — fails with the same
:class:`StorageAccessError` naming the storage account, container and connection, never the key, instead of
a raw ``HttpResponseError`` (Azurite, real SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import StorageAccessError
from tests.azurite import Azurite
from tests.file_drop_runs import reap, result, spawn
from tests.helpers import DAY
from tests.integration.test_azure_staging import ctx, orders, spec_for

WRONG = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
__all__ = ["orders"]  # the fixture


def refused(container: str) -> str:
    return (
        f"storage account 'devstoreaccount1' refused the credentials of Airflow connection 'azurite' for container "
        f"'{container}' (HTTP 403"
    )


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Children a failed test left paused are killed, not left waiting."""
    yield
    reap()


@pytest.fixture
def staged(orders: str, azurite: Azurite, container: str) -> Any:
    """A spec staged on Azure whose extract, transform and load ran with the right key."""
    spec = spec_for(container)
    ds = spec.datasets[0]
    stages.extract_all(spec, ds, ctx("run-1"))
    stages.transform(spec, ds, ctx("run-1"))
    stages.load(spec, ds, ctx("run-1"))
    return spec


def test_a_key_refused_after_the_extract_names_the_connection_in_every_stage(
    staged: Any, azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AZURITE", azurite.key_conn(WRONG))  # the key was rotated
    # in this process, which checked the container already while the key was good (as `bulksync run`)
    with pytest.raises(StorageAccessError) as info:
        stages.reconcile(staged, staged.datasets[0], ctx("run-1"))
    assert str(info.value).startswith(refused(container)) and WRONG not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    # each stage in a process of its own, as Airflow runs tasks
    for stage in ("transform", "load", "reconcile"):
        out = result(spawn(staged, DAY, "run-1", stages=[stage]))
        assert not out["ok"], stage
        assert out["error"].startswith(f"StorageAccessError: {refused(container)}"), (stage, out["error"])
        assert WRONG not in out["stderr"] and WRONG[:16] not in out["stderr"]
        assert "HttpResponseError" not in out["stderr"]


def test_a_drop_zone_whose_key_is_revoked_mid_extract_names_the_connection(azurite: Azurite, container: str) -> None:
    """The store checked the container when it opened; the account then refuses the key (revoked)."""
    from azure.storage.blob import BlobServiceClient

    from bulksync.sources.file_drop.store import open_store
    from tests.azure_drops import landing_url, put

    put(azurite, container, "a.csv", "id\n1\n")
    store = open_store(landing_url(container), "azurite")
    assert [e.name for e in store.list()] == ["a.csv"]
    revoked = BlobServiceClient(
        azurite.blob_endpoint, credential={"account_name": "devstoreaccount1", "account_key": WRONG}
    )
    good = store.client  # type: ignore[attr-defined]
    store.client = revoked.get_container_client(container)  # type: ignore[attr-defined]
    for op in (store.list, lambda: store.open("a.csv"), lambda: store.claim("a.csv", "processing/x/a.csv")):
        with pytest.raises(StorageAccessError) as info:
            op()
        assert str(info.value).startswith(refused(container)) and WRONG not in str(info.value)
    store.client = good  # type: ignore[attr-defined]
    stream = store.open("a.csv")
    stream.raw._blob = revoked.get_blob_client(container, "drops/a.csv")  # type: ignore[attr-defined]
    with pytest.raises(StorageAccessError, match="refused the credentials of Airflow connection 'azurite'"):
        stream.read()
