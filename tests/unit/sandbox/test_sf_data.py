"""The seeded generator: deterministic, chunk-independent, typed like describe, realistic values."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.sandbox.salesforce import ids
from bulksync.sandbox.salesforce.data import DEFAULT_MODSTAMP_END, MODSTAMP_SPAN, generate
from bulksync.sandbox.salesforce.schema import ACCOUNT, CONTACT, INVOICE, OBJECTS, OPPORTUNITY

COUNTS = {"Account": 3000, "Contact": 3000, "Opportunity": 3000, "Lead": 3000, "Invoice__c": 3000}


def test_same_seed_same_records_and_chunks_compose() -> None:
    for obj in OBJECTS.values():
        whole = generate(obj, 7, np.arange(0, 3000), COUNTS)
        parts = pa.concat_tables([generate(obj, 7, np.arange(a, a + 1000), COUNTS) for a in (0, 1000, 2000)])
        assert whole.equals(parts), obj.name
        assert not whole.equals(generate(obj, 8, np.arange(0, 3000), COUNTS)), obj.name
        assert whole.schema == obj.arrow_schema


def test_values_are_realistic() -> None:
    acc = generate(ACCOUNT, 1, np.arange(0, 3000), COUNTS).to_pylist()
    assert [r["Id"] for r in acc] == [ids.make_id("001", i) for i in range(3000)]
    deleted = sum(r["IsDeleted"] for r in acc)
    assert 20 <= deleted <= 120  # about 2 %
    lo, hi = DEFAULT_MODSTAMP_END - MODSTAMP_SPAN, DEFAULT_MODSTAMP_END
    for r in acc:
        assert lo <= r["SystemModstamp"] < hi
        assert r["CreatedDate"] <= r["LastModifiedDate"] <= r["SystemModstamp"]
        expected = None
        if r["AnnualRevenue"] is not None and r["NumberOfEmployees"]:
            expected = round(r["AnnualRevenue"] / r["NumberOfEmployees"], 2)
        assert r["Revenue_Per_Employee__c"] == expected
        if r["Discount__c"] is not None:
            assert round(r["Discount__c"], 2) == r["Discount__c"]
    texts = "".join(r["Description"] or "" for r in acc) + "".join(r["BillingStreet"] for r in acc)
    for needle in ("\n", "\r\n", '"', ",", "ß", "東京", "Ærø"):
        assert needle in texts
    assert any(";" in (r["Region__c"] or "") for r in acc)
    modstamps = sorted(r["SystemModstamp"] for r in acc)
    assert modstamps[-1] - modstamps[0] > dt.timedelta(weeks=6)


def test_references_point_at_existing_records() -> None:
    contacts = generate(CONTACT, 1, np.arange(0, 500), COUNTS)
    opps = generate(OPPORTUNITY, 1, np.arange(0, 500), COUNTS)
    invoices = generate(INVOICE, 1, np.arange(0, 500), COUNTS)
    refs = [*contacts["AccountId"].to_pylist(), *opps["AccountId"].to_pylist(), *invoices["Account__c"].to_pylist()]
    indices = [ids.index_of("001", r) for r in refs if r is not None]
    assert len(indices) > 1300 and all(i is not None and 0 <= i < 3000 for i in indices)
    names = contacts.to_pylist()
    assert all(r["Name"] == " ".join(p for p in (r["FirstName"], r["LastName"]) if p) for r in names)
    closed = pc.starts_with(opps["StageName"], "Closed")
    assert closed.to_pylist() == opps["IsClosed"].to_pylist()


def test_two_million_rows_are_addressable_without_generating_them() -> None:
    tail = generate(ACCOUNT, 1, np.arange(1_999_990, 2_000_000), {"Account": 2_000_000})
    assert tail.num_rows == 10
    assert tail["Id"][9].as_py() == ids.make_id("001", 1_999_999)
    assert tail["Name"][9].as_py().endswith(" 2000000")
