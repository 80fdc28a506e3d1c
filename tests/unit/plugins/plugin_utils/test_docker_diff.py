"""The docker area's diff rules on hand-built facts (the shape of docs/docker-facts.md)."""

import copy

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.redact import length_class
from ansible_collections.envparity.audit.plugins.plugin_utils import docker_diff


def record(value, secret=False):
    return {
        "secret": secret,
        "display": None if secret else value,
        "fp": "fp:" + value,
        "secret_fp": "sfp:" + value if secret else None,
        "length_class": length_class(len(value)),
        "empty": not value,
    }


def service(**overrides):
    base = {
        "image": {"ref": "lab/web:1.0", "repository": "lab/web", "tag": "1.0", "digest": None},
        "build": None,
        "command": None,
        "entrypoint": None,
        "ports": ["127.0.0.1:8080:80/tcp"],
        "environment": {"LOG_LEVEL": record("info")},
        "env_file": [],
        "volumes": [],
        "networks": [],
        "depends_on": [],
        "healthcheck": {
            "test": ["CMD", "true"],
            "interval": "10s",
            "timeout": None,
            "retries": None,
            "start_period": None,
            "disable": None,
        },
        "restart": "unless-stopped",
        "limits": {"memory": "256M", "cpus": "0.5"},
        "reservations": {"memory": None, "cpus": None},
        "logging": None,
        "labels": {},
        "user": None,
        "privileged": None,
        "read_only": None,
        "cap_add": [],
        "cap_drop": [],
        "network_mode": None,
        "profiles": [],
        "replicas": None,
        "fingerprints": {"command": None, "entrypoint": None, "healthcheck": "fp:test", "labels": {}},
        "config_hash": "fp:hash",
    }
    base.update(overrides)
    return base


def container(svc, project="app", **overrides):
    base = {
        "name": "%s-%s-1" % (project, svc),
        "project": project,
        "service": svc,
        "image": "lab/web:1.0",
        "image_id": "sha256:1",
        "repo_digests": [],
        "state": "running",
        "health": "healthy",
        "restart_count": 0,
        "exit_code": 0,
        "oom_killed": False,
        "ports": ["127.0.0.1:8080:80/tcp"],
        "mounts": [],
        "environment": {"LOG_LEVEL": record("info")},
        "memory": 256 * 1024 * 1024,
        "nano_cpus": 500000000,
        "restart_policy": "unless-stopped",
        "privileged": False,
        "user": None,
        "networks": [],
        "healthcheck": True,
        "command": ["serve"],
        "entrypoint": None,
        "fingerprints": {"command": "fp:serve", "entrypoint": None},
        "health_config": {
            "test": ["CMD", "true"],
            "test_fp": "fp:test",
            "interval": "10s",
            "timeout": None,
            "start_period": None,
            "retries": "3",
        },
        "cap_add": [],
        "cap_drop": [],
        "network_mode": "app_default",
        "labels": {"maintainer": record("image")},
        "config_hash": None,
    }
    base.update(overrides)
    return base


def facts(services, containers=None, engine_status="ok"):
    return {
        "stacks": {
            "app": {
                "project": "app",
                "status": "ok",
                "reason": None,
                "files": [],
                "env_file": None,
                "services": services,
            }
        },
        "engine": {
            "status": engine_status,
            "reason": None if engine_status == "ok" else "refused",
            "version": "20.10",
            "api_version": "1.41",
            "containers": containers or [],
            "images": [],
        },
    }


def run(dev, prod):
    return docker_diff.diff(["dev", "prod"], {"dev": dev, "prod": prod}, {"baseline": "dev", "production": {"prod"}})


def checks(findings):
    return sorted((f["key"], f["kind"], f["check"]) for f in findings)


CLEAN = facts({"web": service()}, [container("web")])


