"""Azure pieces without a service: the azure_lake spec, storage URLs, and how each kind of
credential of a ``wasb`` connection maps onto the filesystem's options."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection

from bulksync.errors import ConfigurationError, SpecError
from bulksync.storage.azure import account_name_of, filesystem_options
from bulksync.storage.location import split_azure_url
from tests.helpers import pipeline, target

KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHM="


def lake_error(**fields: Any) -> str:
    with pytest.raises(SpecError) as exc:
        target("azure_lake", **fields)
    return str(exc.value)


def test_lake_spec_defaults() -> None:
    spec = target("azure_lake", "lake_conn", "orders", path="abfs://lake/sales", partition_by=["region"])
    assert spec.model_dump() == {
        "kind": "azure_lake",
        "conn_id": "lake_conn",
        "path": "abfs://lake/sales",
        "table": "orders",
        "mode": "append",
        "partition_by": ["region"],
        "compression": "zstd",
        "row_group_rows": 131072,
        "max_open_partitions": 64,
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"conn_id": "c", "path": "abfs://lake/x", "mode": "replace_partition"},
            "datasets[0].target (dataset 'd'): mode 'replace_partition' needs 'partition_by'",
        ),
        (
            {"conn_id": "c", "path": "abfs://lake/x", "partition_by": ["a", "a"]},
            "'partition_by' names a column twice",
        ),
        ({"conn_id": "c", "path": "s3://lake/x"}, "datasets[0].target.path (dataset 'd'): 's3://lake/x' is not"),
        ({"conn_id": "c", "path": "abfs://ab/x"}, "names no container"),
        ({"conn_id": "c", "path": "abfs://lake/x", "mode": "merge"}, "datasets[0].target.mode (dataset 'd')"),
        (
            {"conn_id": "c", "path": "abfs://lake/x", "keys": ["id"]},
            "datasets[0].target.keys (dataset 'd'): unknown field",
        ),
    ],
)
def test_lake_spec_errors_name_the_field(fields: dict[str, Any], message: str) -> None:
    fields.setdefault("table", "orders")
    assert message in lake_error(**fields)


def test_lake_path_needs_a_connection() -> None:
    with pytest.raises(SpecError, match="needs conn_id: the Airflow connection"):
        pipeline(
            [
                {
                    "name": "d",
                    "source": {"kind": "sql", "conn_id": "x", "options": {"table": "t"}},
                    "target": {"kind": "azure_lake", "path": "abfs://lake/x", "table": "t"},
                }
            ]
        )


def test_sql_targets_unchanged_and_unknown_kind_still_named() -> None:
    assert target("postgres").model_dump()["kind"] == "postgres"
    with pytest.raises(SpecError, match=r"datasets\[0\]\.target\.kind .*Input should be 'postgres' or 'sqlite'"):
        target("oracle")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("abfs://staging/acme/x", ("staging", "acme/x")),
        ("abfss://staging", ("staging", "")),
        ("az://staging/p/", ("staging", "p")),
        ("wasb://staging@acct.blob.core.windows.net/p/q", ("staging", "p/q")),
    ],
)
def test_azure_urls(url: str, expected: tuple[str, str]) -> None:
    assert split_azure_url(url) == expected


def test_not_an_azure_url() -> None:
    with pytest.raises(ConfigurationError, match="use abfs://container/prefix"):
        split_azure_url("gs://bucket/x")


def conn(**fields: Any) -> Connection:
    extra = fields.pop("extra", None)
    return Connection(conn_id="c", conn_type="wasb", extra=json.dumps(extra) if extra else None, **fields)


def test_connection_string_wins() -> None:
    cs = f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={KEY};EndpointSuffix=core.windows.net"
    c = conn(login="other", password="x", extra={"connection_string": cs})
    assert filesystem_options(c) == {"connection_string": cs}
    assert account_name_of(c) == "acme"


def test_account_key_in_password() -> None:
    c = conn(login="acme", password=KEY)
    assert filesystem_options(c) == {
        "connection_string": (
            f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={KEY};"
            "BlobEndpoint=https://acme.blob.core.windows.net"
        )
    }


def test_account_key_with_a_path_style_endpoint() -> None:
    c = conn(login="devstoreaccount1", password=KEY, host="http://127.0.0.1:10000/devstoreaccount1")
    assert account_name_of(c) == "devstoreaccount1"
    assert filesystem_options(c)["connection_string"] == (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1"
    )


def test_sas_token_alone_and_as_url() -> None:
    c = conn(login="acme", extra={"sas_token": "?sv=2024&sig=abc"})
    assert filesystem_options(c) == {
        "connection_string": "BlobEndpoint=https://acme.blob.core.windows.net;SharedAccessSignature=sv=2024&sig=abc"
    }
    c = conn(extra={"sas_token": "https://acme.blob.core.windows.net/?sv=2024&sig=abc"})
    assert filesystem_options(c) == {
        "connection_string": "BlobEndpoint=https://acme.blob.core.windows.net;SharedAccessSignature=sv=2024&sig=abc"
    }
    assert account_name_of(c) == "acme"


def test_service_principal() -> None:
    c = conn(
        login="app-id", password="app-secret", host="https://acme.blob.core.windows.net", extra={"tenant_id": "t1"}
    )
    assert filesystem_options(c) == {
        "account_name": "acme",
        "account_host": "acme.blob.core.windows.net",
        "tenant_id": "t1",
        "client_id": "app-id",
        "client_secret": "app-secret",
    }


def test_managed_identity() -> None:
    c = conn(login="acme", extra={"managed_identity_client_id": "mi-1"})
    assert filesystem_options(c) == {
        "account_name": "acme",
        "account_host": "acme.blob.core.windows.net",
        "anon": False,
        "managed_identity_client_id": "mi-1",
    }


def test_a_pipeline_with_azure_staging_and_a_lake_target_builds_its_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse time stays cheap: no connection is looked up (none is defined here)."""
    from bulksync.factory.dags import build_dag
    from bulksync.spec.loader import parse_spec

    spec = pipeline(
        [
            {
                "name": "orders",
                "source": {"kind": "sql", "conn_id": "erp", "options": {"table": "orders"}},
                "target": {
                    "kind": "azure_lake",
                    "conn_id": "lake",
                    "path": "abfs://lake/sales",
                    "table": "orders",
                    "partition_by": ["region"],
                },
            }
        ],
        staging={"root": "abfs://staging/acme", "conn_id": "staging"},
    )
    assert parse_spec(spec.model_dump(mode="json"), "roundtrip.yaml") == spec
    dag = build_dag(spec)
    assert {"orders.extract", "orders.transform", "orders.load", "orders.reconcile"} <= set(dag.task_ids)
