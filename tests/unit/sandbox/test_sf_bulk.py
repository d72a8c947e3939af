"""Bulk result files: CSV framing per record (quotes, newlines, delimiters, CRLF) and locator paging."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest

from bulksync.sandbox.salesforce import engine, soql
from bulksync.sandbox.salesforce.bulk import JobManager, decode_locator, encode_locator, write_result
from bulksync.sandbox.salesforce.errors import ApiError
from bulksync.sandbox.salesforce.faults import Faults
from bulksync.sandbox.salesforce.store import Store
from tests.helpers import java_double_text

FIELDS = "Id, Name, BillingStreet, Description, AnnualRevenue, Active__c, SystemModstamp, LastActivityDate"


def expected_rows(store: Store, text: str, include_deleted: bool = False) -> list[list[str]]:
    query = soql.parse(text)
    out = []
    for table in engine.scan(store, query, include_deleted):
        for row in table.to_pylist():
            values = []
            for f in query.fields:
                v = row[f.name]
                if v is None:
                    values.append("")
                elif f.type == "datetime":
                    values.append(v.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
                elif f.type == "boolean":
                    values.append("true" if v else "false")
                elif f.type in ("double", "currency", "percent"):
                    values.append(java_double_text(v))
                else:
                    values.append(str(v))
            out.append(values)
    return out


@pytest.mark.parametrize(("delimiter", "eol"), [(",", "\n"), ("\t", "\r\n"), ("|", "\n"), ("`", "\r\n")])
def test_result_file_records_and_offsets(tmp_path: Path, delimiter: str, eol: str) -> None:
    store = Store({"Account": 45_000})
    text = f"SELECT {FIELDS} FROM Account"
    result = write_result(store, soql.parse(text), False, delimiter, eol, tmp_path)
    rows = expected_rows(store, text)
    assert result.records == len(rows)
    header = result.header.decode()
    assert header == delimiter.join(f'"{n.strip()}"' for n in FIELDS.split(",")) + eol
    # any slice of records parses on its own into exactly those records
    for start, stop in [(0, 1), (0, 1000), (12_345, 12_999), (len(rows) - 3, len(rows))]:
        data = result.read(start, stop).decode()
        assert data.startswith('"') and data.endswith(eol)
        parsed = list(csv.reader(io.StringIO(data, newline=""), delimiter=delimiter))
        assert parsed == rows[start:stop]
    raw = result.read(0, 200).decode()
    assert '""B""' in raw  # embedded quotes doubled


def test_locator_round_trip_and_garbage() -> None:
    assert [decode_locator(encode_locator(n)) for n in (0, 7, 50_000, 1_999_999)] == [0, 7, 50_000, 1_999_999]
    assert encode_locator(10_000) == "MTAwMDA"
    with pytest.raises(ApiError) as info:
        decode_locator("!!")
    assert info.value.code == "INVALIDLOCATOR"


def _complete(manager: JobManager, job_id: str) -> dict:
    for _ in range(200):
        info = manager.info(job_id)
        if info["state"] not in ("UploadComplete", "InProgress"):
            return info
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def test_job_pages_cover_every_record_once(tmp_path: Path) -> None:
    store = Store({"Lead": 2_345})
    manager = JobManager(store, tmp_path, Faults(), min_seconds=0.01)
    text = "SELECT Id, Name, Street FROM Lead WHERE IsConverted = false ORDER BY Id"
    job = manager.create({"operation": "query", "query": text}, "59.0")
    info = _complete(manager, job.id)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == len(expected_rows(store, text))
    seen: list[list[str]] = []
    locator = None
    while True:
        header, result, start, stop, locator = manager.page(job.id, locator, "500")
        seen += list(csv.reader(io.StringIO((header + result.read(start, stop)).decode(), newline="")))[1:]
        if locator == "null":
            break
    assert seen == expected_rows(store, text)
    with pytest.raises(ApiError) as err:
        manager.page(job.id, None, "0")
    assert err.value.code == "INVALIDMAXRECORDS"


def test_job_validation_errors(tmp_path: Path) -> None:
    manager = JobManager(Store({"Account": 10}), tmp_path, Faults(), min_seconds=0.01)
    cases = {
        "SELECT Id, BillingAddress FROM Account": ("API_ERROR", "Selecting compound data not supported in Bulk Query"),
        "SELECT COUNT() FROM Account": ("INVALIDJOB", "COUNT()"),
        "SELECT Id FROM Account LIMIT 5 OFFSET 2": ("INVALIDJOB", "OFFSET"),
        "SELECT Idd FROM Account": ("INVALID_FIELD", "No such column 'Idd'"),
    }
    for text, (code, fragment) in cases.items():
        with pytest.raises(ApiError) as info:
            manager.create({"operation": "query", "query": text}, "59.0")
        assert info.value.code == code and fragment in info.value.message
    with pytest.raises(ApiError) as info:
        manager.create({"operation": "insert", "query": "SELECT Id FROM Account"}, "59.0")
    assert info.value.code == "INVALIDJOB"
    with pytest.raises(ApiError) as info:
        manager.create({"operation": "query", "query": "SELECT Id FROM Account", "columnDelimiter": "COLON"}, "59.0")
    assert info.value.code == "INVALIDJOB" and "columnDelimiter" in info.value.message
    assert manager.jobs == {}


def test_job_without_records_has_one_header_only_page(tmp_path: Path) -> None:
    manager = JobManager(Store({"Account": 300}), tmp_path, Faults(), min_seconds=0.01)
    job = manager.create({"operation": "queryAll", "query": "SELECT Id, Name FROM Account WHERE Name = 'none'"}, "59.0")
    assert _complete(manager, job.id)["numberRecordsProcessed"] == 0
    header, result, start, stop, locator = manager.page(job.id, None, None)
    assert (header, result.read(start, stop), stop - start, locator) == (b'"Id","Name"\n', b"", 0, "null")
