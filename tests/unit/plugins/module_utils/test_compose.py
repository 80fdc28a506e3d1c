"""Compose stacks: YAML loading and caps, merge and interpolation rules, normalisation, leaks.

The merge and interpolation tables check Compose's documented behaviour: the
Compose specification's "Merge" and "Interpolation" chapters
(docs.docker.com/reference/compose-file/merge/ and .../interpolation/).
"""

import json
import os
import random
import string
import sys
import threading
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import compose
from ansible_collections.envparity.audit.plugins.module_utils.compose import (
    canonical_port,
    canonical_volume,
    collect_stacks,
    interpolate,
    merge_documents,
    normalize_project_name,
    parse_image,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint

KEY = b"k" * 32
_RNG = random.Random(3)
SERVICE_FIELDS = {
    "image",
    "build",
    "command",
    "entrypoint",
    "ports",
    "environment",
    "env_file",
    "volumes",
    "networks",
    "depends_on",
    "healthcheck",
    "restart",
    "limits",
    "reservations",
    "logging",
    "labels",
    "user",
    "privileged",
    "read_only",
    "cap_add",
    "profiles",
}
STACK_FIELDS = {"project", "status", "reason", "files", "env_file", "services"}


def canary(prefix="Cnry"):
    """A fresh value that is secret whatever its key's name (random enough to be caught)."""
    return prefix + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(28))


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def as_yaml(document):
    """JSON is YAML: a document written as JSON reads back with every scalar a string."""
    return document if isinstance(document, str) else json.dumps(document)


def stack(tmp_path, *files, env=None, project=None, max_bytes=compose.DEFAULT_MAX_BYTES, directory="docker"):
    """Write compose files under tmp_path/proj/<directory> and collect them as the stack "app"."""
    names = []
    for index, document in enumerate(files):
        name = "%s/compose%d.yml" % (directory, index)
        write(tmp_path / "proj" / name, as_yaml(document))
        names.append(name)
    if env is not None:
        write(tmp_path / "proj" / ".env", env)
    item = {"name": "app", "files": names, "env_file": ".env" if env is not None else None, "project": project}
    result = collect_stacks([item], str(tmp_path / "proj"), KEY, max_bytes=max_bytes)
    assert list(result) == ["app"]
    assert set(result["app"]) == STACK_FIELDS
    return result["app"]


def service(tmp_path, *files, env=None, name="web"):
    result = stack(tmp_path, *files, env=env)
    assert result["status"] == "ok", result["reason"]
    assert set(result["services"][name]) == SERVICE_FIELDS
    return result["services"][name]


def web(attributes):
    return {"services": {"web": attributes}}


def displays(environment):
    return {key: record["display"] for key, record in environment.items()}


@pytest.fixture(params=["libyaml", "python"])
def parse(request):
    """Both event sources: hosts without libyaml use PyYAML's Python parser."""
    if request.param == "libyaml":
        pytest.importorskip("yaml.cyaml")
    return compose.make_loader(pure=request.param == "python")


# ------------------------------------------------------------ merge rules

BASE = "/PROJ/docker"  # replaced by the stack's real directory

MERGE_RULES = [
    # Mapping rule: a scalar defined again in a later file replaces the earlier one.
    ("scalar replaced", {"image": "app:1"}, {"image": "app:2"}, "image", lambda v: v["ref"] == "app:2"),
    ("restart replaced", {"restart": "always"}, {"restart": "no"}, "restart", "no"),
    # Exception "shell commands": command is overridden, not appended.
    ("command replaced", {"command": ["echo", "foo"]}, {"command": ["echo", "bar"]}, "command", ["echo", "bar"]),
    ("entrypoint replaced", {"entrypoint": ["sh", "-c"]}, {"entrypoint": "/init"}, "entrypoint", "/init"),
    # Exception "shell commands": healthcheck.test is overridden; the rest of healthcheck merges as a mapping.
    (
        "healthcheck.test replaced",
        {"healthcheck": {"test": ["CMD", "a"], "interval": "10s"}},
        {"healthcheck": {"test": ["CMD", "b"], "retries": "3"}},
        "healthcheck",
        {
            "test": ["CMD", "b"],
            "interval": "10s",
            "timeout": None,
            "retries": "3",
            "start_period": None,
            "disable": None,
        },
    ),
    # environment is a mapping (list form converted): entries are added or replaced by key.
    (
        "environment merged by key",
        {"environment": ["A=1", "B=2"]},
        {"environment": {"B": "3", "C": "4"}},
        "environment",
        lambda v: displays(v) == {"A": "1", "B": "3", "C": "4"},
    ),
    # labels: mapping merge, list form converted ("key" alone has the value "").
    ("labels merged by key", {"labels": ["a=1", "b"]}, {"labels": {"a": "2"}}, "labels", {"a": "2", "b": ""}),
    # Unique resources: ports are appended, an identical port is not repeated.
    (
        "ports appended without duplicates",
        {"ports": ["8080:80"]},
        {"ports": ["8080:80", "0.0.0.0:8080:80", {"target": "443", "published": "443"}]},
        "ports",
        ["443:443/tcp", "8080:80/tcp"],
    ),
    # Unique resources: volumes are unique by target; the later file's mount replaces the earlier one.
    (
        "volumes merged by target",
        {"volumes": ["./a:/data", "logs:/logs"]},
        {"volumes": [{"type": "bind", "source": "./b", "target": "/data", "read_only": "true"}]},
        "volumes",
        [BASE + "/b:/data:ro", "logs:/logs"],
    ),
    # depends_on: list form becomes a mapping; mappings merge.
    (
        "depends_on merged",
        {"depends_on": ["db"]},
        {"depends_on": {"cache": {"condition": "service_healthy"}}},
        "depends_on",
        ["cache", "db"],
    ),
    (
        "networks merged",
        {"networks": ["front"]},
        {"networks": {"back": {"aliases": ["x"]}}},
        "networks",
        ["back", "front"],
    ),
    # Sequence rule: appended (then sorted and de-duplicated in the facts).
    (
        "cap_add appended",
        {"cap_add": ["NET_ADMIN"]},
        {"cap_add": ["SYS_TIME", "NET_ADMIN"]},
        "cap_add",
        ["NET_ADMIN", "SYS_TIME"],
    ),
    ("profiles appended", {"profiles": ["debug"]}, {"profiles": ["ops"]}, "profiles", ["debug", "ops"]),
    ("env_file appended", {"env_file": "a.env"}, {"env_file": ["b.env", "a.env"]}, "env_file", ["a.env", "b.env"]),
    # Mapping rule, recursively: deploy.resources.limits.memory replaced, cpus kept.
    (
        "deploy merged recursively",
        {"deploy": {"resources": {"limits": {"memory": "512M", "cpus": "0.5"}}}},
        {"deploy": {"resources": {"limits": {"memory": "1G"}}}},
        "limits",
        {"memory": "1G", "cpus": "0.5"},
    ),
    # logging: same driver, options merge as a mapping.
    (
        "logging options merged",
        {"logging": {"driver": "json-file", "options": {"max-size": "10m"}}},
        {"logging": {"options": {"max-file": "3"}}},
        "logging",
        {"driver": "json-file", "options": {"max-file": "3", "max-size": "10m"}},
    ),
    # logging: another driver, the earlier driver's options are dropped (they belong to that driver).
    (
        "logging driver changed",
        {"logging": {"driver": "json-file", "options": {"max-size": "10m"}}},
        {"logging": {"driver": "syslog"}},
        "logging",
        {"driver": "syslog", "options": {}},
    ),
    # Mapping rule: attributes only in the base file are kept.
    ("attribute kept from base", {"user": "1000"}, {"image": "x"}, "user", "1000"),
]