def test_identical_and_healthy_gives_nothing():
    assert run(CLEAN, copy.deepcopy(CLEAN)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"image": {"ref": "lab/web:1.1", "repository": "lab/web", "tag": "1.1", "digest": None}},
            [("services.web.image", "changed", "docker.declared_changed")],
        ),
        ({"ports": ["80:80/tcp"]}, [("services.web.ports", "changed", "docker.declared_changed")]),
        ({"restart": "always"}, [("services.web.restart", "changed", "docker.declared_changed")]),
        (
            {"environment": {"LOG_LEVEL": record("debug")}},
            [("services.web.environment.LOG_LEVEL", "changed", "docker.env_changed")],
        ),
        (
            {"environment": {"LOG_LEVEL": record("info"), "API_KEY": record("s" * 30, secret=True)}},
            [("services.web.environment.API_KEY", "extra", "docker.secret_changed")],
        ),
        (
            {"privileged": "true"},
            [
                ("services.web.privileged", "extra", "docker.declared_changed"),
                ("services.web.privileged", "policy", "docker.privileged"),
            ],
        ),
    ],
)
def test_declared_attribute_differences(change, expected):
    prod_service = service(**change)
    # prod's container runs prod's declaration: only the declared difference shows.
    running = container(
        "web",
        image=prod_service["image"]["ref"],
        ports=prod_service["ports"],
        restart_policy=prod_service["restart"],
        environment=prod_service["environment"],
        privileged=prod_service["privileged"] == "true",
    )
    prod = facts({"web": prod_service}, [running])
    assert checks(run(CLEAN, prod)) == expected


def test_service_only_in_dev_and_only_in_prod():
    dev = facts({"web": service(), "mailhog": service()}, [container("web"), container("mailhog")])
    prod = facts({"web": service(), "cache": service()}, [container("web"), container("cache")])
    assert checks(run(dev, prod)) == [
        ("services.cache", "extra", "docker.service_extra"),
        ("services.mailhog", "missing", "docker.service_missing"),
    ]


def test_runtime_against_declaration_on_prod():
    prod = facts(
        {"web": service(), "scheduler": service()},
        [
            container("web", image="lab/web:0.9", health="unhealthy"),
            container("scheduler", state="exited", health=None, exit_code=0),
            container("legacy-cron"),
        ],
    )
    dev = facts({"web": service(), "scheduler": service()}, [container("web"), container("scheduler")])
    found = run(dev, prod)
    assert checks(found) == [
        ("containers.app-legacy-cron-1", "policy", "docker.orphan"),
        ("services.scheduler", "policy", "docker.not_running"),
        ("services.web.health", "policy", "docker.unhealthy"),
        ("services.web.image", "policy", "docker.image_mismatch"),
    ]
    assert all(f["environments"] == ["prod"] for f in found)
    mismatch = next(f for f in found if f["check"] == "docker.image_mismatch")
    assert mismatch["values"] == {"dev": None, "prod": "declared lab/web:1.0, running lab/web:0.9"}


@pytest.mark.parametrize(
    ("state", "exit_code", "check"),
    [
        ("restarting", 1, "docker.unhealthy"),
        ("exited", 137, "docker.unhealthy"),
        ("exited", 0, "docker.not_running"),
        ("created", 0, "docker.not_running"),
    ],
)
def test_a_crash_loop_or_an_error_exit_is_unhealthy_not_only_not_running(state, exit_code, check):
    # "restarting" is never "running": a crash-looping container must still be called unhealthy.
    prod = facts({"web": service()}, [container("web", state=state, health=None, exit_code=exit_code)])
    dev = facts({"web": service()}, [container("web")])
    found = run(dev, prod)
    assert [(f["key"], f["check"]) for f in found] == [
        ("services.web.health" if check == "docker.unhealthy" else "services.web", check)
    ]
    assert found[0]["values"]["prod"] == "%s (exit %d)" % (state, exit_code)


@pytest.mark.parametrize(
    ("replicas", "running", "found"),
    [
        (None, 2, [("services.web.replicas", "docker.replicas_differ", "declared 1, running 2")]),
        ("3", 1, [("services.web.replicas", "docker.replicas_differ", "declared 3, running 1")]),
        ("3", 3, []),
        ("0", 0, []),
        (None, 0, [("services.web", "docker.not_running", "no container")]),
    ],
)
def test_replicas_against_the_running_containers(replicas, running, found):
    containers = [container("web", name="app-web-%d" % (index + 1)) for index in range(running)]
    prod = facts({"web": service(replicas=replicas)}, containers)
    declared = int(replicas or 1)
    dev = facts({"web": service(replicas=replicas)}, [container("web", name="app-web-%d" % n) for n in range(declared)])
    result = run(dev, prod)
    assert [(f["key"], f["check"], f["values"]["prod"]) for f in result] == found
    assert all(f["environments"] == ["prod"] for f in result)


