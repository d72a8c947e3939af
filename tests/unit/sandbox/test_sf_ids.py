"""Salesforce ids of the sandbox: the real case-safe checksum, round trips and sort order."""

from __future__ import annotations

import numpy as np

from bulksync.sandbox.salesforce import ids


def test_checksum_matches_salesforce_documented_example() -> None:
    assert ids.to_18("a0D30000001n7Pi") == "a0D30000001n7PiEAI"
    assert ids.to_18("not-an-id") == "not-an-id"


def test_vectorised_ids_equal_scalar_ids_and_round_trip() -> None:
    indices = np.array([0, 1, 61, 62, 3843, 999_999, 1_999_999, 62**5 + 17])
    vector = [v.decode() for v in ids.make_ids("001", indices)]
    scalar = [ids.make_id("001", int(i)) for i in indices]
    assert vector == scalar
    assert [ids.index_of("001", v) for v in vector] == indices.tolist()
    assert all(len(v) == 18 and v.startswith("001") for v in vector)
    assert ids.index_of("001", vector[3][:15]) == 62  # 15-character ids are accepted
    assert ids.index_of("003", vector[0]) is None  # other object
    assert ids.index_of("001", vector[0][:15] + "AAA") is None  # wrong checksum


def test_ids_sort_like_indices_and_bound_search() -> None:
    sample = ids.make_ids("006", np.arange(0, 200_000, 7))
    as_text = [v.decode() for v in sample]
    assert as_text == sorted(as_text)
    target = ids.make_id("006", 12_345)
    assert ids.lower_bound("006", target, 200_000) == 12_345
    assert ids.lower_bound("006", target + "\x7f", 200_000) == 12_346
    assert ids.lower_bound("006", "", 200_000) == 0
    assert ids.lower_bound("006", "zzz", 200_000) == 200_000
