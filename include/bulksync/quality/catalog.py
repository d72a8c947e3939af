"""What bulksync knows about Great Expectations Core 1.24 expectation types, as plain data.

This module is imported at DAG parse time, so it does not import Great Expectations (that takes
seconds). ``tests/unit/test_quality_suites.py`` compares every table here with GX's own registry,
so an upgrade of GX that adds, removes or changes an expectation fails a test instead of drifting.

Row-level expectations (:data:`ROW_LEVEL`) are those whose verdict on a row depends only on that
row's own values and for which GX reports the failing rows (``unexpected_index_list``) on pandas
data. Only their failures can be quarantined row by row. Everything else is aggregate: row counts,
means, distinct values, uniqueness (every copy of a duplicate fails, and which one is wrong cannot
be told), ordering (increasing / decreasing), outliers and z-scores (they depend on the other
rows), and value types (GX checks the column's dtype, not rows, on typed columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class ExpectationKwargs(NamedTuple):
    """The ``kwargs`` an expectation type takes, besides :data:`COMMON_KWARGS`."""

    required: tuple[str, ...]
    optional: tuple[str, ...]


COMMON_KWARGS: frozenset[str] = frozenset({"batch_id", "catch_exceptions", "result_format", "windows"})
"""Kwargs every expectation type accepts."""

COLUMN_KWARGS: tuple[str, ...] = ("column", "column_A", "column_B", "column_list", "column_set")
"""Kwargs whose value names columns: one name (``column``, ``column_A``, ``column_B``) or a list."""

_COND = ("row_condition", "condition_parser")
_MAP = (*_COND, "mostly")
_RANGE = ("min_value", "max_value", "strict_min", "strict_max")

EXPECTATION_KWARGS: dict[str, ExpectationKwargs] = {
    name: ExpectationKwargs(required, optional)
    for name, (required, optional) in {
        "expect_column_distinct_values_to_be_in_set": (("column", "value_set"), _COND),
        "expect_column_distinct_values_to_contain_set": (("column", "value_set"), _COND),
        "expect_column_distinct_values_to_equal_set": (("column", "value_set"), _COND),
        "expect_column_kl_divergence_to_be_less_than": (
            ("column",),
            (
                *_COND,
                "bucketize_data",
                "internal_weight_holdout",
                "max_value",
                "min_value",
                "partition_object",
                "tail_weight_holdout",
                "threshold",
            ),
        ),
        "expect_column_max_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_mean_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_median_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_min_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_most_common_value_to_be_in_set": (("column", "value_set"), (*_COND, "ties_okay")),
        "expect_column_pair_values_a_to_be_greater_than_b": (
            ("column_A", "column_B"),
            (*_MAP, "ignore_row_if", "or_equal"),
        ),
        "expect_column_pair_values_to_be_equal": (("column_A", "column_B"), (*_MAP, "ignore_row_if")),
        "expect_column_pair_values_to_be_in_set": (
            ("column_A", "column_B", "value_pairs_set"),
            (*_MAP, "ignore_row_if"),
        ),
        "expect_column_proportion_of_non_null_values_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_proportion_of_unique_values_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_quantile_values_to_be_between": (
            ("column", "quantile_ranges"),
            (*_COND, "allow_relative_error"),
        ),
        "expect_column_stdev_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_sum_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_to_exist": (("column",), ("column_index",)),
        "expect_column_type_to_be": (("column", "type_"), ()),
        "expect_column_unique_value_count_to_be_between": (("column",), (*_COND, *_RANGE)),
        "expect_column_value_lengths_to_be_between": (("column",), (*_MAP, *_RANGE)),
        "expect_column_value_lengths_to_equal": (("column", "value"), _MAP),
        "expect_column_value_z_scores_to_be_less_than": (("column", "threshold", "double_sided"), _MAP),
        "expect_column_values_to_be_between": (("column",), (*_MAP, *_RANGE)),
        "expect_column_values_to_be_dateutil_parseable": (("column",), _MAP),
        "expect_column_values_to_be_decreasing": (("column",), (*_MAP, "strictly")),
        "expect_column_values_to_be_in_set": (("column", "value_set"), _MAP),
        "expect_column_values_to_be_in_type_list": (("column",), (*_MAP, "type_list")),
        "expect_column_values_to_be_increasing": (("column",), (*_MAP, "strictly")),
        "expect_column_values_to_be_json_parseable": (("column",), _MAP),
        "expect_column_values_to_be_null": (("column",), _MAP),
        "expect_column_values_to_be_of_type": (("column", "type_"), _MAP),
        "expect_column_values_to_be_unique": (("column",), _MAP),
        "expect_column_values_to_match_json_schema": (("column", "json_schema"), _MAP),
        "expect_column_values_to_match_like_pattern": (("column", "like_pattern"), (*_MAP, "escape")),
        "expect_column_values_to_match_like_pattern_list": (
            ("column", "like_pattern_list"),
            (*_MAP, "escape", "match_on"),
        ),
        "expect_column_values_to_match_regex": (("column",), (*_MAP, "regex")),
        "expect_column_values_to_match_regex_list": (("column", "regex_list"), (*_MAP, "match_on")),
        "expect_column_values_to_match_strftime_format": (("column", "strftime_format"), _MAP),
        "expect_column_values_to_not_be_in_set": (("column", "value_set"), _MAP),
        "expect_column_values_to_not_be_null": (("column",), _MAP),
        "expect_column_values_to_not_be_outliers": (("column",), (*_MAP, "method", "multiplier")),
        "expect_column_values_to_not_match_like_pattern": (("column", "like_pattern"), (*_MAP, "escape")),
        "expect_column_values_to_not_match_like_pattern_list": (("column", "like_pattern_list"), (*_MAP, "escape")),
        "expect_column_values_to_not_match_regex": (("column", "regex"), _MAP),
        "expect_column_values_to_not_match_regex_list": (("column", "regex_list"), _MAP),
        "expect_compound_columns_to_be_unique": (("column_list",), (*_MAP, "ignore_row_if")),
        "expect_multicolumn_sum_to_equal": (("column_list", "sum_total"), (*_MAP, "ignore_row_if")),
        "expect_multicolumn_values_to_be_equal": (("column_list",), (*_MAP, "ignore_row_if")),
        "expect_query_results_to_match_comparison": (
            ("base_query", "comparison_data_source_name", "comparison_query"),
            ("mostly",),
        ),
        "expect_select_column_values_to_be_unique_within_record": (("column_list",), (*_MAP, "ignore_row_if")),
        "expect_table_column_count_to_be_between": ((), ("max_value", "min_value")),
        "expect_table_column_count_to_equal": (("value",), ()),
        "expect_table_columns_to_match_ordered_list": ((), ("column_list",)),
        "expect_table_columns_to_match_set": ((), ("column_set", "exact_match")),
        "expect_table_row_count_to_be_between": ((), (*_COND, *_RANGE)),
        "expect_table_row_count_to_equal": (("value",), _COND),
        "expect_table_row_count_to_equal_other_table": (("other_table_name",), _COND),
        "unexpected_rows_expectation": (("unexpected_rows_query",), ()),
    }.items()
}
"""Per expectation type, the kwargs it requires and the ones it also accepts (GX refuses others)."""

KNOWN_EXPECTATIONS: frozenset[str] = frozenset(EXPECTATION_KWARGS)
"""Every expectation type GX Core 1.24 registers (snake_case, as in a suite's ``type``)."""

ROW_LEVEL: frozenset[str] = frozenset(
    {
        # one column, judged value by value
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_values_to_match_json_schema",
        # several columns of the same row
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_to_be_in_set",
        "expect_multicolumn_sum_to_equal",
        "expect_multicolumn_values_to_be_equal",
        "expect_select_column_values_to_be_unique_within_record",
    }
)
"""Expectation types whose failing rows can be told apart and quarantined (see the module doc)."""

PANDAS_UNSUPPORTED: dict[str, str] = {
    "expect_column_values_to_match_like_pattern": "expect_column_values_to_match_regex",
    "expect_column_values_to_match_like_pattern_list": "expect_column_values_to_match_regex_list",
    "expect_column_values_to_not_match_like_pattern": "expect_column_values_to_not_match_regex",
    "expect_column_values_to_not_match_like_pattern_list": "expect_column_values_to_not_match_regex_list",
    "expect_query_results_to_match_comparison": "",
    "expect_table_row_count_to_equal_other_table": "",
    "unexpected_rows_expectation": "",
}
"""Types GX evaluates only with SQL engines, mapped to the pandas equivalent ("" when there is none).

bulksync validates staged Parquet as pandas frames, where these always end in an error.
"""


def columns_in_kwargs(kwargs: Mapping[str, Any]) -> list[str]:
    """The column names an expectation's kwargs refer to, in :data:`COLUMN_KWARGS` order.

    Args:
        kwargs: an expectation's ``kwargs``; values that are not names (or lists of names) are skipped.

    Returns:
        Column names, without repeats.
    """
    out: list[str] = []
    for key in COLUMN_KWARGS:
        value = kwargs.get(key)
        names = [value] if isinstance(value, str) else value if isinstance(value, list | tuple) else []
        out.extend(n for n in names if isinstance(n, str) and n not in out)
    return out