@pytest.mark.parametrize(
    ("declared", "image_has_one", "reported"),
    [
        (None, True, False),
        (None, False, True),
        (
            {
                "test": ["NONE"],
                "interval": None,
                "timeout": None,
                "retries": None,
                "start_period": None,
                "disable": None,
            },
            True,
            True,
        ),
    ],
    ids=["image-healthcheck", "none-at-all", "disabled-in-compose"],
)
def test_no_healthcheck_counts_the_image_healthcheck(declared, image_has_one, reported):
    prod = facts({"web": service(healthcheck=declared)}, [container("web", healthcheck=image_has_one)])
    dev = facts({"web": service(healthcheck=declared)}, [container("web", healthcheck=image_has_one)])
    found = [f for f in run(dev, prod) if f["check"] == "docker.no_healthcheck"]
    assert bool(found) is reported


def test_runtime_restart_user_and_environment_that_differ_from_the_file():
    secret = record("declared-secret-value-1234", secret=True)
    declared = service(user="app", environment={"LOG_LEVEL": record("info"), "API_KEY": secret, "EMPTY": record("")})
    same = container("web", user="app", environment={"LOG_LEVEL": record("info"), "API_KEY": secret})
    dev = facts({"web": declared}, [same])
    drifted = container(
        "web",
        user="root",
        restart_policy="always",
        environment={"LOG_LEVEL": record("debug"), "API_KEY": record("other-secret-value-12345", secret=True)},
    )
    found = run(dev, facts({"web": copy.deepcopy(declared)}, [drifted]))
    values = {f["key"]: f["values"]["prod"] for f in found if f["check"] == "docker.runtime_differs"}
    assert values == {
        "services.web.restart": "declared unless-stopped, running always",
        "services.web.user": "declared app, running root",
        "services.web.environment.LOG_LEVEL": "declared info, running debug",
        "services.web.environment.API_KEY": "declared ‹secret A, 16-31 chars›, running ‹secret B, 16-31 chars›",
    }
    assert all(f["environments"] == ["prod"] for f in found if f["check"] == "docker.runtime_differs")
    # A declared value missing from the container; the empty entry is not compared.
    found = run(dev, facts({"web": copy.deepcopy(declared)}, [container("web", user="app", environment={})]))
    assert sorted(f["values"]["prod"] for f in found if f["check"] == "docker.runtime_differs") == [
        "declared info, running not set",
        "declared ‹secret A, 16-31 chars›, running not set",
    ]


def test_runtime_limits_and_ports_that_differ_from_the_file():
    prod = facts({"web": service()}, [container("web", memory=128 * 1024 * 1024, nano_cpus=None, ports=[])])
    assert checks(run(CLEAN, prod)) == [
        ("services.web.limits.cpus", "policy", "docker.runtime_differs"),
        ("services.web.limits.memory", "policy", "docker.runtime_differs"),
        ("services.web.ports", "policy", "docker.runtime_differs"),
    ]


def test_production_policies():
    bare = service(
        image={"ref": "lab/worker", "repository": "lab/worker", "tag": None, "digest": None},
        healthcheck=None,
        restart=None,
        limits={"memory": None, "cpus": None},
        ports=[],
    )
    worker = container(
        "worker", image="lab/worker", memory=None, nano_cpus=None, ports=[], healthcheck=False, restart_policy="no"
    )
    dev = facts({"worker": bare}, [worker])
    prod = copy.deepcopy(dev)
    assert checks(run(dev, prod)) == [
        ("services.worker.healthcheck", "policy", "docker.no_healthcheck"),
        ("services.worker.image", "policy", "docker.unpinned_image"),
        ("services.worker.limits.memory", "policy", "docker.no_memory_limit"),
        ("services.worker.restart", "policy", "docker.no_restart_policy"),
    ]


def test_secret_reused_across_environments():
    secret = {"LOG_LEVEL": record("info"), "API_KEY": record("same-secret-value-123456", secret=True)}
    dev = facts({"web": service(environment=secret)}, [container("web", environment=secret)])
    found = run(dev, copy.deepcopy(dev))
    assert checks(found) == [("services.web.environment.API_KEY", "policy", "docker.secret_reused")]
    assert found[0]["values"] == {"dev": "‹secret A, 16-31 chars›", "prod": "‹secret A, 16-31 chars›"}