@pytest.mark.parametrize(
    ("base", "override", "attribute", "expected"),
    [row[1:] for row in MERGE_RULES],
    ids=[row[0] for row in MERGE_RULES],
)
def test_merge_rules(tmp_path, base, override, attribute, expected):
    result = service(tmp_path, web(base), web(override))
    value = result[attribute]
    if callable(expected):
        assert expected(value), value
    else:
        # bind sources inside the project directory are written relative to it (<project>/…)
        real_base = "<project>/docker"
        if isinstance(expected, list):
            expected = [item.replace(BASE, real_base) for item in expected]
        assert value == expected


INTERNAL_MERGE_RULES = [
    # extra_hosts: mapping merge, list form "host:ip" / "host=ip" converted.
    (
        "extra_hosts",
        {"extra_hosts": ["db:10.0.0.1", "old=10.0.0.9"]},
        {"extra_hosts": {"cache": "10.0.0.2", "old": "10.0.0.3"}},
        {"db": "10.0.0.1", "old": "10.0.0.3", "cache": "10.0.0.2"},
    ),
    # build.args: mapping merge, list form converted; the rest of build merges as a mapping.
    (
        "build",
        {"build": {"context": ".", "args": ["A=1", "B=1"]}},
        {"build": {"args": {"B": "2"}, "target": "prod"}},
        {"context": ".", "args": {"A": "1", "B": "2"}, "target": "prod"},
    ),
    # build written as a string is the context.
    (
        "build string",
        {"build": "./app"},
        {"build": {"dockerfile": "Dockerfile.prod"}},
        {"context": "./app", "dockerfile": "Dockerfile.prod"},
    ),
    # Sequence rule, the specification's own example: dns values are appended.
    ("dns", {"dns": "1.1.1.1"}, {"dns": ["8.8.8.8"]}, ["1.1.1.1", "8.8.8.8"]),
    ("expose", {"expose": ["80"]}, {"expose": ["80", "443"]}, ["80", "443"]),
    ("cap_drop", {"cap_drop": ["ALL"]}, {"cap_drop": ["NET_RAW"]}, ["ALL", "NET_RAW"]),
]


@pytest.mark.parametrize(
    ("base", "override", "expected"),
    [row[1:] for row in INTERNAL_MERGE_RULES],
    ids=[row[0] for row in INTERNAL_MERGE_RULES],
)
def test_merge_rules_of_attributes_not_in_the_facts(base, override, expected):
    merged = merge_documents([web(base), web(override)])
    (attribute,) = set(base) | set(override)
    assert merged["services"]["web"][attribute] == expected


def test_services_merge_per_service_and_later_files_add_services(tmp_path):
    result = stack(
        tmp_path,
        {"name": "first", "services": {"web": {"image": "web:1", "user": "app"}, "db": {"image": "pg:15"}}},
        {"name": "second", "services": {"web": {"image": "web:2"}, "worker": {"image": "w:1"}}},
    )
    assert result["status"] == "ok"
    assert sorted(result["services"]) == ["db", "web", "worker"]
    assert result["services"]["web"]["image"]["ref"] == "web:2"
    assert result["services"]["web"]["user"] == "app"
    assert result["services"]["db"]["image"]["ref"] == "pg:15"
    # Top-level scalars follow the mapping rule too: the later name wins.
    assert result["project"] == "second"


def test_reset_and_override_tags(tmp_path):
    # Compose's !reset removes what earlier files set; !override replaces instead of merging.
    base = (
        "services:\n  web:\n    image: app:1\n    ports: ['8080:80']\n"
        "    environment: {A: '1', B: '2'}\n    user: root\n"
    )
    override = "services:\n  web:\n    ports: !reset []\n    environment: !override {C: '3'}\n    user: !reset null\n"
    result = service(tmp_path, base, override)
    assert result["ports"] == []
    assert displays(result["environment"]) == {"C": "3"}
    assert result["user"] is None


def test_merge_of_three_files_in_order(tmp_path):
    result = service(tmp_path, web({"image": "a:1"}), web({"image": "a:2"}), web({"image": "a:3"}))
    assert result["image"]["tag"] == "3"


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
    with pytest.raises(compose._Required) as caught:
        interpolate(template, VARIABLES)
    assert (caught.value.name, caught.value.empty) == (name, empty)


@pytest.mark.parametrize(
    "template", ["${", "${SET", "${}", "${1X}", "${SET:=x}", "${SET/a/b}", "${ SET }", "${A:-${B}"]
)
def test_invalid_interpolation(template):
    with pytest.raises(compose._BadTemplate):
        interpolate(template, VARIABLES)


def test_interpolation_nesting_is_capped():
    template = "${A:-" * (compose.MAX_TEMPLATE_NESTING + 2) + "x" + "}" * (compose.MAX_TEMPLATE_NESTING + 2)
    with pytest.raises(compose._BadTemplate):
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


# ------------------------------------------------------------ YAML: scalars as written, safety

