"""GX suites: the static catalog agrees with GX's registry, and broken suite files name file, field and fix.

The catalog is compared with Great Expectations itself, so upgrading GX cannot silently leave
bulksync with a stale list. The suite checks run without GX (they run at DAG parse time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from bulksync.errors import SpecError
from bulksync.quality.catalog import (
    COLUMN_KWARGS,
    COMMON_KWARGS,
    EXPECTATION_KWARGS,
    KNOWN_EXPECTATIONS,
    PANDAS_UNSUPPORTED,
    ROW_LEVEL,
    columns_in_kwargs,
)
from bulksync.quality.suites import (
    check_suite,
    columns_of,
    load_suite_json,
    severity_of,
    suite_path,
    suite_problems,
    validate_suite_file,
)

# fields of a GX expectation model that are not kwargs (top-level keys of the JSON, or class data)
NOT_KWARGS = {"id", "meta", "notes", "rendered_content", "severity", "description", "library_metadata"}


@pytest.fixture(scope="module")
def gx() -> Any:
    import great_expectations

    return great_expectations


@pytest.fixture
def suites_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "expectations"
    folder.mkdir()
    monkeypatch.setenv("BULKSYNC_EXPECTATIONS_DIR", str(folder))
    return folder


def write(folder: Path, name: str, data: Any) -> Path:
    path = folder / f"{name}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2), encoding="utf-8")
    return path


def problems(folder: Path, data: Any, name: str = "accounts") -> list[tuple[str, str]]:
    """The ``(field path, message)`` problems SpecError lists for a suite file holding ``data``."""
    path = write(folder, name, data)
    with pytest.raises(SpecError) as info:
        validate_suite_file(name)
    assert check_suite(name) == [f"{f}: {p}: {m}" if p else f"{f}: {m}" for f, p, m in info.value.problems]
    assert all(f == str(path) for f, _, _ in info.value.problems)
    return [(p, m) for _, p, m in info.value.problems]


def suite(*expectations: Any, name: str = "accounts") -> dict[str, Any]:
    return {"name": name, "expectations": list(expectations)}


# --- the catalog against GX's registry ---------------------------------------------------------


def test_known_expectations_are_exactly_gx_registry(gx: Any) -> None:
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    registered = set(list_registered_expectation_implementations())
    assert sorted(registered - KNOWN_EXPECTATIONS) == [], "GX registers types the catalog lacks"
    assert sorted(KNOWN_EXPECTATIONS - registered) == [], "the catalog lists types GX no longer has"
    assert len(KNOWN_EXPECTATIONS) == 59


def test_kwargs_of_every_expectation_match_gx_fields(gx: Any) -> None:
    from great_expectations.expectations.registry import get_expectation_impl

    mismatched = {}
    for name, spec in EXPECTATION_KWARGS.items():
        fields = get_expectation_impl(name).__fields__
        required = {k for k, f in fields.items() if f.required}
        optional = set(fields) - required - NOT_KWARGS - COMMON_KWARGS
        assert set(fields) >= COMMON_KWARGS, name
        if (set(spec.required), set(spec.optional)) != (required, optional):
            mismatched[name] = (sorted(required), sorted(optional))
    assert mismatched == {}


def test_row_level_are_map_expectations_and_exclude_uniqueness(gx: Any) -> None:
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.expectations.registry import get_expectation_impl

    maps = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    assert [n for n in sorted(ROW_LEVEL) if not issubclass(get_expectation_impl(n), maps)] == []
    assert ROW_LEVEL <= KNOWN_EXPECTATIONS
    aggregate = {
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_table_row_count_to_be_between",
        "expect_column_mean_to_be_between",
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_to_exist",
        "expect_column_values_to_be_increasing",
        "expect_column_values_to_be_of_type",
    }
    assert aggregate & ROW_LEVEL == set()


def _validate(gx: Any, df: pd.DataFrame, expectations: list[dict[str, Any]]) -> list[Any]:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("t")
        .add_dataframe_asset("t")
        .add_batch_definition_whole_dataframe("t")
        .get_batch(batch_parameters={"dataframe": df})
    )
    result = batch.validate(
        gx.ExpectationSuite(name="t", expectations=expectations),
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]},
    )
    return list(result.results)


# one failing example per row-level type; in each, exactly the row with id 2 is wrong
ROW_FRAME = pa.table(
    {
        "id": [1, 2, 3],
        "n": [1, None, 3],
        "z": [None, 7, None],
        "s": ["a", "zz", "b"],
        "x": [1, 50, 3],
        "d": ["2024-01-01", "bad", "2024-01-03"],
        "j": ['{"k": 1}', "[1", '{"k": 2}'],
        "js": ['{"k": 1}', "[1]", '{"k": 2}'],
        "a": [1, 5, 3],
        "b": [0, 9, 2],
        "c": [1, 6, 3],
        "p": [1, 5, 1],
        "q": [1, 5, 1],
        "q2": [1, 4, 1],
        "r": [2, 5, 2],
    }
)
ROW_EXAMPLES: dict[str, dict[str, Any]] = {
    "expect_column_values_to_not_be_null": {"column": "n"},
    "expect_column_values_to_be_null": {"column": "z"},
    "expect_column_values_to_be_in_set": {"column": "s", "value_set": ["a", "b"]},
    "expect_column_values_to_not_be_in_set": {"column": "s", "value_set": ["zz"]},
    "expect_column_values_to_be_between": {"column": "x", "min_value": 0, "max_value": 10},
    "expect_column_value_lengths_to_be_between": {"column": "s", "min_value": 1, "max_value": 1},
    "expect_column_value_lengths_to_equal": {"column": "s", "value": 1},
    "expect_column_values_to_match_regex": {"column": "s", "regex": "^[a-z]$"},
    "expect_column_values_to_not_match_regex": {"column": "s", "regex": "zz"},
    "expect_column_values_to_match_regex_list": {"column": "s", "regex_list": ["^a$", "^b$"]},
    "expect_column_values_to_not_match_regex_list": {"column": "s", "regex_list": ["zz"]},
    "expect_column_values_to_match_strftime_format": {"column": "d", "strftime_format": "%Y-%m-%d"},
    "expect_column_values_to_be_dateutil_parseable": {"column": "d"},
    "expect_column_values_to_be_json_parseable": {"column": "j"},
    "expect_column_values_to_match_json_schema": {"column": "js", "json_schema": {"type": "object"}},
    "expect_column_pair_values_a_to_be_greater_than_b": {"column_A": "a", "column_B": "b"},
    "expect_column_pair_values_to_be_equal": {"column_A": "a", "column_B": "c"},
    "expect_column_pair_values_to_be_in_set": {"column_A": "a", "column_B": "b", "value_pairs_set": [[1, 0], [3, 2]]},
    "expect_multicolumn_sum_to_equal": {"column_list": ["p", "q"], "sum_total": 2},
    "expect_multicolumn_values_to_be_equal": {"column_list": ["p", "q2"]},
    "expect_select_column_values_to_be_unique_within_record": {"column_list": ["p", "r"]},
}


@pytest.mark.parametrize("frame", ["numpy", "arrow"])
def test_row_level_failures_name_exactly_the_failing_rows(gx: Any, frame: str) -> None:
    assert set(ROW_EXAMPLES) == ROW_LEVEL, "every row-level type needs a failing example here"
    df = ROW_FRAME.to_pandas(types_mapper=pd.ArrowDtype) if frame == "arrow" else ROW_FRAME.to_pandas()
    results = _validate(gx, df, [{"type": t, "kwargs": k} for t, k in ROW_EXAMPLES.items()])
    seen = {
        r.expectation_config.type: (r.success, [i["id"] for i in r.result["unexpected_index_list"]]) for r in results
    }
    assert seen == {t: (False, [2]) for t in ROW_EXAMPLES}


def test_pandas_unsupported_types_error_on_pandas(gx: Any) -> None:
    kwargs = {
        "expect_column_values_to_match_like_pattern": {"column": "s", "like_pattern": "a%"},
        "expect_column_values_to_match_like_pattern_list": {"column": "s", "like_pattern_list": ["a%"]},
        "expect_column_values_to_not_match_like_pattern": {"column": "s", "like_pattern": "a%"},
        "expect_column_values_to_not_match_like_pattern_list": {"column": "s", "like_pattern_list": ["a%"]},
        "expect_query_results_to_match_comparison": {
            "base_query": "select 1",
            "comparison_data_source_name": "t",
            "comparison_query": "select 1",
        },
        "expect_table_row_count_to_equal_other_table": {"other_table_name": "other"},
        "unexpected_rows_expectation": {"unexpected_rows_query": "select * from {batch} where id > 5"},
    }
    assert set(kwargs) == set(PANDAS_UNSUPPORTED)
    assert {v for v in PANDAS_UNSUPPORTED.values() if v} <= ROW_LEVEL
    results = _validate(gx, ROW_FRAME.to_pandas(), [{"type": t, "kwargs": k} for t, k in kwargs.items()])

    def raised(info: dict[str, Any]) -> bool:
        return bool(info.get("raised_exception")) or any(raised(v) for v in info.values() if isinstance(v, dict))

    assert {r.expectation_config.type: raised(r.exception_info) for r in results} == dict.fromkeys(kwargs, True)


def test_checks_do_not_import_great_expectations() -> None:
    code = (
        "import sys, bulksync.quality.suites, bulksync.quality.catalog, bulksync.quality.cli;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'great_expectations', 'pandas', 'pyarrow'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- suite files --------------------------------------------------------------------------------


@pytest.fixture
def gx_suite(gx: Any) -> dict[str, Any]:
    """A suite exactly as GX 1.x writes it."""
    e = gx.expectations
    return dict(
        gx.ExpectationSuite(
            name="accounts",
            expectations=[
                e.ExpectColumnValuesToNotBeNull(column="id"),
                e.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=10, meta={"severity": "warn"}),
                e.ExpectColumnPairValuesToBeEqual(column_A="a", column_B="b"),
                e.ExpectCompoundColumnsToBeUnique(column_list=["id", "region"], mostly=0.99),
                e.ExpectTableRowCountToBeBetween(min_value=1),
                e.ExpectColumnValuesToBeInSet(column="status", value_set=["open"], severity="warning"),
            ],
        ).to_json_dict()
    )


def test_a_suite_written_by_gx_loads_and_round_trips(gx: Any, suites_dir: Path, gx_suite: dict[str, Any]) -> None:
    write(suites_dir, "accounts", gx_suite)
    assert check_suite("accounts") == []
    loaded = load_suite_json("accounts")
    assert loaded == json.loads(json.dumps(gx_suite))
    assert gx.ExpectationSuite(**loaded).to_json_dict()["expectations"] == gx_suite["expectations"]
    assert [severity_of(e) for e in loaded["expectations"]] == ["error", "warn", "error", "error", "error", "warn"]
    assert columns_of(loaded) == ["id", "amount", "a", "b", "region", "status"]


def test_suite_path_is_under_the_expectations_dir(suites_dir: Path) -> None:
    assert suite_path("accounts") == suites_dir / "accounts.json"


def test_missing_suite_says_where_it_looked_and_how_to_create_it(suites_dir: Path) -> None:
    write(suites_dir, "acounts", suite())
    with pytest.raises(SpecError) as info:
        load_suite_json("accounts")
    assert info.value.problems == [
        (
            str(suites_dir / "accounts.json"),
            "",
            f"no suite 'accounts': looked for {suites_dir / 'accounts.json'} (the folder is "
            "$BULKSYNC_EXPECTATIONS_DIR, else expectations/ under $BULKSYNC_HOME); did you mean 'acounts'?; "
            "create it with `bulksync quality init DATASET --pipeline PIPELINE --suite accounts` (profiles the "
            "latest staged partition) or write it by hand (see docs/quality-suites.md)",
        )
    ]
    assert str(info.value).startswith("invalid pipeline spec:\n  " + str(suites_dir / "accounts.json") + ": no suite")


def test_missing_folder_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULKSYNC_EXPECTATIONS_DIR", str(tmp_path / "nowhere"))
    (line,) = check_suite("accounts")
    assert "; that folder does not exist; create it with `bulksync quality init" in line


def test_invalid_json_gives_line_and_column(suites_dir: Path) -> None:
    text = '{\n  "name": "accounts",\n  "expectations": [\n    {"type": "expect_column_to_exist",}\n  ]\n}\n'
    assert problems(suites_dir, text) == [
        ("", "not valid JSON: line 4, column 39: Expecting property name enclosed in double quotes")
    ]


def test_not_a_suite_shape(suites_dir: Path) -> None:
    assert problems(suites_dir, [1, 2]) == [
        ("", "a suite must be a JSON object with 'name' and 'expectations', got list")
    ]
    assert problems(suites_dir, {"expectations": {}}) == [
        ("name", "missing: a suite needs a name (the file name without .json)"),
        ("expectations", "must be a list, got dict"),
    ]
    assert problems(suites_dir, {"name": "other", "data_asset_type": None}) == [
        (
            "data_asset_type",
            "unknown field of a suite (allowed: expectations, id, meta, name, notes, suite_parameters)",
        ),
        ("name", "is 'other' but the file is accounts.json; make them the same"),
        ("expectations", "missing: a suite needs a list of expectations"),
    ]


def test_gx0_suite_is_told_the_gx1_spelling(suites_dir: Path) -> None:
    data = {
        "expectation_suite_name": "accounts",
        "expectations": [{"expectation_type": "expect_column_to_exist", "kwargs": {"column": "id"}}],
    }
    assert problems(suites_dir, data) == [
        ("expectation_suite_name", "is the Great Expectations 0.x spelling; GX 1.x calls it 'name'"),
        ("name", "missing: a suite needs a name (the file name without .json)"),
        ("expectations[0].expectation_type", "is the Great Expectations 0.x spelling; GX 1.x calls it 'type'"),
    ]


def test_unknown_expectation_types_suggest_close_matches(suites_dir: Path) -> None:
    data = suite(
        {"type": "expect_column_to_exist", "kwargs": {"column": "id"}},
        {"type": "expect_column_values_to_not_be_nul", "kwargs": {"column": "id"}},
        {"type": "ExpectColumnValuesToBeUnique", "kwargs": {"column": "id"}},
        {"type": "check_everything", "kwargs": {}},
        {"kwargs": {"column": "id"}},
        "expect_column_to_exist",
    )
    assert problems(suites_dir, data) == [
        (
            "expectations[1].type",
            "unknown expectation type 'expect_column_values_to_not_be_nul' (not in Great Expectations Core 1.24); "
            "did you mean 'expect_column_values_to_not_be_null', 'expect_column_values_to_be_null', "
            "'expect_column_values_to_not_be_outliers'?",
        ),
        (
            "expectations[2].type",
            "'ExpectColumnValuesToBeUnique' is a GX class name; a suite names the type in snake_case: "
            "'expect_column_values_to_be_unique'",
        ),
        (
            "expectations[3].type",
            "unknown expectation type 'check_everything' (not in Great Expectations Core 1.24); "
            "see docs/quality-suites.md for the list",
        ),
        ("expectations[4].type", "missing: name the expectation type, e.g. 'expect_column_to_exist'"),
        ("expectations[5]", "an expectation must be a JSON object, got str"),
    ]


def test_severity_must_be_error_or_warn(suites_dir: Path) -> None:
    data = suite(
        {"type": "expect_column_to_exist", "kwargs": {"column": "id"}, "meta": {"severity": "warning"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "id"}, "meta": {"severity": "warn"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "id"}, "severity": "fatal"},
        {"type": "expect_column_to_exist", "kwargs": {"column": "id"}, "meta": "warn"},
    )
    assert problems(suites_dir, data) == [
        ("expectations[0].meta.severity", "is 'warning'; use 'error' (the default) or 'warn'"),
        (
            "expectations[2].severity",
            "is 'fatal'; GX's severity is one of critical, warning, info (bulksync's is meta.severity: "
            "'error' or 'warn')",
        ),
        ("expectations[3].meta", "must be a JSON object, got str"),
    ]


def test_missing_and_misspelt_kwargs(suites_dir: Path) -> None:
    data = suite(
        {"type": "expect_column_values_to_not_be_null", "kwargs": {}},
        {"type": "expect_column_pair_values_to_be_equal", "kwargs": {"column_A": "a"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "status", "valueset": ["open"]}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "n", "min": 0, "mostly": 0.9}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": "id,region"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": ""}},
        {"type": "expect_column_to_exist", "kwargs": ["id"]},
    )
    assert problems(suites_dir, data) == [
        (
            "expectations[0].kwargs.column",
            "missing: expect_column_values_to_not_be_null needs 'column' (the column it checks)",
        ),
        (
            "expectations[1].kwargs.column_B",
            "missing: expect_column_pair_values_to_be_equal needs 'column_B' (the column it checks)",
        ),
        ("expectations[2].kwargs.value_set", "missing: expect_column_values_to_be_in_set needs 'value_set' (a value)"),
        (
            "expectations[2].kwargs.valueset",
            "expect_column_values_to_be_in_set takes no 'valueset'; did you mean 'value_set'? it takes: column, "
            "condition_parser, mostly, row_condition, value_set",
        ),
        (
            "expectations[3].kwargs.min",
            "expect_column_values_to_be_between takes no 'min'; did you mean 'min_value'? it takes: column, "
            "condition_parser, max_value, min_value, mostly, row_condition, strict_max, strict_min",
        ),
        ("expectations[4].kwargs.column_list", "must be a non-empty list of column names, got 'id,region'"),
        ("expectations[5].kwargs.column", "must be a column name (a string), got ''"),
        ("expectations[6].kwargs", "must be a JSON object, got list"),
    ]


def test_sql_only_expectations_are_refused_with_the_pandas_equivalent(suites_dir: Path) -> None:
    data = suite(
        {"type": "expect_column_values_to_match_like_pattern", "kwargs": {"column": "s", "like_pattern": "a%"}},
        {"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": "select 1"}},
    )
    assert problems(suites_dir, data) == [
        (
            "expectations[0].type",
            "expect_column_values_to_match_like_pattern runs only on SQL engines, but bulksync validates staged "
            "data with pandas; use expect_column_values_to_match_regex instead",
        ),
        (
            "expectations[1].type",
            "unexpected_rows_expectation runs only on SQL engines, but bulksync validates staged data with pandas; "
            "there is no pandas equivalent",
        ),
    ]


def test_suite_problems_of_parsed_data_directly() -> None:
    assert suite_problems(suite({"type": "expect_column_to_exist", "kwargs": {"column": "id"}}), "x.json") == []
    assert suite_problems({"name": "a", "expectations": []}, "a.json", name="b") == [
        ("a.json", "name", "is 'a' but the file is b.json; make them the same")
    ]


@pytest.mark.parametrize(
    ("expectation", "expected"),
    [
        ({"type": "t"}, "error"),
        ({"type": "t", "meta": {"severity": "warn"}}, "warn"),
        ({"type": "t", "meta": {"severity": "error"}, "severity": "warning"}, "error"),
        ({"type": "t", "meta": {}, "severity": "warning"}, "warn"),
        ({"type": "t", "meta": {}, "severity": "info"}, "warn"),
        ({"type": "t", "meta": {"severity": "warn"}, "severity": "critical"}, "warn"),
        ({"type": "t", "meta": None, "severity": "critical"}, "error"),
    ],
)
def test_severity_of(expectation: dict[str, Any], expected: str) -> None:
    assert severity_of(expectation) == expected


def test_severity_of_a_gx_configuration(gx: Any) -> None:
    exp = gx.expectations.ExpectColumnToExist(column="id", severity="warning")
    assert severity_of(exp.configuration.to_json_dict()) == "warn"
    assert severity_of({"type": "t", "severity": exp.severity}) == "warn"


def test_columns_of_and_columns_in_kwargs() -> None:
    assert COLUMN_KWARGS == ("column", "column_A", "column_B", "column_list", "column_set")
    assert columns_in_kwargs({"column_A": "a", "column_B": "b", "column": "c", "mostly": 1}) == ["c", "a", "b"]
    data = suite(
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "id"}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["id", "region"]}},
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["region", "name"]}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "id"}},
    )
    assert columns_of(data) == ["id", "region", "name"]