def test_engine_down_is_unknown_and_declared_state_still_compared():
    prod = facts({"web": service(restart="always")}, engine_status="unreachable")
    found = run(CLEAN, prod)
    assert checks(found) == [
        ("@engine", "unknown", "docker.engine_status"),
        ("services.web.restart", "changed", "docker.declared_changed"),
    ]


def test_broken_stack_is_reported_and_not_compared():
    prod = facts({})
    prod["stacks"]["app"].update(
        status="failed",
        reason="malformed",
        files=[{"path": "/p/docker-compose.yml", "status": "malformed", "reason": "line 3"}],
    )
    found = run(CLEAN, prod)
    assert checks(found) == [("@files", "unknown", "docker.stack_status")]
    assert found[0]["values"]["prod"] == "/p/docker-compose.yml: malformed YAML"


def test_services_behind_a_profile_are_not_expected_to_run():
    prod = facts({"web": service(), "debug": service(profiles=["debug"])}, [container("web")])
    dev = facts({"web": service(), "debug": service(profiles=["debug"])}, [container("web")])
    assert run(dev, prod) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256M", 268435456),
        ("1g", 1073741824),
        ("512mb", 536870912),
        ("1048576", 1048576),
        ("1.5G", 1610612736),
        ("lots", None),
    ],
)
def test_memory_bytes(text, expected):
    assert docker_diff.memory_bytes(text) == expected


# ------------------------------------------------------------ declared against running, complete

RUNTIME_CHANGES = [
    # (the declaration, the running container, the keys reported)
    ({}, {}, []),
    (
        {"command": ["serve", "--fast"], "fingerprints": dict(service()["fingerprints"], command="fp:fast")},
        {},
        ["services.web.command"],
    ),
    ({"command": None}, {"command": ["other"], "fingerprints": {"command": "fp:other", "entrypoint": None}}, []),
    (
        {"entrypoint": ["/init"], "fingerprints": dict(service()["fingerprints"], entrypoint="fp:init")},
        {"entrypoint": ["/init"], "fingerprints": {"command": "fp:serve", "entrypoint": "fp:init"}},
        [],
    ),
    (
        {"entrypoint": ["/init"], "fingerprints": dict(service()["fingerprints"], entrypoint="fp:init")},
        {},
        ["services.web.entrypoint"],
    ),
    ({"fingerprints": dict(service()["fingerprints"], healthcheck="fp:curl")}, {}, ["services.web.healthcheck.test"]),
    (
        {"healthcheck": dict(service()["healthcheck"], interval="1m30s", retries="5")},
        {},
        ["services.web.healthcheck.interval", "services.web.healthcheck.retries"],
    ),
    # Without a healthcheck in the compose files the image's runs: nothing to compare.
    ({"healthcheck": None}, {"health_config": {"test": ["CMD", "x"], "test_fp": "fp:x"}}, []),
    ({"healthcheck": dict(service()["healthcheck"], test=["NONE"])}, {}, ["services.web.healthcheck"]),
    ({"healthcheck": dict(service()["healthcheck"], disable="true")}, {"healthcheck": False}, []),
    # Capabilities in any spelling Compose passes on.
    ({"cap_add": ["net_admin", "CAP_CHOWN"]}, {"cap_add": ["CHOWN", "NET_ADMIN"]}, []),
    ({"cap_add": ["NET_ADMIN"]}, {}, ["services.web.cap_add"]),
    ({}, {"cap_drop": ["ALL"]}, ["services.web.cap_drop"]),
    ({"privileged": "true"}, {"privileged": True}, []),
    ({}, {"privileged": True}, ["services.web.privileged"]),
    ({"network_mode": "host"}, {"network_mode": "host"}, []),
    ({"network_mode": "host"}, {}, ["services.web.network_mode"]),
    ({"network_mode": "service:db"}, {"network_mode": "container:app-db-1"}, []),
    ({"network_mode": "service:db"}, {"network_mode": "container:other-1"}, ["services.web.network_mode"]),
    # Labels: the declared ones by fingerprint; the image's and Compose's own are not compared.
    (
        {"labels": {"team": "web"}, "fingerprints": dict(service()["fingerprints"], labels={"team": "fp:web"})},
        {"labels": {"team": record("web"), "maintainer": record("image")}},
        [],
    ),
    (
        {"labels": {"team": "web"}, "fingerprints": dict(service()["fingerprints"], labels={"team": "fp:web"})},
        {"labels": {"team": record("ops")}},
        ["services.web.labels.team"],
    ),
    (
        {"labels": {"team": "web"}, "fingerprints": dict(service()["fingerprints"], labels={"team": "fp:web"})},
        {"labels": {}},
        ["services.web.labels.team"],
    ),
    # Mounts: each declared volume mounted as declared; what Compose or the image adds is not compared.
    ({"volumes": ["data:/data"]}, {"mounts": ["data:/data", ":/cache", "/srv/s:/run/secrets/s:ro"]}, []),
    ({"volumes": ["data:/data"]}, {"mounts": ["data:/data:ro"]}, ["services.web.volumes"]),
    ({"volumes": ["<project>/site:/www"]}, {"mounts": []}, ["services.web.volumes"]),
]