SCALARS = [
    ("NO", "NO"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("yes", "yes"),
    ("true", "true"),
    ("False", "False"),
    ("0755", "0755"),
    ("1.10", "1.10"),
    ("1e3", "1e3"),
    ("0x1F", "0x1F"),
    ("12:30", "12:30"),
    ("2001-01-01", "2001-01-01"),
    ("!!int 12", "12"),
    ("'0755'", "0755"),
    ("'null'", "null"),
    ("''", ""),
    ("'~'", "~"),
    # Nulls: an empty plain value, ~ and null (any case Compose's YAML 1.2 core schema allows).
    ("", None),
    ("~", None),
    ("null", None),
    ("Null", None),
    ("NULL", None),
]


@pytest.mark.parametrize(("written", "expected"), SCALARS)
def test_scalars_are_kept_as_written(parse, written, expected):
    assert parse("v: %s\n" % written) == {"v": expected}


def test_scalars_as_written_reach_the_facts(tmp_path):
    result = service(
        tmp_path,
        "services:\n  web:\n    privileged: on\n    read_only: NO\n    user: 0755\n"
        "    image: app:1.10\n    environment:\n      DEBUG: off\n      RATIO: 1.10\n",
    )
    assert (result["privileged"], result["read_only"], result["user"]) == ("on", "NO", "0755")
    assert result["image"]["tag"] == "1.10"
    assert displays(result["environment"]) == {"DEBUG": "off", "RATIO": "1.10"}


def test_python_tags_build_nothing(parse, tmp_path):
    marker = tmp_path / "ran"
    document = parse("v: !!python/object/apply:os.system ['touch %s']\nw: !!python/name:os.system\n" % marker)
    # The tag is ignored: a sequence stays a list of strings, "!!python/name:os.system" tags an empty value.
    assert document == {"v": ["touch %s" % marker], "w": ""}
    assert not marker.exists()


def test_merge_keys(parse):
    document = parse(
        "x-a: &a {one: '1', two: '2'}\nx-b: &b {two: b, three: b}\nv:\n  <<: [*a, *b]\n  three: own\nw:\n  <<: *b\n"
    )
    # Earlier merged mappings win over later ones; the mapping's own keys win over all.
    assert document["v"] == {"one": "1", "two": "2", "three": "own"}
    assert document["w"] == {"two": "b", "three": "b"}


def test_environment_key_without_value_is_none(tmp_path):
    result = service(tmp_path, "services:\n  web:\n    environment:\n      - BARE\n      - SET=1\n      - EMPTY=\n")
    env = result["environment"]
    assert (env["BARE"]["display"], env["BARE"]["empty"]) == (None, True)
    assert env["SET"]["display"] == "1"
    assert (env["EMPTY"]["display"], env["EMPTY"]["empty"]) == ("", True)


def billion_laughs(levels=9, width=9):
    lines = ["a0: &a0 [%s]" % ", ".join(['"lol"'] * width)]
    for level in range(1, levels):
        lines.append("a%d: &a%d [%s]" % (level, level, ", ".join(["*a%d" % (level - 1)] * width)))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (billion_laughs(), "YAML nodes"),
        ("x: &x " + "y" * 400000 + "\nv: [" + ", ".join(["*x"] * 30) + "]\n", "characters"),
        ("x: &x v\nv: [" + ", ".join(["*x"] * (compose.MAX_ALIASES + 1)) + "]\n", "aliases"),
        ("v: " + "[" * 60 + "]" * 60 + "\n", "deeper"),
        ("".join("  " * level + "k:\n" for level in range(60)), "deeper"),
        # An alias that stands for a deep subtree counts that subtree's depth.
        ("x: &x " + "[" * 30 + "]" * 30 + "\nv: " + "[" * 30 + "*x" + "]" * 30 + "\n", "deeper"),
        ("a: &a [*a]\n", "recursive"),
    ],
    ids=[
        "billion-laughs",
        "long-scalar-aliased",
        "too-many-aliases",
        "deep-flow",
        "deep-block",
        "deep-alias",
        "recursive",
    ],
)
def test_unsafe_documents_are_refused_quickly(parse, document, fragment):
    started = time.monotonic()
    with pytest.raises(compose._Unsafe) as caught:
        parse(document)
    assert time.monotonic() - started < 1.0
    assert fragment in str(caught.value)


def test_too_many_nodes_is_unsafe(parse, monkeypatch):
    # The cap is lowered to keep the test fast; the check is the same at 100,000.
    monkeypatch.setattr(compose, "MAX_NODES", 1000)
    parse("[" + "a," * 998 + "]")
    with pytest.raises(compose._Unsafe) as caught:
        parse("[" + "a," * 1000 + "]")
    assert "more than 1000 YAML nodes" in str(caught.value)


def test_hundred_aliases_are_fine(parse):
    document = parse("x: &x v\nv: [" + ", ".join(["*x"] * compose.MAX_ALIASES) + "]\n")
    assert len(document["v"]) == compose.MAX_ALIASES


def test_runaway_nesting_is_refused_quickly(parse):
    # A megabyte of "[": libyaml gives up on its own (malformed), the Python parser meets
    # our cap (unsafe).  PyYAML's Python scanner looks up to 1024 characters ahead for a
    # possible key at every level, about 0.5 s here whatever the length of the file.
    started = time.monotonic()
    with pytest.raises((compose._Unsafe, compose._Malformed)):
        parse("[" * 1000000)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("document", "line"),
    [
        ("services:\n  web:\n    image: [oops\n    x: 1\n", 4),
        ("services:\n  web:\n    image: 'unterminated\n", 4),
        ("a: 1\nb: 2\na: 3\n", 3),
        ("a: *nowhere\n", 1),
        ("a: 1\n---\nb: 2\n", 2),
        ("a: &x 1\nb: &x 2\n", 2),
        ("a:\n\tb: 1\n", 2),
        ("é: 1\nb: \x07\n", 2),
        ("? [a]\n: 1\n", 1),
    ],
    ids=[
        "flow",
        "quote",
        "duplicate-key",
        "undefined-alias",
        "two-documents",
        "duplicate-anchor",
        "tab",
        "control",
        "list-key",
    ],
)
def test_malformed_yaml_reports_the_line(parse, document, line):
    with pytest.raises(compose._Malformed) as caught:
        parse(document)
    assert "(line %d)" % line in str(caught.value)


# ------------------------------------------------------------ file statuses


