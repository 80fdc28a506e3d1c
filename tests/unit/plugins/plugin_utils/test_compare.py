"""The keyed N-way comparison the areas share."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.compare import (
    always_same,
    compare_key,
    union_keys,
    value_outcome,
)

LABELS = ["dev", "prod/web1", "prod/web2"]


@pytest.mark.parametrize(
    ("records", "outcome"),
    [
        ({"dev": 1, "prod/web1": 1, "prod/web2": 1}, None),
        ({"dev": 1, "prod/web1": None, "prod/web2": 1}, ("missing", ["prod/web1"])),
        ({"dev": 1, "prod/web1": None, "prod/web2": 2}, ("missing", ["prod/web1"])),
        ({"dev": None, "prod/web1": 1, "prod/web2": None}, ("extra", ["prod/web1"])),
        ({"dev": None, "prod/web1": 1, "prod/web2": 2}, ("extra", ["prod/web1", "prod/web2"])),
        ({"dev": 1, "prod/web1": 2, "prod/web2": 1}, ("changed", ["prod/web1"])),
        ({"dev": 0, "prod/web1": 0, "prod/web2": False}, None),
        ({"dev": "", "prod/web1": "", "prod/web2": "x"}, ("changed", ["prod/web2"])),
        ({"dev": None, "prod/web1": None, "prod/web2": None}, None),
        ({"dev": 1}, ("missing", ["prod/web1", "prod/web2"])),
    ],
)
def test_compare_key(records, outcome):
    assert compare_key(records, LABELS) == outcome


def test_a_comparison_of_presence_only_and_a_custom_equality():
    records = {"dev": {"fp": "a", "line": 1}, "prod/web1": {"fp": "a", "line": 9}, "prod/web2": {"fp": "b"}}
    assert compare_key(records, LABELS, same=always_same) is None
    assert compare_key(records, LABELS, same=lambda r, base: r["fp"] == base["fp"]) == ("changed", ["prod/web2"])


def test_union_keys_is_sorted_and_whole():
    assert union_keys([{"b": 1, "a": 2}, {}, {"c": 3, "a": 4}]) == ["a", "b", "c"]
    assert union_keys([]) == []


@pytest.mark.parametrize(
    ("values", "outcome"),
    [
        ({"dev": "a", "prod/web1": "a", "prod/web2": "a"}, None),
        ({"dev": "a", "prod/web1": None, "prod/web2": "a"}, ("missing", ["prod/web1"])),
        # every column that differs is named, the kind is the presence's
        ({"dev": "a", "prod/web1": None, "prod/web2": "b"}, ("missing", ["prod/web1", "prod/web2"])),
        ({"dev": None, "prod/web1": "a", "prod/web2": None}, ("extra", ["prod/web1"])),
        ({"dev": "a", "prod/web1": "b", "prod/web2": "a"}, ("changed", ["prod/web1"])),
        ({"dev": None, "prod/web1": None, "prod/web2": None}, None),
    ],
)
def test_value_outcome(values, outcome):
    assert value_outcome(values, LABELS) == outcome


def test_value_outcome_compares_by_key():
    def fingerprint(record):
        return record["fp"] if record else None

    records = {"dev": {"fp": "1", "line": 1}, "prod/web1": {"fp": "1", "line": 7}, "prod/web2": None}
    assert value_outcome(records, LABELS, key=fingerprint) == ("missing", ["prod/web2"])
    assert value_outcome(records, LABELS[:2], key=fingerprint) is None
    assert value_outcome(records, LABELS[:2]) == ("changed", ["prod/web1"])