@pytest.mark.parametrize(("declared", "running", "keys"), RUNTIME_CHANGES)
def test_declared_against_running(declared, running, keys):
    prod = facts({"web": service(**declared), "db": service()}, [container("web", **running), container("db")])
    found = [f for f in docker_diff.diff(["prod"], {"prod": prod}, {"baseline": "prod", "production": set()})]
    assert sorted(f["key"] for f in found if f["check"] == "docker.runtime_differs") == keys


def test_a_running_secret_label_is_never_shown():
    secret = record("s3cr3t-label-value", secret=True)
    declared = {
        "labels": {"token": "<redacted:fp>"},
        "fingerprints": dict(service()["fingerprints"], labels={"token": "fp:x"}),
    }
    prod = facts({"web": service(**declared)}, [container("web", labels={"token": secret})])
    (found,) = [
        f
        for f in docker_diff.diff(["prod"], {"prod": prod}, {"baseline": "prod", "production": set()})
        if f["check"] == "docker.runtime_differs"
    ]
    assert "s3cr3t" not in repr(found)
    assert "secret" in found["values"]["prod"]


@pytest.mark.parametrize(
    ("declared", "running", "stale"),
    [
        ("fp:hash", "fp:hash", False),
        ("fp:hash", "fp:old", True),
        # A container Compose did not create (no label), or a service outside the hash's model.
        ("fp:hash", None, False),
        (None, "fp:old", False),
    ],
)
def test_stale_container(declared, running, stale):
    prod = facts({"web": service(config_hash=declared)}, [container("web", config_hash=running)])
    found = docker_diff.diff(["prod"], {"prod": prod}, {"baseline": "prod", "production": set()})
    assert [(f["key"], f["check"]) for f in found if f["check"] == "docker.stale"] == (
        [("services.web.config_hash", "docker.stale")] if stale else []
    )


def test_the_readers_table_says_who_read_each_stack_on_each_column():
    dev, prod = facts({"web": service()}), facts({"web": service()})
    dev["stacks"]["app"]["reader"] = {"name": "compose", "version": "2.40.3", "note": None}
    prod["stacks"]["app"]["reader"] = {
        "name": "built-in",
        "version": None,
        "note": "Compose v2 is not installed at /usr/lib/docker/cli-plugins/docker-compose",
    }
    cells = {"dev": dev, "prod": prod, "staging": {"unknown": True, "reason": "unreachable"}}
    (table,) = docker_diff.tables(["dev", "prod", "staging"], cells, {})["tables"]
    assert table["title"] == "Compose files read by"
    assert table["header"] == ["stack", "dev", "prod", "staging"]
    assert table["rows"] == [
        [
            "app",
            "Compose 2.40.3",
            "built-in reader (Compose v2 is not installed at /usr/lib/docker/cli-plugins/docker-compose)",
            "—",
        ]
    ]
    # Either reading gives the same facts: no finding comes from which reader read a column.
    assert run(dev, prod) == run(facts({"web": service()}), facts({"web": service()}))
    assert docker_diff.tables(["dev"], {"dev": None}, {}) == {"tables": [], "charts": []}
