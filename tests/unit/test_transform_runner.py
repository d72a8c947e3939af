"""TransformRunner across several batches: dedupe over the whole stream, salted hashing, named Python transforms."""

from __future__ import annotations

import datetime as dt
import hashlib
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from bulksync.errors import ConfigurationError
from bulksync.spec import transforms as t
from bulksync.spec.loader import parse_spec
from bulksync.transform.registry import get_transform, load_transforms, transform
from bulksync.transform.runner import TransformRunner, resolve_salts
from bulksync.transform.steps import StepError

SALT = "pepper-0123456789abcdef"
UTC_US = pa.timestamp("us", tz="UTC")


def parse_steps(*steps: dict[str, Any]) -> list[Any]:
    data = {
        "tenant": "acme", "pipeline": "nightly", "start_date": "2024-01-01",
        "datasets": [{
            "name": "contacts",
            "source": {"kind": "sql", "conn_id": "crm", "options": {"table": "contacts"}},
            "transforms": list(steps),
            "target": {"kind": "postgres", "conn_id": "dwh", "table": "contacts"},
        }],
    }
    return list(parse_spec(data, "nightly.yaml").datasets[0].transforms)


def run_tables(steps: list[dict[str, Any]], batches: list[pa.RecordBatch],
               salts: dict[int, str] | None = None) -> list[pa.Table]:
    runner = TransformRunner(parse_steps(*steps), salts)
    return list(runner.run(lambda: iter(batches), batches[0].schema))


def at(hour: int) -> dt.datetime:
    return dt.datetime(2024, 5, 1, hour, tzinfo=dt.UTC)


def batch(ids: list[int], versions: list[str], updated: list[dt.datetime | None]) -> pa.RecordBatch:
    return pa.record_batch({"id": pa.array(ids, pa.int64()), "v": pa.array(versions),
                            "updated_at": pa.array(updated, UTC_US)})


@pytest.fixture
def three_batches() -> list[pa.RecordBatch]:
    return [
        batch([1, 2, 1], ["a1", "b1", "a2"], [at(1), at(5), at(3)]),
        batch([2, 1, 3], ["b2", "a3", "c1"], [at(2), at(2), None]),
        batch([3, 4], ["c2", "d1"], [at(0), at(9)]),
    ]


def rows(tables: list[pa.Table]) -> list[dict[str, Any]]:
    return [r for table in tables for r in table.to_pylist()]


def test_dedupe_keeps_latest_row_per_key_across_batches(three_batches: list[pa.RecordBatch]) -> None:
    tables = run_tables([{"dedupe": {"keys": ["id"], "latest_by": "updated_at"}}], three_batches)
    assert rows(tables) == [
        {"id": 2, "v": "b1", "updated_at": at(5)},
        {"id": 1, "v": "a2", "updated_at": at(3)},
        {"id": 3, "v": "c2", "updated_at": at(0)},  # a null updated_at never wins
        {"id": 4, "v": "d1", "updated_at": at(9)},
    ]
    assert [tb.num_rows for tb in tables] == [2, 2]  # the middle batch lost every row and is skipped
    assert all(tb.schema == three_batches[0].schema for tb in tables)


def test_dedupe_without_latest_by_keeps_the_last_row_seen(three_batches: list[pa.RecordBatch]) -> None:
    tables = run_tables([{"dedupe": {"keys": ["id"]}}], three_batches)
    assert [(r["id"], r["v"]) for r in rows(tables)] == [(2, "b2"), (1, "a3"), (3, "c2"), (4, "d1")]


def test_dedupe_sees_the_output_of_earlier_steps(three_batches: list[pa.RecordBatch]) -> None:
    steps = [{"filter": "v != 'a2'"}, {"rename": {"id": "contact_id"}},
             {"dedupe": {"keys": ["contact_id"], "latest_by": "updated_at"}}, {"select": ["contact_id", "v"]}]
    tables = run_tables(steps, three_batches)
    assert rows(tables) == [{"contact_id": 2, "v": "b1"}, {"contact_id": 1, "v": "a3"},
                            {"contact_id": 3, "v": "c2"}, {"contact_id": 4, "v": "d1"}]