def run_with_timeout(function, seconds=5):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("value", function()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    return outcome["value"]


def collect_paths(tmp_path, files, env_file=None, max_bytes=compose.DEFAULT_MAX_BYTES):
    item = {"name": "s", "files": [str(path) for path in files], "env_file": env_file, "project": None}
    return collect_stacks([item], str(tmp_path), KEY, max_bytes=max_bytes)["s"]


def test_missing_file(tmp_path):
    good = write(tmp_path / "a.yml", as_yaml(web({"image": "x"})))
    result = collect_paths(tmp_path, [good, tmp_path / "b.yml"])
    assert result["status"] == "failed"
    assert [record["status"] for record in result["files"]] == ["ok", "missing"]
    assert result["files"][1] == {
        "path": str(tmp_path / "b.yml"),
        "status": "missing",
        "reason": "The file does not exist.",
    }
    assert str(tmp_path / "b.yml") in result["reason"]
    assert result["services"] == {}


def test_fifo_returns_promptly(tmp_path):
    fifo = tmp_path / "compose.yml"
    os.mkfifo(fifo)
    result = run_with_timeout(lambda: collect_paths(tmp_path, [fifo]))
    assert result["files"][0]["status"] == "not_regular"
    assert "FIFO" in result["files"][0]["reason"]
    assert result["status"] == "failed"


def test_too_large(tmp_path):
    path = write(tmp_path / "compose.yml", "services: {}\n" + "#" * 200 + "\n")
    result = collect_paths(tmp_path, [path], max_bytes=100)
    assert result["files"][0]["status"] == "too_large"
    assert result["status"] == "failed"


@pytest.mark.parametrize(
    "data", [b"\x00\x01\x02services", b"services:\n  web: {image: \xff\xfe}\n"], ids=["binary", "latin1"]
)
def test_undecodable(tmp_path, data):
    result = collect_paths(tmp_path, [write(tmp_path / "compose.yml", data)])
    assert result["files"][0]["status"] == "undecodable"


def test_malformed_file_reason_has_the_line_never_the_content(tmp_path):
    secret = canary()
    path = write(tmp_path / "compose.yml", "services:\n  web:\n    image: [%s\n    x: 1\n" % secret)
    result = collect_paths(tmp_path, [path])
    assert result["files"][0]["status"] == "malformed"
    assert result["files"][0]["reason"] == "The file is not valid YAML (line 4)."
    assert secret not in json.dumps(result)


def test_bomb_file_is_unsafe_within_a_second(tmp_path):
    path = write(tmp_path / "compose.yml", billion_laughs())
    started = time.monotonic()
    result = collect_paths(tmp_path, [path])
    assert time.monotonic() - started < 1.0
    assert result["files"][0]["status"] == "unsafe"
    assert "bomb" in result["files"][0]["reason"]
    assert result["status"] == "failed"


def test_deeply_nested_file_is_unsafe(tmp_path):
    path = write(tmp_path / "compose.yml", "services: " + "{a: " * 80 + "x" + "}" * 80 + "\n")
    result = collect_paths(tmp_path, [path])
    assert result["files"][0]["status"] == "unsafe"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("", "The file is empty."),
        ("# only a comment\n", "The file is empty."),
        ("- a\n- b\n", "The top level of the file is not a mapping."),
        ("services: [web]\n", "The services entry is not a mapping."),
        ("services:\n  web: [a]\n", "The service web is not a mapping."),
    ],
)
def test_compose_structure_errors(tmp_path, document, reason):
    result = collect_paths(tmp_path, [write(tmp_path / "compose.yml", document)])
    assert result["files"][0] == {"path": str(tmp_path / "compose.yml"), "status": "malformed", "reason": reason}
    assert result["status"] == "failed"


def test_env_file_problems_fail_the_stack(tmp_path):
    path = write(tmp_path / "compose.yml", as_yaml(web({"image": "x:${TAG:-1}"})))
    result = collect_paths(tmp_path, [path], env_file="missing.env")
    assert result["env_file"] == {
        "path": str(tmp_path / "missing.env"),
        "status": "missing",
        "reason": "The file does not exist.",
    }
    assert result["status"] == "failed"
    assert "env file" in result["reason"]
    assert result["files"][0]["status"] == "ok"


def test_no_files(tmp_path):
    result = collect_paths(tmp_path, [])
    assert result["status"] == "failed"
    assert result["files"] == []


def test_pyyaml_missing(tmp_path, monkeypatch):
    # A host without python3-yaml: the import fails, every stack says why.
    monkeypatch.setitem(sys.modules, "yaml", None)
    path = write(tmp_path / "compose.yml", as_yaml(web({"image": "x"})))
    item = {"name": "s", "files": [str(path)], "env_file": None, "project": None}
    result = collect_stacks([item, dict(item, name="t", files=[str(tmp_path / "gone.yml")])], str(tmp_path), KEY)
    for name in ("s", "t"):
        assert result[name]["status"] == "failed"
        assert result[name]["reason"] == "PyYAML (python3-yaml) is needed on the host to read compose files"
        assert result[name]["services"] == {}
    assert result["s"]["files"][0]["status"] == "ok"
    assert result["t"]["files"][0]["status"] == "missing"


def test_ok_stack_shape(tmp_path):
    result = stack(tmp_path, web({"image": "x"}), env="A=1\n")
    assert result["status"] == "ok"
    assert result["reason"] is None
    assert result["files"] == [
        {"path": str(tmp_path / "proj" / "docker" / "compose0.yml"), "status": "ok", "reason": None}
    ]
    assert result["env_file"] == {"path": str(tmp_path / "proj" / ".env"), "status": "ok", "reason": None}
    assert result["services"]["web"] == {
        "image": {"ref": "x", "repository": "x", "tag": None, "digest": None},
        "build": None,
        "command": None,
        "entrypoint": None,
        "ports": [],
        "environment": {},
        "env_file": [],
        "volumes": [],
        "networks": [],
        "depends_on": [],
        "healthcheck": None,
        "restart": None,
        "limits": {"memory": None, "cpus": None},
        "reservations": {"memory": None, "cpus": None},
        "logging": None,
        "labels": {},
        "user": None,
        "privileged": None,
        "read_only": None,
        "cap_add": [],
        "profiles": [],
    }


# ------------------------------------------------------------ normalisation tables

