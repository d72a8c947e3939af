"""The netsuite_suiteql preset against the NetSuite stand-in: SuiteQL POSTs signed with OAuth 1.0a TBA
(HMAC-SHA256, realm = account, nonces used once), offset paging with totalResults, deletes from
DeletedRecord merged into PostgreSQL, the 100,000-result cap splitting windows, concurrency 429s."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.errors import ConfigurationError, StagingError
from bulksync.sandbox.asgi import StandIn
from bulksync.sources.api.errors import ApiDataError, ApiRequestError
from bulksync.staging.reader import iter_batches, read_manifest
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, rows_by, window
from tests.integration.api.recorded import recording

replay = recorded.replay  # the fixture
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
UTC = dt.UTC
T0, T1 = dt.datetime(2026, 1, 1, 12, tzinfo=UTC), dt.datetime(2026, 1, 1, 13, tzinfo=UTC)


def second(v: dt.datetime) -> dt.datetime:
    return v.replace(microsecond=0)


def customer_truth(
    s: StandIn, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for r in s.records("customer"):
        stamp = r["deleted"] if r["deleted"] is not None else r["updated"]
        if start is not None and not start <= stamp < end:  # type: ignore[operator]
            continue
        if r["deleted"] is not None:
            out[int(r["id"])] = {
                k: None for k in ("companyname", "email", "phone", "isinactive", "creditlimit", "datecreated")
            }
            out[int(r["id"])] |= {
                "id": int(r["id"]),
                "entityid": r["entityid"],
                "lastmodifieddate": second(r["deleted"]),
                "IsDeleted": True,
            }  # DeletedRecord: name and deleteddate
            continue
        out[int(r["id"])] = {
            "id": int(r["id"]),
            "entityid": r["entityid"],
            "companyname": r["companyname"],
            "email": r["email"],
            "phone": r["phone"],
            "isinactive": r["isinactive"],
            "creditlimit": Decimal(r["creditlimit"]) if r["creditlimit"] else None,
            "datecreated": second(r["created"]),
            "lastmodifieddate": second(r["updated"]),
            "IsDeleted": False,
        }
    return out


def spec(obj: str = "customers", **options: Any) -> Any:
    return api_pipeline(
        api_dataset(
            obj,
            "ns",
            {"preset": "netsuite_suiteql", "object": obj, "limits": FAST, **options},
            {
                "kind": "postgres",
                "conn_id": "test_pg",
                "table": f"ns_{obj}",
                "mode": "merge",
                "keys": ["id"],
                "delete_flag": "IsDeleted",
            },
        )
    )


def test_full_and_incremental_customers_equal_the_standin_and_reconcile(standin: Any, env: Any) -> None:
    s = standin("netsuite_suiteql", "ns", counts={"customer": 2500, "transaction": 0})
    s.tables["customer"].delete("1007", dt.datetime(2026, 1, 1, 12, 30, tzinfo=UTC))
    manifest, table = extract(spec(), "customers", window(None, None))
    assert rows_by(table, "id") == customer_truth(s)
    assert manifest.source_count == manifest.rows == 2500  # totalResults 2,499 + the one DeletedRecord entry
    assert manifest.extra["source_stats"]["pages"] == 3 + 1  # 1,000 a page, then the DeletedRecord query

    manifest, table = extract(spec(incremental=True), "customers", window("2026-01-01T12:00", "2026-01-01T13:00"))
    got = rows_by(table, "id")
    assert got == customer_truth(s, T0, T1) and len(got) == 60 + 1
    stamps = sorted(r["lastmodifieddate"] for r in got.values() if r["lastmodifieddate"])
    assert stamps[0] == T0 and stamps[-1] < T1 and any(r["updated"] == T1 for r in s.records("customer"))
    assert manifest.source_count == manifest.rows == 61
    q = s.queries[-2]
    assert (
        "lastmodifieddate >= TO_TIMESTAMP('2026-01-01T12:00:00Z'" in q and "< TO_TIMESTAMP('2026-01-01T13:00:00Z'" in q
    )


def test_deleted_and_changed_customers_merge_into_postgres(standin: Any, env: Any, pg_url: str) -> None:
    s = standin("netsuite_suiteql", "ns", counts={"customer": 300, "transaction": 0})
    runs = (
        ("full", window(None, None), spec()),
        ("inc", window("2026-01-02T00:00", "2026-01-02T06:00"), spec(incremental=True)),
    )
    for run, win, sp in runs:
        if run == "inc":
            s.clock.set(dt.datetime(2026, 1, 2, 5, tzinfo=UTC))
            t = s.tables["customer"]
            for key in ("1010", "1011"):
                t.delete(key, s.clock.now())
            t.upsert("1012", {"companyname": "Renamed Ltd", "isinactive": True}, s.clock.now(), lambda: "x")
        ds = sp.dataset("customers")
        ctx = stages.RunContext(run_id=run, window=win, try_number=1)
        manifest = stages.extract(sp, ds, ctx)
        stages.transform(sp, ds, ctx)
        result = stages.load(sp, ds, ctx)
        rec = stages.reconcile(sp, ds, ctx)
        assert rec["status"] == "success", rec
    assert manifest.rows == manifest.source_count == 3 and result.deleted == 2
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        got = {
            r[0]: (r[1], r[2]) for r in conn.execute(sa.text("SELECT id, companyname, isinactive FROM ns_customers"))
        }
    engine.dispose()
    live = {k: (v["companyname"], v["isinactive"]) for k, v in customer_truth(s).items() if not v["IsDeleted"]}
    assert got == live and len(got) == 298 and got[1012] == ("Renamed Ltd", True)


def test_a_window_over_the_query_cap_is_split_until_each_slice_fits(standin: Any, env: Any) -> None:
    s = standin("netsuite_suiteql", "ns", counts={"customer": 1440, "transaction": 0}, options={"max_results": 500})
    manifest, table = extract(
        spec(incremental=True, window={"max_results": 500}), "customers", window("2026-01-01T00:00", "2026-01-02T00:00")
    )
    assert rows_by(table, "id") == customer_truth(
        s, dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC)
    )
    slices = manifest.extra["source_stats"]["slices"]
    assert len(slices) >= 3 and all(sl["total"] <= 500 for sl in slices) and sum(sl["total"] for sl in slices) == 1440


def test_the_query_cap_without_a_window_fails_naming_it(standin: Any, env: Any) -> None:
    standin("netsuite_suiteql", "ns", counts={"customer": 1200, "transaction": 0}, options={"max_results": 1000})
    with pytest.raises(
        ApiRequestError, match=r"page 2: HTTP 400: SuiteQL returns at most 1000 results of a query; narrow"
    ):
        extract(spec(), "customers", window(None, None))


def test_transactions_and_twenty_percent_faults_with_concurrency_429s(standin: Any, env: Any) -> None:
    faults = {
        "throttle_share": 0.08,
        "unavailable_share": 0.04,
        "reset_share": 0.04,
        "truncate_share": 0.04,
        "seed": 5,
        "retry_after": 0.01,
    }
    s = standin("netsuite_suiteql", "ns", counts={"customer": 10, "transaction": 4000}, faults=faults)
    manifest, table = extract(spec("transactions", paginate={"limit": 200}), "transactions", window(None, None))
    truth = {
        int(r["id"]): (
            r["tranid"],
            r["type"],
            r["trandate"],
            int(r["entity"]),
            Decimal(r["foreigntotal"]),
            second(r["updated"]),
        )
        for r in s.records("transaction")
    }
    got = {
        r["id"]: (r["tranid"], r["type"], r["trandate"], r["entity"], r["foreigntotal"], r["lastmodifieddate"])
        for r in table.to_pylist()
    }
    assert got == truth and manifest.source_count == manifest.rows == 4000
    assert (
        s.faults.served["throttle"] >= 2
        and manifest.extra["source_stats"]["retries"] >= sum(s.faults.served.values()) - 1
    )


def test_a_customer_deleted_while_the_offset_pages_are_read_fails_and_commits_nothing(standin: Any, env: Any) -> None:
    standin(
        "netsuite_suiteql",
        "ns",
        counts={"customer": 2500, "transaction": 0},
        options={"delete_on_request": {3: ["1001"]}},
    )
    sp = spec()
    with pytest.raises(
        ApiDataError, match=r"said 2500 records \(page 1\) but offset paging returned 2499.*nothing was committed"
    ):
        extract(sp, "customers", window(None, None))
    with pytest.raises(StagingError):
        read_manifest(stages.partition_for(sp, sp.dataset("customers"), window(None, None)), "extract")


def test_changed_customers_keep_their_place_in_an_id_ordered_read(standin: Any, env: Any) -> None:
    s = standin("netsuite_suiteql", "ns", counts={"customer": 30, "transaction": 0})
    s.tables["customer"].upsert("1003", {"companyname": "Changed Ltd"}, s.clock.now(), lambda: "x")
    sp = spec(paginate={"limit": 10})
    manifest, table = extract(sp, "customers", window(None, None))
    part = stages.partition_for(sp, sp.dataset("customers"), window(None, None))
    staged = [i for b in iter_batches(part, manifest) for i in b.column("id").to_pylist()]  # in read order
    assert staged == list(range(1000, 1030))  # ORDER BY id, as NetSuite sorts: not appended after the others
    assert rows_by(table, "id")[1003]["companyname"] == "Changed Ltd"


def test_two_tasks_over_the_account_concurrency_limit_are_both_exact(standin: Any, env: Any) -> None:
    s = standin(
        "netsuite_suiteql",
        "ns",
        counts={"customer": 120, "transaction": 0},
        options={"concurrency_limit": 1, "query_seconds": 0.03},
    )
    sp = api_pipeline(
        *(
            api_dataset(
                name,
                "ns",
                {"preset": "netsuite_suiteql", "object": "customers", "limits": FAST, "paginate": {"limit": 20}},
            )
            for name in ("a", "b")
        )
    )
    with cf.ThreadPoolExecutor(2) as pool:  # two extract tasks of one account at once
        results = list(pool.map(lambda name: extract(sp, name, window(None, None), run_id=name), ("a", "b")))
    for _, table in results:
        assert rows_by(table, "id") == customer_truth(s)
    assert s.concurrency_refused >= 1  # 429 CONCURRENCY_LIMIT_EXCEEDED, retried with backoff (no Retry-After)
    assert sum(m.extra["source_stats"].get("http_429", 0) for m, _ in results) == s.concurrency_refused


def test_a_wrong_token_secret_fails_naming_the_connection_without_the_secret(
    standin: Any, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = standin("netsuite_suiteql", "ns", counts={"customer": 5, "transaction": 0})
    conn = s.connection()
    conn["extra"]["token_secret"] = "not-the-secret-0123456789"
    monkeypatch.setenv("AIRFLOW_CONN_NS", json.dumps(conn))
    with pytest.raises(
        ConfigurationError, match=r"refused the credentials of connection 'ns'.*Invalid login attempt"
    ) as exc:
        extract(spec(), "customers", window(None, None))
    assert "not-the-secret" not in str(exc.value) and s.credentials.token_secret not in str(exc.value)
    assert s.auth.counts["rejected"] == 0 and not s.nonces  # refused by the signature check, nothing accepted


def test_an_unknown_field_is_the_documented_400(standin: Any, env: Any) -> None:
    standin("netsuite_suiteql", "ns", counts={"customer": 5, "transaction": 0})
    bad = spec("query", endpoint={"body": {"q": "SELECT id, nosuchfield FROM customer ORDER BY id"}})
    with pytest.raises(
        ApiRequestError, match=r"HTTP 400: Invalid search query.*Field 'nosuchfield' for record 'customer'"
    ):
        extract(bad, "query", window(None, None))


# -- the documented/hand-written sequences of tests/fixtures/api_recordings/netsuite replayed ---------------


def test_the_documented_paging_sequence_through_the_query_object(replay: Any, env: Any) -> None:
    rec = recording("netsuite/handwritten_suiteql_paging_sequence.json")
    tba = {
        "auth_kind": "oauth1_tba",
        "account": "1234567_SB1",
        "consumer_key": "ck",
        "consumer_secret": "cs",
        "token_id": "tid",
        "token_secret": "ts",
    }
    s = replay(rec["exchanges"], "ns", hosts=("https://{accountId}.suitetalk.api.netsuite.com",), extra=tba)
    query = rec["exchanges"][0]["request"]["body"]["q"]
    cols = [
        {"name": "id", "type": "int64", "nullable": False},
        {"name": "entityid"},
        {"name": "lastmodifieddate", "type": "date", "format": "%m/%d/%Y"},
    ]
    sp = spec(
        "query", endpoint={"body": {"q": query}}, records={"columns": cols}, primary_key=["id"], paginate={"limit": 2}
    )
    manifest, table = extract(sp, "query", window(None, None))
    items = [i for ex in rec["exchanges"] for i in ex["response"]["body"]["items"]]
    assert table.column("id").to_pylist() == [int(i["id"]) for i in items] and manifest.source_count == 5
    assert table.column("lastmodifieddate").to_pylist()[0] == dt.date(2024, 1, 1)
    assert [x["url"] for x in s.seen] == [ex["request"]["url"].split(".com", 1)[1] for ex in rec["exchanges"]]
    assert all(x["headers"]["prefer"] == "transient" and x["body"] == {"q": query} for x in s.seen)
    auth = [x["headers"]["authorization"] for x in s.seen]
    assert all(a.startswith('OAuth realm="1234567_SB1"') and 'oauth_signature_method="HMAC-SHA256"' in a for a in auth)
    assert len({a.split("oauth_nonce=")[1][:20] for a in auth}) == 3  # a fresh nonce per request


def test_the_documented_429_is_retried_and_the_400_detail_is_reported(replay: Any, env: Any) -> None:
    errors = recording("netsuite/handwritten_error_bodies.json")["responses"]
    page = recording("netsuite/handwritten_suiteql_paging_sequence.json")["exchanges"][2]["response"]
    last = {**page, "body": {**page["body"], "offset": 0, "totalResults": 1, "hasMore": False}}
    replay([{"response": errors[1]}, {"response": last}], "ns")
    cols = {"columns": [{"name": "id", "type": "int64", "nullable": False}]}
    manifest, table = extract(spec("query", primary_key=["id"], records=cols), "query", window(None, None))
    assert table.num_rows == 1 and manifest.extra["source_stats"]["http_429"] == 1
    replay([{"response": errors[2]}], "ns")
    with pytest.raises(ApiRequestError, match=r"Field 'nosuchfield' for record 'customer' was not found"):
        extract(spec("query", records=cols), "query", window(None, None), run_id="t2")