def test_dedupe_on_composite_keys() -> None:
    b1 = pa.record_batch({"k1": ["x", "x", "y"], "k2": pa.array([1, 2, 1], pa.int64()),
                          "n": pa.array([10, 20, 30], pa.int64())})
    b2 = pa.record_batch({"k1": ["x", "y"], "k2": pa.array([1, 2], pa.int64()), "n": pa.array([5, 40], pa.int64())})
    tables = run_tables([{"dedupe": {"keys": ["k1", "k2"], "latest_by": "n"}}], [b1, b2])
    assert sorted((r["k1"], r["k2"], r["n"]) for r in rows(tables)) == [
        ("x", 1, 10), ("x", 2, 20), ("y", 1, 30), ("y", 2, 40)]


def test_dedupe_on_unknown_column_names_it(three_batches: list[pa.RecordBatch]) -> None:
    with pytest.raises(StepError) as info:
        run_tables([{"dedupe": {"keys": ["contact_id"]}}], three_batches)
    assert str(info.value) == ("transforms[0] dedupe: column(s) ['contact_id'] do not exist; "
                               "columns: ['id', 'v', 'updated_at']")


def test_filter_that_removes_everything_yields_nothing(three_batches: list[pa.RecordBatch]) -> None:
    assert run_tables([{"filter": "id > 100"}], three_batches) == []


def test_output_schema_matches_what_run_produces(three_batches: list[pa.RecordBatch]) -> None:
    steps = parse_steps({"rename": {"v": "version"}}, {"cast": {"id": "decimal(38,0)"}},
                        {"derive": {"tag": "concat('v=', version)", "late": "is_null(updated_at)"}},
                        {"drop": ["updated_at"]})
    runner = TransformRunner(steps)
    tables = list(runner.run(lambda: iter(three_batches), three_batches[0].schema))
    expected = pa.schema([("id", pa.decimal128(38, 0)), ("version", pa.string()), ("tag", pa.string()),
                          ("late", pa.bool_())])
    assert runner.output_schema(three_batches[0].schema) == expected
    assert [tb.schema for tb in tables] == [expected] * 3
    assert pa.concat_tables(tables).column("late").to_pylist() == [False] * 5 + [True] + [False] * 2


def sha(value: str, salt: str = SALT) -> str:
    return hashlib.sha256((salt + value).encode()).hexdigest()


def test_hash_is_salted_sha256_hex_and_nulls_stay_null() -> None:
    b1 = pa.record_batch({"email": ["ann@example.com", None], "phone": pa.array([4915112345, None], pa.int64()),
                          "keep": ["x", "y"]})
    b2 = pa.record_batch({"email": ["Bob@Example.com"], "phone": pa.array([1], pa.int64()), "keep": ["z"]})
    steps = [{"rename": {"keep": "plain"}},
             {"hash": {"columns": ["email", "phone"], "salt": {"variable": "acme_pii_salt"}}}]
    tables = run_tables(steps, [b1, b2], salts={1: SALT})
    assert rows(tables) == [
        {"email": sha("ann@example.com"), "phone": sha("4915112345"), "plain": "x"},
        {"email": None, "phone": None, "plain": "y"},
        {"email": sha("Bob@Example.com"), "phone": sha("1"), "plain": "z"},
    ]
    assert tables[0].schema.field("phone").type == pa.string()
    assert sha("ann@example.com") != hashlib.sha256(b"ann@example.com").hexdigest()


def test_different_salts_give_different_hashes() -> None:
    b = pa.record_batch({"email": ["ann@example.com"]})
    step = [{"hash": {"columns": ["email"], "salt": {"conn_id": "pii_salt"}}}]
    first = rows(run_tables(step, [b], salts={0: SALT}))[0]["email"]
    second = rows(run_tables(step, [b], salts={0: SALT + "x"}))[0]["email"]
    assert (first, second) == (sha("ann@example.com"), sha("ann@example.com", SALT + "x"))


