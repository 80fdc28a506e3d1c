"""Compose interpolation: the Compose specification's "Interpolation" chapter
(docs.docker.com/reference/compose-file/interpolation/), from the stack's env file only."""

import json

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import compose_interpolate
from ansible_collections.envparity.audit.plugins.module_utils.compose_interpolate import interpolate
from tests.unit.plugins.module_utils.compose_helpers import (
    canary,
    displays,
    service,
    stack,
    web,
)

# ------------------------------------------------------------ interpolation

VARIABLES = {"SET": "value", "EMPTY": "", "OTHER": "other"}

INTERPOLATION = [
    ("$SET", "value"),
    ("${SET}", "value"),
    ("pre-${SET}-post", "pre-value-post"),
    ("$SET/$OTHER", "value/other"),
    # An unbraced name runs as far as name characters go.
    ("$SET_X", ""),
    # A missing variable becomes "" (Compose warns).
    ("${UNSET}", ""),
    ("$UNSET", ""),
    # :- default when unset or empty; - default only when unset.
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${SET:-dflt}", "value"),
    ("${UNSET-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${SET-dflt}", "value"),
    ("${UNSET:-}", ""),
    ("${UNSET:-a b}", "a b"),
    # :+ alternative when set and non-empty; + alternative when set.
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${UNSET:+alt}", ""),
    ("${SET+alt}", "alt"),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    # Required forms when satisfied.
    ("${SET:?need it}", "value"),
    ("${SET?need it}", "value"),
    ("${EMPTY?need it}", ""),
    # $$ is a literal $ and prevents interpolation.
    ("$$SET", "$SET"),
    ("$${SET}", "${SET}"),
    ("a $$ b", "a $ b"),
    ("$$$SET", "$value"),
    # A $ that starts no variable is kept.
    ("costs $5", "costs $5"),
    ("100%$", "100%$"),
    ("$-x", "$-x"),
    # Nested operands, evaluated only when used.
    ("${UNSET:-${SET}}", "value"),
    ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
    ("${UNSET:-$OTHER}", "other"),
    ("${SET:-${UNSET:?never evaluated}}", "value"),
    ("${SET:+[${OTHER}]}", "[other]"),
    # No interpolation at all.
    ("plain", "plain"),
    ("", ""),
]


@pytest.mark.parametrize(("template", "expected"), INTERPOLATION)
def test_interpolation(template, expected):
    assert interpolate(template, VARIABLES) == expected


@pytest.mark.parametrize(
    ("template", "name", "empty"),
    [
        ("${UNSET:?set UNSET please}", "UNSET", False),
        ("${UNSET?set UNSET please}", "UNSET", False),
        ("${EMPTY:?must not be empty}", "EMPTY", True),
        ("x-${UNSET:-${NEEDED?}}", "NEEDED", False),
    ],
)
def test_required_variables(template, name, empty):
    with pytest.raises(compose_interpolate._Required) as caught:
        interpolate(template, VARIABLES)
    assert (caught.value.name, caught.value.empty) == (name, empty)


@pytest.mark.parametrize(
    "template", ["${", "${SET", "${}", "${1X}", "${SET:=x}", "${SET/a/b}", "${ SET }", "${A:-${B}"]
)
def test_invalid_interpolation(template):
    with pytest.raises(compose_interpolate._BadTemplate):
        interpolate(template, VARIABLES)


def test_interpolation_nesting_is_capped():
    template = (
        "${A:-" * (compose_interpolate.MAX_TEMPLATE_NESTING + 2)
        + "x"
        + "}" * (compose_interpolate.MAX_TEMPLATE_NESTING + 2)
    )
    with pytest.raises(compose_interpolate._BadTemplate):
        interpolate(template, {})


def test_stack_interpolates_from_the_env_file_only(tmp_path, monkeypatch):
    # Values come only from the stack's env file, never from the process environment.
    monkeypatch.setenv("FROM_SHELL", "shell")
    monkeypatch.setenv("TAG", "from-shell")
    result = service(
        tmp_path,
        web({"image": "app:${TAG}", "user": "${FROM_SHELL:-nobody}", "restart": "${FROM_SHELL}"}),
        env="TAG=1.4\n",
    )
    assert result["image"]["tag"] == "1.4"
    assert result["user"] == "nobody"
    assert result["restart"] == ""


def test_stack_without_env_file_sees_no_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("TAG", "from-shell")
    result = service(tmp_path, web({"image": "app:${TAG:-none}"}))
    assert result["image"]["tag"] == "none"


def test_env_file_rules(tmp_path):
    # The last binding wins; a bare KEY leaves the variable unset; quotes are the env file's.
    result = service(
        tmp_path,
        web({"image": "app:${TAG}", "user": "${BARE-unset}", "restart": "${QUOTED}"}),
        env="TAG=1\nTAG=2\nBARE\nQUOTED='on-failure'\n",
    )
    assert (result["image"]["tag"], result["user"], result["restart"]) == ("2", "unset", "on-failure")


def test_interpolation_applies_before_merge_and_not_to_keys(tmp_path):
    result = service(
        tmp_path,
        web({"environment": {"${NAME}": "${VALUE}"}, "ports": ["${PORT}:80"]}),
        web({"ports": ["8080:80"]}),
        env="NAME=k\nVALUE=v\nPORT=8080\n",
    )
    # Interpolated per file, so the two "8080:80" are one port after merging.
    assert result["ports"] == ["8080:80/tcp"]
    assert displays(result["environment"]) == {"${NAME}": "v"}


def test_required_variable_fails_the_stack_naming_only_the_variable(tmp_path):
    secret_hint = canary("Hint")
    value = canary()
    result = stack(
        tmp_path,
        web({"image": "app:${TAG:?%s}" % secret_hint, "environment": {"P": value}}),
        env="OTHER=1\n",
    )
    assert result["status"] == "failed"
    assert result["reason"] == "required variable TAG is not set"
    assert result["services"] == {}
    assert [record["status"] for record in result["files"]] == ["ok"]
    text = json.dumps(result)
    assert secret_hint not in text
    assert value not in text


def test_required_variable_set_but_empty(tmp_path):
    result = stack(tmp_path, web({"image": "app:${TAG:?x}"}), env="TAG=\n")
    assert (result["status"], result["reason"]) == ("failed", "required variable TAG is empty")


def test_invalid_interpolation_makes_the_file_malformed(tmp_path):
    result = stack(tmp_path, web({"image": "app:1"}), web({"command": "echo ${oops"}))
    assert result["status"] == "failed"
    assert [record["status"] for record in result["files"]] == ["ok", "malformed"]
    assert "services.web.command" in result["files"][1]["reason"]
    assert "oops" not in json.dumps(result)
