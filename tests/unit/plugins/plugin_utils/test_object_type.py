"""The shared type spec (ObjectType) and the keyed walk every area's diff uses with it."""

import dataclasses

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.object_type import (
    ObjectType,
    get,
    high_if,
    keyed_outcomes,
)

LABELS = ["dev", "prod/web1", "prod/web2"]
THING = ObjectType(
    noun="thing",
    check="area.thing",
    text=lambda thing: "%s/%s" % (thing["a"], thing.get("b")),
    attributes=(("a", get("a")), ("b", get("b"))),
    missing=lambda base: "high" if base["a"] == "vital" else "medium",
    changed=high_if(("b",), "high"),
    advice={"extra": "Drop %(object)s from %(where)s."},
)


def test_a_spec_is_a_frozen_record_built_with_keywords_only():
    with pytest.raises(TypeError):
        ObjectType("thing", "area.thing")  # positional fields are refused
    with pytest.raises(dataclasses.FrozenInstanceError):
        THING.noun = "other"
    plain = ObjectType(noun="remote", check="git.remote_changed")
    assert (plain.severity("missing"), plain.severity("extra"), plain.severity("changed")) == (
        "medium",
        "low",
        "medium",
    )
    assert plain.same("x", "y")  # no attribute: presence only


@pytest.mark.parametrize(
    ("kind", "argument", "check", "severity"),
    [
        ("missing", {"a": "vital"}, "area.thing_missing", "high"),
        ("missing", {"a": "spare"}, "area.thing_missing", "medium"),
        ("extra", {"a": "x"}, "area.thing_extra", "low"),
        ("changed", ["a"], "area.thing_changed", "medium"),
        ("changed", ["a", "b"], "area.thing_changed", "high"),
    ],
)
def test_checks_and_severities_follow_the_table(kind, argument, check, severity):
    assert THING.check_for(kind, argument if kind == "changed" else ()) == check
    assert THING.severity(kind, argument) == severity


def test_a_check_named_per_kind_may_depend_on_what_differs():
    spec = ObjectType(
        noun="file",
        check="git.file",
        attributes=(("content", get("fp")), ("mode", get("mode"))),
        checks={"changed": lambda differing: "git.file_changed" if "content" in differing else "git.file_mode"},
    )
    base, other = {"fp": "1", "mode": "0644"}, {"fp": "1", "mode": "0755"}
    assert spec.differing(base, other) == ["mode"]
    assert spec.check_for("changed", spec.differing(base, other)) == "git.file_mode"
    # differing over several columns is the union, in table order
    assert spec.differing(base, other, {"fp": "2", "mode": "0644"}) == ["content", "mode"]
    assert spec.check_for("changed", ["content", "mode"]) == "git.file_changed"
    assert spec.check_for("missing") == "git.file_missing"


def test_advice_replaces_the_areas_default_and_cells_show_text_or_none():
    assert THING.recommend("extra", "default %(object)s", object="x", where="prod") == "Drop x from prod."
    assert THING.recommend("missing", "Add %(object)s.", object="x") == "Add x."
    objects = {"dev": {"a": 1, "b": 2}, "prod/web1": None}
    assert THING.cells(objects, ["dev", "prod/web1"]) == {"dev": "1/2", "prod/web1": None}


def test_keyed_outcomes_give_presence_then_change_for_each_differing_name():
    maps = {
        "dev": {"same": {"a": 1}, "gone": {"a": 1}, "edited": {"a": 1, "b": 1}, "both": {"a": 1}},
        "prod/web1": {"same": {"a": 1}, "edited": {"a": 1, "b": 2}, "new": {"a": 3}, "both": {"a": 2}},
        "prod/web2": {"same": {"a": 1}, "gone": {"a": 1}, "edited": {"a": 1, "b": 1}},
    }
    found = {name: outcomes for name, _, outcomes in keyed_outcomes(THING, maps, LABELS)}
    assert found == {
        "both": [("missing", ["prod/web2"]), ("changed", ["prod/web1"])],
        "edited": [("changed", ["prod/web1"])],
        "gone": [("missing", ["prod/web1"])],
        "new": [("extra", ["prod/web1"])],
    }
    assert list(found) == sorted(found)  # name order, whatever the maps' order
    objects = next(objects for name, objects, _ in keyed_outcomes(THING, maps, LABELS) if name == "new")
    assert objects == {"dev": None, "prod/web1": {"a": 3}, "prod/web2": None}


def test_keyed_outcomes_of_identical_columns_give_nothing():
    maps = {label: {"x": {"a": 1, "b": 2}} for label in LABELS}
    assert list(keyed_outcomes(THING, maps, LABELS)) == []