def test_resolve_salts_maps_hash_step_indexes_to_their_secret() -> None:
    steps = parse_steps({"trim": "all"}, {"hash": {"columns": ["a"], "salt": {"variable": "s1"}}},
                        {"drop": ["b"]}, {"hash": {"columns": ["c"], "salt": {"conn_id": "c2"}}})
    seen: list[t.SaltSpec] = []

    def get_secret(spec: t.SaltSpec) -> str:
        seen.append(spec)
        return f"salt-of-{spec.variable or spec.conn_id}"

    assert resolve_salts(steps, get_secret) == {1: "salt-of-s1", 3: "salt-of-c2"}
    assert [(s.variable, s.conn_id) for s in seen] == [("s1", None), (None, "c2")]


def write_transform_module(folder: Path, body: str) -> str:
    """Write a uniquely named transforms module and return its suffix (used in registered names)."""
    suffix = uuid.uuid4().hex[:8]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"tf_{suffix}.py").write_text(textwrap.dedent(body).replace("SUFFIX", suffix), encoding="utf-8")
    return suffix


PHONE_MODULE = """\
    from bulksync.transform.registry import transform


    @transform("digits_SUFFIX")
    def digits(df, column="phone", prefix=""):
        df[column] = prefix + df[column].str.replace(r"[^0-9]", "", regex=True)
        return df


    @transform("broken_SUFFIX")
    def broken(df):
        return len(df)
"""


def test_named_python_transform_from_the_transforms_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "transforms"
    suffix = write_transform_module(folder, PHONE_MODULE)
    (folder / "_helpers.py").write_text("raise RuntimeError('private modules are not imported')\n")
    monkeypatch.setenv("BULKSYNC_TRANSFORMS_DIR", str(folder))
    b = pa.record_batch({"id": pa.array([1, 2], pa.int64()), "phone": ["+49 (151) 123-45", "0151/99"]})
    steps = [{"python": {"name": f"digits_{suffix}", "options": {"column": "phone", "prefix": "tel:"}}}]
    assert rows(run_tables(steps, [b])) == [{"id": 1, "phone": "tel:4915112345"}, {"id": 2, "phone": "tel:015199"}]


def test_load_transforms_registers_the_folder_functions(tmp_path: Path) -> None:
    suffix = write_transform_module(tmp_path, PHONE_MODULE)
    registry = load_transforms(tmp_path)
    assert {f"digits_{suffix}", f"broken_{suffix}"} <= set(registry)
    assert registry[f"digits_{suffix}"].__name__ == "digits"


def test_unknown_transform_name_lists_the_registered_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suffix = write_transform_module(tmp_path, PHONE_MODULE)
    monkeypatch.setenv("BULKSYNC_TRANSFORMS_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError) as info:
        get_transform("normalise_phone")
    message = str(info.value)
    assert message.startswith("no transform named 'normalise_phone'; registered: ")
    assert f"digits_{suffix}" in message
    assert f"broken_{suffix}" in message
    assert f"define it with @transform('normalise_phone') in {tmp_path}" in message


def test_unknown_transform_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULKSYNC_TRANSFORMS_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match="no transform named 'no_such_fn'"):
        run_tables([{"python": {"name": "no_such_fn"}}], [pa.record_batch({"a": [1]})])


def test_python_transform_returning_no_dataframe_is_a_step_error(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    suffix = write_transform_module(tmp_path, PHONE_MODULE)
    monkeypatch.setenv("BULKSYNC_TRANSFORMS_DIR", str(tmp_path))
    with pytest.raises(StepError) as info:
        run_tables([{"drop": ["b"]}, {"python": {"name": f"broken_{suffix}"}}], [pa.record_batch({"a": [1], "b": [2]})])
    assert str(info.value) == f"transforms[1] python 'broken_{suffix}' returned int, not a DataFrame"


def test_registering_a_name_twice_is_refused() -> None:
    name = f"dup_{uuid.uuid4().hex[:8]}"

    @transform(name)
    def first(df: Any) -> Any:
        return df

    assert transform(name)(first) is first  # re-registering the same function is harmless
    with pytest.raises(ConfigurationError, match=f"transform '{name}' is registered twice"):
        @transform(name)
        def second(df: Any) -> Any:
            return df
