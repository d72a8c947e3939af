"""The credential kinds Azurite supports — connection string, account key, shared access key and SAS
token — each through the Azure provider's connection fields, end to end (a lake load read back); and
what a person sees for wrong credentials (account and connection named, secret nowhere) and for a
missing container (named). Service principals and managed identities need Microsoft Entra ID, which
has no local stand-in: their connection mapping is checked in tests/unit/test_azure_spec.py."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pyarrow as pa
import pytest

from bulksync import stages
from bulksync.errors import StorageAccessError
from bulksync.storage.hive import read_committed
from bulksync.storage.location import open_location
from bulksync.targets.registry import make_target
from tests.azurite import ACCOUNT, ACCOUNT_KEY
from tests.helpers import DAY, batches, pipeline, target

DATA = pa.table({"id": [1, 2, 3, 4], "region": ["EU", "EU", "US", None], "amount": [1.5, 2.5, 3.5, 4.5]})
WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc="


def sas_token(azurite: Any) -> str:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    return generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )


def connections(azurite: Any) -> dict[str, str]:
    endpoint = azurite.blob_endpoint
    return {
        "connection_string": azurite.airflow_conn(),
        "account_key": azurite.key_conn(),
        "shared_access_key": json.dumps(
            {"conn_type": "wasb", "login": ACCOUNT, "host": endpoint, "extra": {"shared_access_key": ACCOUNT_KEY}}
        ),
        "sas_token": json.dumps({"conn_type": "wasb", "host": endpoint, "extra": {"sas_token": sas_token(azurite)}}),
    }


@pytest.mark.parametrize("kind", ["connection_string", "account_key", "shared_access_key", "sas_token"])
def test_each_credential_kind_loads_and_reads_back(
    azurite: Any, container: str, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_CRED", connections(azurite)[kind])
    tgt = target("azure_lake", "lake_cred", "t", path=f"abfs://{container}/lake", partition_by=["region"])
    result = make_target(tgt).load(batches(DATA), DATA.schema, window=DAY, run_id="r")
    assert result.rows == 4
    back = read_committed(open_location(f"abfs://{container}/lake", "lake_cred").child("t"))
    assert back is not None
    assert sorted(back.to_pylist(), key=lambda r: r["id"]) == DATA.to_pylist()


def test_staging_through_a_sas_token(
    azurite: Any, container: str, monkeypatch: pytest.MonkeyPatch, pg_url: str, env: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    monkeypatch.setenv("AIRFLOW_CONN_STAGING_SAS", connections(azurite)["sas_token"])
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t AS SELECT g AS id, 'x' || g AS name FROM generate_series(1, 1000) g")
    spec = pipeline(
        [
            {
                "name": "t",
                "source": {"kind": "sql", "conn_id": "test_pg", "options": {"table": "t"}},
                "target": {"kind": "postgres", "conn_id": "test_pg", "table": "t_copy"},
            }
        ],
        staging={"root": f"abfs://{container}/s", "conn_id": "staging_sas"},
    )
    manifest = stages.extract_all(spec, spec.datasets[0], stages.RunContext(run_id="r", window=DAY, try_number=1))
    assert manifest.rows == 1000


@pytest.mark.parametrize("how", ["account_key", "sas_token"])
def test_wrong_credentials_name_account_and_connection_not_the_secret(
    azurite: Any, container: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    if how == "account_key":
        secret = WRONG_KEY
        conn = azurite.key_conn(key=WRONG_KEY)
    else:
        good = sas_token(azurite)
        secret = good.replace("sig=", "sig=AAAA")
        conn = json.dumps({"conn_type": "wasb", "host": azurite.blob_endpoint, "extra": {"sas_token": secret}})
    monkeypatch.setenv("AIRFLOW_CONN_BAD_LAKE", conn)
    caplog.set_level(logging.INFO)  # task log level; urllib3 prints request URLs (SAS included) at DEBUG
    tgt = target("azure_lake", "bad_lake", "t", path=f"abfs://{container}/lake")
    with pytest.raises(StorageAccessError) as exc:
        make_target(tgt).load(batches(DATA), DATA.schema, window=DAY, run_id="r")
    message = str(exc.value)
    assert f"storage account '{ACCOUNT}' refused the credentials of Airflow connection 'bad_lake'" in message
    assert exc.value.__cause__ is None and exc.value.__suppress_context__
    for text in (message, repr(exc.value), caplog.text):
        assert secret not in text
        assert secret.split("sig=")[-1][:20] not in text
    # nothing was written
    assert list(azurite.service_client().get_container_client(container).list_blobs()) == []


def test_missing_container_is_named(azurite: Any) -> None:
    tgt = target("azure_lake", "azurite", "t", path="abfs://no-such-container/lake")
    with pytest.raises(StorageAccessError, match="container 'no-such-container' does not exist in storage account"):
        make_target(tgt).load(batches(DATA), DATA.schema, window=DAY, run_id="r")


def test_missing_container_for_staging_is_named(azurite: Any, pg_url: str, env: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t AS SELECT 1 AS id")
    spec = pipeline(
        [
            {
                "name": "t",
                "source": {"kind": "sql", "conn_id": "test_pg", "options": {"table": "t"}},
                "target": {"kind": "postgres", "conn_id": "test_pg", "table": "t_copy"},
            }
        ],
        staging={"root": "abfs://missing-staging/s", "conn_id": "azurite"},
    )
    with pytest.raises(StorageAccessError, match=r"container 'missing-staging' does not exist .*connection 'azurite'"):
        stages.extract_all(spec, spec.datasets[0], stages.RunContext(run_id="r", window=DAY, try_number=1))
