"""Compose merge rules (override files, !reset and !override), extends and include.

The merge table checks Compose's documented behaviour: the Compose specification's "Merge"
chapter (docs.docker.com/reference/compose-file/merge/).
"""

import json

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose_merge import merge_documents
from tests.unit.plugins.module_utils.compose_helpers import (
    as_yaml,
    displays,
    service,
    stack,
    web,
    write,
)

# ------------------------------------------------------------ merge rules

BASE = "/PROJ/docker"  # replaced by the stack's real directory

MERGE_RULES = [
    # Mapping rule: a scalar defined again in a later file replaces the earlier one.
    ("scalar replaced", {"image": "app:1"}, {"image": "app:2"}, "image", lambda v: v["ref"] == "app:2"),
    ("restart replaced", {"restart": "always"}, {"restart": "no"}, "restart", "no"),
    # Exception "shell commands": command is overridden, not appended.
    ("command replaced", {"command": ["echo", "foo"]}, {"command": ["echo", "bar"]}, "command", ["echo", "bar"]),
    ("entrypoint replaced", {"entrypoint": ["sh", "-c"]}, {"entrypoint": "/init"}, "entrypoint", ["/init"]),
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
    # (Optional files, so that the missing files are not an error.)
    (
        "env_file appended",
        {"env_file": [{"path": "a.env", "required": "false"}]},
        {"env_file": [{"path": "b.env", "required": "false"}, {"path": "a.env", "required": "false"}]},
        "env_file",
        ["<project>/docker/a.env", "<project>/docker/b.env"],
    ),
    # Mapping rule, recursively: deploy.resources.limits.memory replaced, cpus kept.
    (
        "deploy merged recursively",
        {"deploy": {"resources": {"limits": {"memory": "512M", "cpus": "0.5"}}}},
        {"deploy": {"resources": {"limits": {"memory": "1G"}}}},
        "limits",
        {"memory": "1073741824", "cpus": "0.5"},
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


def test_reset_of_one_entry_and_of_a_whole_service(tmp_path):
    base = (
        "services:\n  web:\n    image: app:1\n    environment: {A: '1', B: '2'}\n    labels: [a=1, b=2]\n"
        "  debug:\n    image: busybox\n"
    )
    override = (
        "services:\n  web:\n    environment:\n      A: !reset null\n    labels:\n      a: !reset\n  debug: !reset\n"
    )
    result = stack(tmp_path, base, override)
    assert result["status"] == "ok", result["reason"]
    assert list(result["services"]) == ["web"]
    web_service = result["services"]["web"]
    assert displays(web_service["environment"]) == {"B": "2"}
    # Written as a list first, the labels keep the entry: compose-go (v2.40) finds no key to reset.
    assert web_service["labels"] == {"a": "1", "b": "2"}


def test_merge_of_three_files_in_order(tmp_path):
    result = service(tmp_path, web({"image": "a:1"}), web({"image": "a:2"}), web({"image": "a:3"}))
    assert result["image"]["tag"] == "3"


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