PORTS = [
    ("80", "80/tcp"),
    ("8080:80", "8080:80/tcp"),
    ("80:80", "80:80/tcp"),
    ("127.0.0.1:8080:80/udp", "127.0.0.1:8080:80/udp"),
    ("127.0.0.1:5432:5432", "127.0.0.1:5432:5432/tcp"),
    ("127.0.0.1::80", "127.0.0.1::80/tcp"),
    # Every address is written without one, as the engine side writes it.
    ("0.0.0.0:8080:80", "8080:80/tcp"),
    ("[::]:8080:80", "8080:80/tcp"),
    ("[::1]:6000:6000", "[::1]:6000:6000/tcp"),
    ("::1:6000:6000", "[::1]:6000:6000/tcp"),
    ("53/UDP", "53/udp"),
    # Ranges are kept as written.
    ("8000-8010:8000-8010", "8000-8010:8000-8010/tcp"),
    ("9090-9091:8080-8081/tcp", "9090-9091:8080-8081/tcp"),
    ({"target": "80", "published": "8080"}, "8080:80/tcp"),
    ({"target": "80", "published": "8080", "host_ip": "127.0.0.1", "protocol": "udp"}, "127.0.0.1:8080:80/udp"),
    ({"target": "80"}, "80/tcp"),
    ({"target": "80", "published": "8000-8001", "mode": "host"}, "8000-8001:80/tcp"),
    ({"target": "80", "host_ip": "0.0.0.0", "published": "80"}, "80:80/tcp"),
    ({"published": "80"}, None),
    ("", None),
    ("[::1:80", None),
]


@pytest.mark.parametrize(("written", "expected"), PORTS)
def test_port_canonicalisation(written, expected):
    assert canonical_port(written) == expected


VOLUMES = [
    ("./site:/www:ro", "/srv/app/docker/site:/www:ro"),
    ("./site:/www:rw", "/srv/app/docker/site:/www"),
    ("../data:/d", "/srv/app/data:/d"),
    (".:/code", "/srv/app/docker:/code"),
    ("data:/var/lib/x", "data:/var/lib/x"),
    ("data:/var/lib/x:ro,nocopy", "data:/var/lib/x:ro"),
    ("/tmp", ":/tmp"),
    ("/data:ro", ":/data:ro"),
    ("/host/a/../b//c:/b", "/host/b/c:/b"),
    ("/etc/ssl:/ssl:ro,z", "/etc/ssl:/ssl:ro"),
    ({"type": "bind", "source": "./conf", "target": "/conf", "read_only": "true"}, "/srv/app/docker/conf:/conf:ro"),
    ({"type": "bind", "source": "/abs", "target": "/x", "read_only": "false"}, "/abs:/x"),
    ({"type": "bind", "source": "/abs", "target": "/x", "read_only": "yes"}, "/abs:/x:ro"),
    ({"type": "volume", "source": "db", "target": "/var/lib/postgresql/data"}, "db:/var/lib/postgresql/data"),
    ({"type": "volume", "target": "/anon"}, ":/anon"),
    ({"type": "tmpfs", "target": "/run"}, ":/run"),
    ({"source": "db", "target": "/d"}, "db:/d"),
]


@pytest.mark.parametrize(("written", "expected"), VOLUMES)
def test_volume_canonicalisation(written, expected):
    assert canonical_volume(written, "/srv/app/docker") == expected


def test_volume_home_expansion(monkeypatch):
    monkeypatch.setenv("HOME", "/home/deploy")
    assert canonical_volume("~/certs:/certs:ro", "/srv/app") == "/home/deploy/certs:/certs:ro"


def test_relative_binds_resolve_against_the_first_files_directory(tmp_path):
    # Compose: paths in every file are relative to the first file's directory.
    write(tmp_path / "proj" / "base" / "compose.yml", as_yaml(web({"image": "x", "volumes": ["./a:/a"]})))
    write(tmp_path / "proj" / "over" / "compose.yml", as_yaml(web({"volumes": ["./b:/b"]})))
    item = {"name": "s", "files": ["base/compose.yml", "over/compose.yml"], "env_file": None, "project": None}
    result = collect_stacks([item], str(tmp_path / "proj"), KEY)["s"]
    assert result["services"]["web"]["volumes"] == ["<project>/base/a:/a", "<project>/base/b:/b"]


IMAGES = [
    ("nginx", "nginx", None, None),
    ("nginx:1.25", "nginx", "1.25", None),
    ("nginx:latest", "nginx", "latest", None),
    ("library/nginx:1.25-alpine", "library/nginx", "1.25-alpine", None),
    ("localhost:5000/app", "localhost:5000/app", None, None),
    ("localhost:5000/team/app:2", "localhost:5000/team/app", "2", None),
    ("ghcr.io/o/app@sha256:abcd", "ghcr.io/o/app", None, "sha256:abcd"),
    ("ghcr.io/o/app:1.2@sha256:abcd", "ghcr.io/o/app", "1.2", "sha256:abcd"),
    ("registry.example.com:443/team/app:v1.10", "registry.example.com:443/team/app", "v1.10", None),
]


@pytest.mark.parametrize(("ref", "repository", "tag", "digest"), IMAGES)
def test_image_parsing(ref, repository, tag, digest):
    assert parse_image(ref) == {"ref": ref, "repository": repository, "tag": tag, "digest": digest}


LIMITS = [
    (
        "deploy.resources",
        {
            "deploy": {
                "resources": {
                    "limits": {"memory": "512M", "cpus": "0.50"},
                    "reservations": {"memory": "256M", "cpus": "0.25"},
                }
            }
        },
        {"memory": "512M", "cpus": "0.50"},
        {"memory": "256M", "cpus": "0.25"},
    ),
    (
        "short keys",
        {"mem_limit": "1g", "cpus": "1.5", "mem_reservation": "128m"},
        {"memory": "1g", "cpus": "1.5"},
        {"memory": "128m", "cpus": None},
    ),
    (
        "deploy wins over short keys",
        {"mem_limit": "1g", "cpus": "2", "deploy": {"resources": {"limits": {"memory": "2g"}}}},
        {"memory": "2g", "cpus": "2"},
        {"memory": None, "cpus": None},
    ),
    ("none", {}, {"memory": None, "cpus": None}, {"memory": None, "cpus": None}),
]


@pytest.mark.parametrize(
    ("attributes", "limits", "reservations"), [row[1:] for row in LIMITS], ids=[row[0] for row in LIMITS]
)
def test_limits_and_reservations(tmp_path, attributes, limits, reservations):
    result = service(tmp_path, web(dict(attributes, image="x")))
    assert (result["limits"], result["reservations"]) == (limits, reservations)


def test_limits_as_written_in_yaml(tmp_path):
    result = service(tmp_path, "services:\n  web:\n    mem_limit: 512M\n    cpus: 0.5\n")
    assert result["limits"] == {"memory": "512M", "cpus": "0.5"}


