"""The ``salesforce`` target's spec, its DAG tasks (pool) and the migration form's rules (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from bulksync.errors import SpecError
from bulksync.migration import MigrationParamsError, MigrationRequest, plan
from bulksync.targets.salesforce.accounting import split_error
from tests.helpers import pipeline

SOURCE = {"kind": "sql", "conn_id": "crm", "options": {"table": "accounts", "incremental": True, "cursor_field": "u"}}


def spec(**target: Any) -> Any:
    tgt = {"kind": "salesforce", "conn_id": "org", "object": "Account", "operation": "upsert",
           "external_id": "Acme_Id__c", **target}  # fmt: skip
    return pipeline([{"name": "accounts", "source": SOURCE, "target": tgt}])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"external_id": None}, "operation 'upsert' needs 'external_id'"),
        ({"operation": "insert"}, "'external_id' applies to operation 'upsert' only, not 'insert'"),
        ({"operation": "hardDelete", "external_id": None}, "set 'allow_hard_delete: true' to confirm"),
        ({"operation": "delete", "external_id": None, "fields": {"Id": "id", "Name": "n"}}, "sends only the Id column"),
        ({"fields": {"Name": "a", "Description": "a"}}, "staged columns mapped twice: a"),
        ({"fields": {"Name": "a", "name": "b"}}, "names a Salesforce field twice"),
        ({"max_bytes_per_job": 200 * 1024 * 1024}, "less than or equal to 104857600"),
        ({"object": "Account Name"}, "is not a Salesforce API name"),
    ],
)
def test_bad_target_specs_are_refused_naming_the_field(target: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as info:
        spec(**target)
    assert message in str(info.value) and "datasets[0].target" in str(info.value)


def test_generic_views_of_the_target() -> None:
    t = (
        spec(relationships={"Parent": {"object": "Account", "external_id": "Acme_Id__c", "from": "p"}})
        .datasets[0]
        .target
    )
    assert (t.table, t.mode, t.keys, t.db_schema, t.delete_flag) == ("Account", "upsert", ["Acme_Id__c"], None, None)
    assert t.relationships["Parent"].from_ == "p" and t.pool_name() == "salesforce__org"


def test_the_load_task_takes_max_parallel_jobs_slots_of_the_orgs_pool() -> None:
    from bulksync.factory.dags import build_dag

    dag = build_dag(spec(max_parallel_jobs=3))
    load = dag.get_task("accounts.load")
    assert (load.pool, load.pool_slots) == ("salesforce__org", 3)
    assert dag.get_task("accounts.extract").pool != "salesforce__org"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
         ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"])),
        ("ENTITY_IS_DELETED:entity is deleted:--", ("ENTITY_IS_DELETED", "entity is deleted", [])),
        ("INVALID_FIELD:Foreign key external ID: X:1 not found for field Acme_Id__c in entity Account:ParentId --",
         ("INVALID_FIELD", "Foreign key external ID: X:1 not found for field Acme_Id__c in entity Account",
          ["ParentId"])),
        ("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName, Company]:LastName,Company --",
         ("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName, Company]", ["LastName", "Company"])),
        ("something odd", ("UNKNOWN_ERROR", "something odd", [])),
    ],
)  # fmt: skip
def test_sf_error_is_split_into_code_message_and_fields(text: str, parsed: tuple[str, str, list[str]]) -> None:
    assert split_error(text) == parsed


def test_the_migration_form_can_target_salesforce_but_not_replace_or_rename_it() -> None:
    specs = [spec()]
    req = MigrationRequest(pipeline="acme__test", from_date="2026-01-01", to_date="2026-03-01", slice="month")
    assert [(s["dataset"], s["start"][:10]) for s in plan(specs, req)] == [
        ("accounts", "2026-01-01"),
        ("accounts", "2026-02-01"),
    ]
    for bad in ({"load_mode": "replace"}, {"target_suffix": "_mig"}):
        with pytest.raises(MigrationParamsError, match="writes into Salesforce \\(Account, upsert\\)"):
            plan(specs, MigrationRequest(pipeline="acme__test", from_date="2026-01-01", to_date="2026-02-01", **bad))