def test_other_attributes(tmp_path):
    result = service(
        tmp_path,
        web(
            {
                "build": {"context": "./app", "dockerfile": "Dockerfile", "target": "prod", "args": ["A=1"]},
                "command": "gunicorn app:wsgi -w 4",
                "entrypoint": ["/entry.sh"],
                "env_file": ["../config/production.env", {"path": "extra.env", "required": "false"}],
                "healthcheck": {
                    "test": "curl -f http://localhost/health",
                    "interval": "30s",
                    "timeout": "5s",
                    "retries": "3",
                    "start_period": "10s",
                },
                "restart": "unless-stopped",
                "logging": {"driver": "json-file", "options": {"max-size": "10m"}},
                "labels": {"com.example.tier": "web"},
                "cap_add": ["SYS_TIME", "NET_ADMIN"],
                "profiles": ["prod"],
                "networks": {"front": None, "back": {"aliases": ["api"]}},
                "depends_on": {"db": {"condition": "service_healthy"}},
            }
        ),
    )
    assert result["build"] == {"context": "./app", "dockerfile": "Dockerfile", "target": "prod"}
    assert result["command"] == "gunicorn app:wsgi -w 4"
    assert result["entrypoint"] == ["/entry.sh"]
    assert result["env_file"] == ["../config/production.env", "extra.env"]
    assert result["healthcheck"] == {
        "test": "curl -f http://localhost/health",
        "interval": "30s",
        "timeout": "5s",
        "retries": "3",
        "start_period": "10s",
        "disable": None,
    }
    assert result["restart"] == "unless-stopped"
    assert result["logging"] == {"driver": "json-file", "options": {"max-size": "10m"}}
    assert result["labels"] == {"com.example.tier": "web"}
    assert result["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    assert result["profiles"] == ["prod"]
    assert result["networks"] == ["back", "front"]
    assert result["depends_on"] == ["db"]


def test_build_string_is_the_context(tmp_path):
    result = service(tmp_path, web({"build": "."}))
    assert result["build"] == {"context": ".", "dockerfile": None, "target": None}
    assert result["image"] is None


# ------------------------------------------------------------ project name

PROJECT_NAMES = [
    ("explicit wins", "Prod-Stack", {"name": "ignored"}, "docker", "prod-stack"),
    ("top-level name", None, {"name": "My App_2"}, "docker", "myapp_2"),
    ("directory of the first file", None, {}, "docker", "docker"),
    ("directory normalised", None, {}, "My.Project", "myproject"),
    ("leading separators dropped", "__x-1", {}, "docker", "x-1"),
    ("empty after normalising falls through", "!!!", {"name": "***"}, "Deploy", "deploy"),
    ("name interpolated", None, {"name": "${PROJECT}"}, "docker", "ai_assistant"),
]


@pytest.mark.parametrize(
    ("explicit", "top", "directory", "expected"),
    [row[1:] for row in PROJECT_NAMES],
    ids=[row[0] for row in PROJECT_NAMES],
)
def test_project_name(tmp_path, explicit, top, directory, expected):
    document = dict(top, services={"web": {"image": "x"}})
    result = stack(tmp_path, document, env="PROJECT=AI_Assistant\n", project=explicit, directory=directory)
    assert result["status"] == "ok"
    assert result["project"] == expected


def test_project_name_of_a_failed_stack(tmp_path):
    result = collect_paths(tmp_path, [tmp_path / "Web App" / "missing.yml"])
    assert result["project"] == "webapp"


@pytest.mark.parametrize(
    ("name", "expected"), [("Foo", "foo"), ("a.b c", "abc"), ("-_x", "x"), ("", None), (None, None)]
)
def test_normalize_project_name(name, expected):
    assert normalize_project_name(name) == expected


# ------------------------------------------------------------ secrets


def test_no_secret_leaks(tmp_path):
    in_compose = canary("Cmp")
    in_env_file = canary("Env")
    short = "pw12"  # too short to be masked by echo; only substitution tracking hides it
    error_hint = canary("Err")
    compose_file = {
        "name": "leaky",
        "x-anchor": {"token": in_compose},
        "services": {
            "web": {
                "image": "registry.example.com/app:1",
                "environment": {
                    "API_TOKEN": in_compose,
                    "DB_PASSWORD": "${DB_PASSWORD}",
                    "DATABASE_URL": "postgresql://app:${DB_PASSWORD}@db:5432/app",
                    "INNOCENT_NAME": "${DB_PASSWORD}",
                    "SHORT": "${SHORT_SECRET}",
                    "HINT": "${DB_PASSWORD:?%s}" % error_hint,
                },
                "command": [
                    "serve",
                    "--password",
                    "${DB_PASSWORD}",
                    "--token=%s" % in_compose,
                    "--short",
                    "$SHORT_SECRET",
                ],
                "entrypoint": "run --api-key %s --db postgresql://app:${DB_PASSWORD}@db/app" % in_compose,
                "healthcheck": {"test": ["CMD", "curl", "-H", "X-Token: ${DB_PASSWORD}", "http://localhost/"]},
                "labels": ["traefik.auth=${DB_PASSWORD}", "plain=${SHORT_SECRET}", "echo=%s" % in_compose],
                "logging": {"driver": "loki", "options": {"loki-url": "https://u:${DB_PASSWORD}@loki/push"}},
                "volumes": ["./${DB_PASSWORD}:/x"],
                "user": "${SHORT_SECRET}",
                "ports": ["${SHORT_SECRET}"],
            },
            "db": {"image": "postgres:15", "environment": ["POSTGRES_PASSWORD=${DB_PASSWORD}"]},
        },
    }
    result = stack(tmp_path, compose_file, env="DB_PASSWORD=%s\nSHORT_SECRET=%s\n" % (in_env_file, short))
    assert result["status"] == "ok", result["reason"]
    text = json.dumps(result)
    for secret in (in_compose, in_env_file, error_hint):
        assert secret not in text
    assert '"%s"' % short not in text and "=%s" % short not in text
    web_service = result["services"]["web"]
    env = web_service["environment"]
    # Secrets are fingerprinted from their real values, even under an innocent name.
    assert env["DB_PASSWORD"]["fp"] == fingerprint(KEY, in_env_file)
    assert env["INNOCENT_NAME"]["secret"] is True
    assert env["INNOCENT_NAME"]["display"] is None
    assert env["INNOCENT_NAME"]["fp"] == fingerprint(KEY, in_env_file)
    assert env["SHORT"]["secret"] is True
    assert env["DATABASE_URL"]["display"] == "postgresql://app:***@db:5432/app"
    assert web_service["command"][:3] == ["serve", "--password", "***"]
    assert web_service["user"] == "***"
    assert web_service["labels"]["traefik.auth"] == "<redacted:%s>" % fingerprint(KEY, in_env_file)
    assert result["services"]["db"]["environment"]["POSTGRES_PASSWORD"]["fp"] == fingerprint(KEY, in_env_file)


def test_ordinary_passwords_do_not_mask_other_fields(tmp_path):
    # A dev password "postgres" must not turn the image "postgres:15" into "***:15".
    result = stack(
        tmp_path,
        {"services": {"db": {"image": "postgres:15", "environment": {"POSTGRES_PASSWORD": "${DB_PASSWORD}"}}}},
        env="DB_PASSWORD=postgres\n",
    )
    assert result["services"]["db"]["image"]["repository"] == "postgres"
    assert result["services"]["db"]["environment"]["POSTGRES_PASSWORD"]["secret"] is True


def test_secret_change_still_shows_in_fingerprinted_labels(tmp_path):
    one = stack(tmp_path / "one", web({"labels": {"auth": "${TOKEN}"}}), env="TOKEN=first-value\n")
    two = stack(tmp_path / "two", web({"labels": {"auth": "${TOKEN}"}}), env="TOKEN=second-value\n")
    assert one["services"]["web"]["labels"]["auth"] != two["services"]["web"]["labels"]["auth"]


def test_token_shaped_keys_are_replaced(tmp_path):
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    result = service(tmp_path, web({"environment": [token]}))
    (key,) = result["environment"]
    assert key.startswith("<redacted:hmac-sha256:")
    assert token not in json.dumps(result)


def test_bind_sources_inside_the_project_are_shown_relative_to_it(tmp_path):
    """The same layout deployed under two project directories must not read as a volume drift."""
    results = []
    for name in ("dev", "prod"):
        project = tmp_path / name
        (project / "docker").mkdir(parents=True)
        (project / "docker" / "compose.yml").write_text(
            "services:\n  web:\n    image: x:1\n    volumes:\n      - ../site:/www:ro\n      - /srv/data:/data\n"
        )
        stacks = compose.collect_stacks([{"name": "app", "files": ["docker/compose.yml"]}], str(project), b"k" * 32)
        results.append(stacks["app"]["services"]["web"]["volumes"])
    assert results[0] == results[1] == ["/srv/data:/data", "<project>/site:/www:ro"]


def test_include_brings_in_the_services_of_another_project(tmp_path):
    # The included project: its own directory and .env, a relative bind source resolved from
    # there, its own extends, and a nested include.
    commons = tmp_path / "proj" / "commons"
    write(commons / ".env", "DB_TAG=15\nDB_PASSWORD=Zq8#vLp2!xR7@kW4\n")
    write(
        commons / "compose.yml",
        as_yaml(
            {
                "include": ["cache.yml"],
                "services": {
                    "base": {"image": "postgres:${DB_TAG}"},
                    "db": {
                        "extends": "base",
                        "volumes": ["./data:/var/lib/postgresql/data"],
                        "environment": {"POSTGRES_PASSWORD": "${DB_PASSWORD}"},
                    },
                },
            }
        ),
    )
    write(commons / "cache.yml", as_yaml({"services": {"cache": {"image": "redis:7"}}}))
    result = stack(
        tmp_path,
        {"include": ["../commons/compose.yml"], "services": {"web": {"image": "app:${TAG}"}}},
        env="TAG=3\n",
    )
    assert result["status"] == "ok", result["reason"]
    services = result["services"]
    assert set(services) == {"web", "base", "db", "cache"}
    assert services["web"]["image"]["ref"] == "app:3"
    assert services["db"]["image"]["ref"] == "postgres:15"  # the included project's own .env
    assert services["db"]["volumes"] == ["<project>/commons/data:/var/lib/postgresql/data"]
    assert services["db"]["environment"]["POSTGRES_PASSWORD"]["secret"] is True
    assert "Zq8#vLp2!xR7@kW4" not in json.dumps(result)
    assert services["cache"]["image"]["ref"] == "redis:7"
    assert [item["path"] for item in result["files"]] == [
        str(tmp_path / "proj" / "docker" / "compose0.yml"),
        str(commons / "compose.yml"),
        str(commons / "cache.yml"),
    ]


def test_include_long_syntax_with_project_directory_and_env_file(tmp_path):
    write(tmp_path / "proj" / "shared" / "vars.env", "TAG=9\n")
    write(tmp_path / "proj" / "shared" / "worker.yml", as_yaml(web({"image": "w:${TAG}", "volumes": ["./q:/q"]})))
    entry = {"path": "../shared/worker.yml", "project_directory": "..", "env_file": "../shared/vars.env"}
    result = stack(tmp_path, {"include": [entry], "services": {"api": {"image": "api:1"}}})
    assert result["status"] == "ok", result["reason"]
    assert result["services"]["web"]["image"]["ref"] == "w:9"
    assert result["services"]["web"]["volumes"] == ["<project>/q:/q"]  # from project_directory


@pytest.mark.parametrize(
    ("files", "document", "phrase"),
    [
        ({}, {"include": ["other.yml"]}, "other.yml, which is missing"),
        ({"other.yml": "services: [oops\n"}, {"include": ["other.yml"]}, "other.yml, which is malformed"),
        (
            {"other.yml": as_yaml({"include": ["compose0.yml"], "services": {"x": {"image": "x"}}})},
            {"include": ["other.yml"]},
            "a loop of include",
        ),
        (
            {"other.yml": as_yaml(web({"image": "other"}))},
            {"include": ["other.yml"], "services": {"web": {"image": "mine"}}},
            "also defined by the files it includes",
        ),
        ({}, {"include": [{"project_directory": "."}]}, "not a path or a mapping with a path"),
        ({}, {"include": "other.yml"}, "is not a list"),
        (
            {"other.yml": as_yaml(web({"image": "x"}))},
            {"include": [{"path": "other.yml", "env_file": "nowhere.env"}]},
            "nowhere.env, which is missing",
        ),
        (
            {"other.yml": as_yaml(web({"image": "x:${TAG:?}"}))},
            {"include": ["other.yml"]},
            "other.yml, in which required variable TAG is not set",
        ),
    ],
    ids=["missing", "malformed", "loop", "conflict", "no-path", "not-a-list", "missing-env-file", "required"],
)
def test_include_it_cannot_resolve_makes_the_declared_state_not_read(tmp_path, files, document, phrase):
    for name, text in files.items():
        write(tmp_path / "proj" / "docker" / name, text)
    result = stack(tmp_path, dict({"services": {"api": {"image": "api:1"}}}, **document))
    assert result["status"] == "failed"
    assert phrase in result["reason"] and "not compared" in result["reason"]
    assert result["services"] == {}


def test_extends_in_the_same_file_merges_the_service_over_its_base(tmp_path):
    base = {
        "image": "app:1",
        "user": "app",
        "ports": ["127.0.0.1:8080:80"],
        "environment": {"A": "1", "B": "2"},
        "healthcheck": {"test": ["CMD", "true"], "interval": "10s"},
    }
    result = stack(
        tmp_path,
        {
            "services": {
                "base": base,
                "web": {"extends": "base", "ports": ["127.0.0.1:9090:90"], "environment": {"B": "3"}},
                "api": {"extends": {"service": "web"}, "image": "api:2", "healthcheck": {"interval": "30s"}},
            }
        },
    )
    assert result["status"] == "ok", result["reason"]
    web, api = result["services"]["web"], result["services"]["api"]
    assert web["image"]["ref"] == "app:1" and web["user"] == "app"
    assert displays(web["environment"]) == {"A": "1", "B": "3"}
    assert web["ports"] == ["127.0.0.1:8080:80/tcp", "127.0.0.1:9090:90/tcp"]
    assert api["image"]["ref"] == "api:2"  # extends chains: api <- web <- base
    assert displays(api["environment"]) == {"A": "1", "B": "3"}
    assert api["healthcheck"]["interval"] == "30s" and api["healthcheck"]["test"] == ["CMD", "true"]
    assert result["services"]["base"]["image"]["ref"] == "app:1"  # the base is a service too


def test_extends_applies_within_its_file_before_the_files_merge(tmp_path):
    first = {"services": {"base": {"image": "app:1"}, "web": {"extends": "base"}}}
    second = {"services": {"base": {"image": "app:2"}, "web": {"user": "root"}}}
    web = service(tmp_path, first, second)
    assert web["image"]["ref"] == "app:1" and web["user"] == "root"


@pytest.mark.parametrize(
    ("services", "phrase"),
    [
        ({"web": {"extends": {"service": "base", "file": "common.yml"}}}, "common.yml (the file is missing)"),
        ({"web": {"extends": {"service": "base", "file": "../common.yml"}}}, "in another directory"),
        ({"web": {"extends": "nowhere"}}, "a service that is not in the same file"),
        ({"web": {"extends": "api"}, "api": {"extends": "web"}}, "itself through a loop of extends"),
        (
            {"db": {"image": "pg"}, "base": {"image": "x", "depends_on": ["db"]}, "web": {"extends": "base"}},
            "base, which depends on other services",
        ),
        (
            {"base": {"image": "x", "network_mode": "service:db"}, "db": {"image": "pg"}, "web": {"extends": "base"}},
            "base, which depends on other services",
        ),
    ],
    ids=[
        "missing-file",
        "file-in-another-directory",
        "missing-base",
        "loop",
        "base-with-depends_on",
        "base-in-service-network-mode",
    ],
)
def test_extends_it_does_not_resolve_makes_the_declared_state_not_read(tmp_path, services, phrase):
    result = stack(tmp_path, {"services": services})
    assert result["status"] == "failed"
    assert phrase in result["reason"] and "not compared" in result["reason"]
    assert result["services"] == {}


def test_extends_from_another_file_of_the_same_directory(tmp_path):
    # common.yml is read (with the stack's env file), its own extends followed, and only the
    # named service taken: its other services are not part of the stack.
    write(
        tmp_path / "proj" / "docker" / "common.yml",
        as_yaml(
            {
                "services": {
                    "core": {"image": "app:${TAG}", "environment": {"A": "1"}},
                    "webapp": {"extends": "core", "user": "app", "environment": {"B": "2"}},
                    "unrelated": {"image": "other:1"},
                }
            }
        ),
    )
    result = stack(
        tmp_path,
        {"services": {"web": {"extends": {"file": "common.yml", "service": "webapp"}, "environment": {"B": "3"}}}},
        env="TAG=7\n",
    )
    assert result["status"] == "ok", result["reason"]
    assert set(result["services"]) == {"web"}
    web = result["services"]["web"]
    assert web["image"]["ref"] == "app:7" and web["user"] == "app"
    assert displays(web["environment"]) == {"A": "1", "B": "3"}
    paths = [item["path"] for item in result["files"]]
    directory = tmp_path / "proj" / "docker"
    assert paths == [str(directory / "compose0.yml"), str(directory / "common.yml")]
    assert [item["status"] for item in result["files"]] == ["ok", "ok"]


def test_extends_loop_across_files_and_an_unusable_extended_file(tmp_path):
    write(
        tmp_path / "proj" / "docker" / "loop.yml",
        as_yaml({"services": {"base": {"extends": {"file": "compose0.yml", "service": "web"}}}}),
    )
    looped = stack(tmp_path, {"services": {"web": {"extends": {"file": "loop.yml", "service": "base"}}}})
    assert looped["status"] == "failed" and "itself through a loop of extends" in looped["reason"]
    write(tmp_path / "proj" / "docker" / "bad.yml", "services: [oops\n")
    bad = stack(tmp_path, {"services": {"web": {"extends": {"file": "bad.yml", "service": "base"}}}})
    assert bad["status"] == "failed" and "bad.yml (the file is malformed)" in bad["reason"]
    assert bad["files"][-1]["status"] == "malformed" and bad["services"] == {}


def test_extends_from_a_file_with_a_required_variable_unset(tmp_path):
    write(tmp_path / "proj" / "docker" / "common.yml", as_yaml({"services": {"base": {"image": "x:${TAG:?}"}}}))
    result = stack(tmp_path, {"services": {"web": {"extends": {"file": "common.yml", "service": "base"}}}})
    assert result["status"] == "failed" and result["services"] == {}
    assert "common.yml (the file is not usable: required variable TAG is not set)" in result["reason"]
    assert result["files"][-1]["reason"] == "required variable TAG is not set"
