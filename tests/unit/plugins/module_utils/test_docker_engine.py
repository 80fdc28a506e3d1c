"""The Docker engine collector: normalisation on recorded API answers, the protocol against small
fake engines (malformed, refusing, silent), and the whole collector against a real dockerd.

The fixtures below are written by hand in the shape of Docker Engine API 1.41 answers (Debian 12's
docker.io 20.10). The real dockerd is started by a session fixture on its own socket, data root,
exec root and pidfile, with no bridge and no iptables; it is stopped by its pidfile afterwards.
"""

import contextlib
import copy
import http.server
import io
import json
import os
import random
import shutil
import signal
import socket
import socketserver
import string
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import docker_engine
from ansible_collections.envparity.audit.plugins.module_utils.docker_engine import (
    canonical_mounts,
    canonical_ports,
    collect_engine,
    container_ports,
    describe_environment,
    normalize_container,
    normalize_images,
    select_containers,
    socket_path,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import describe_value, fingerprint

KEY = b"k" * 32
_RNG = random.Random(11)
# Assembled at run time so that no secret scanner mistakes this file for a leak.
CANARY = "gh" + "p_CANARY" + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(32))
DB_CANARY = "pw-" + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(20))
# The directory holding ansible_collections/ (tests/conftest.py puts it on sys.path).
COLLECTIONS = str(Path(__file__).resolve().parents[4] / "collections")
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
CONTAINER_FIELDS = {
    "name",
    "project",
    "service",
    "image",
    "image_id",
    "repo_digests",
    "state",
    "health",
    "restart_count",
    "exit_code",
    "oom_killed",
    "ports",
    "mounts",
    "environment",
    "memory",
    "nano_cpus",
    "restart_policy",
    "privileged",
    "user",
    "networks",
    "healthcheck",
    "command",
    "entrypoint",
    "fingerprints",
    "health_config",
    "cap_add",
    "cap_drop",
    "network_mode",
    "labels",
    "config_hash",
}
ENGINE_FIELDS = {"status", "reason", "version", "api_version", "containers", "images", "truncated"}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runuser, dockerd)")


# ---------------------------------------------------------------- recorded API 1.41 answers

WEB_ID = "3f4e1c9a7b2d" + "0" * 52
WORKER_ID = "9a8b7c6d5e4f" + "1" * 52
GONE_ID = "5555aaaa5555" + "2" * 52
ANON_VOLUME = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
WEB_IMAGE = "sha256:" + "a1" * 32
WORKER_IMAGE = "sha256:" + "b2" * 32

VERSION = {
    "Platform": {"Name": ""},
    "Components": [{"Name": "Engine", "Version": "20.10.24+dfsg1", "Details": {"ApiVersion": "1.41"}}],
    "Version": "20.10.24+dfsg1",
    "ApiVersion": "1.41",
    "MinAPIVersion": "1.12",
    "GitCommit": "5d6db84",
    "GoVersion": "go1.19.8",
    "Os": "linux",
    "Arch": "amd64",
    "KernelVersion": "6.1.0-18-amd64",
    "BuildTime": "2024-02-09T10:11:12.000000000+00:00",
}

WEB_INSPECT = {
    "Id": WEB_ID,
    "Created": "2025-01-06T09:00:00.123456789Z",
    "Path": "/docker-entrypoint.sh",
    "Args": ["nginx", "-g", "daemon off;"],
    "State": {
        "Status": "running",
        "Running": True,
        "Paused": False,
        "Restarting": False,
        "OOMKilled": False,
        "Dead": False,
        "Pid": 4242,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": "2025-01-06T09:00:01.5Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
        "Health": {
            "Status": "unhealthy",
            "FailingStreak": 3,
            "Log": [{"Start": "2025-01-06T09:01:00Z", "End": "2025-01-06T09:01:01Z", "ExitCode": 1, "Output": "x"}],
        },
    },
    "Image": WEB_IMAGE,
    "Name": "/app-web-1",
    "RestartCount": 2,
    "Driver": "overlay2",
    "Platform": "linux",
    "HostConfig": {
        "Binds": ["/srv/app/nginx.conf:/etc/nginx/nginx.conf:ro", "static:/usr/share/nginx/html"],
        "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "app_default",
        "CapAdd": ["cap_net_admin", "CHOWN"],
        "CapDrop": ["ALL"],
        "PortBindings": {
            "80/tcp": [{"HostIp": "", "HostPort": "80"}],
            "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}],
        },
        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
        "Privileged": False,
        "PublishAllPorts": False,
        "Memory": 0,
        "NanoCpus": 0,
        "CpuShares": 0,
    },
    "Mounts": [
        {
            "Type": "bind",
            "Source": "/srv/app/nginx.conf",
            "Destination": "/etc/nginx/nginx.conf",
            "Mode": "ro",
            "RW": False,
            "Propagation": "rprivate",
        },
        {
            "Type": "volume",
            "Name": "static",
            "Source": "/var/lib/docker/volumes/static/_data",
            "Destination": "/usr/share/nginx/html",
            "Driver": "local",
            "Mode": "z",
            "RW": True,
            "Propagation": "",
        },
        {
            "Type": "volume",
            "Name": ANON_VOLUME,
            "Source": "/var/lib/docker/volumes/%s/_data" % ANON_VOLUME,
            "Destination": "/var/cache/nginx",
            "Driver": "local",
            "Mode": "",
            "RW": True,
            "Propagation": "",
        },
    ],
    "Config": {
        "Hostname": "3f4e1c9a7b2d",
        "User": "",
        "ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "9000/tcp": {}},
        "Env": [
            "API_TOKEN=" + CANARY,
            "DATABASE_URL=postgresql://app:" + DB_CANARY + "@db:5432/app",
            "DEBUG=0",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "EMPTY=",
        ],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Entrypoint": ["/docker-entrypoint.sh", "--token", CANARY],
        "Healthcheck": {
            "Test": ["CMD-SHELL", "curl -fsS http://localhost/?k=" + CANARY],
            "Interval": 90000000000,
            "Retries": 3,
        },
        "Image": "registry.example.com/app/web:1.4",
        "Labels": {
            "team": "web",
            "deploy.token": CANARY,
            "com.docker.compose.project": "app",
            "com.docker.compose.service": "web",
            "com.docker.compose.container-number": "1",
            "com.docker.compose.config-hash": "c0ffee",
        },
    },
    "NetworkSettings": {
        "SandboxKey": "/var/run/docker/netns/0123456789ab",
        "Ports": {
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"}, {"HostIp": "::", "HostPort": "80"}],
            "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}],
            "9000/tcp": None,
        },
        "Networks": {
            "app_default": {"NetworkID": "f" * 64, "EndpointID": "e" * 64, "IPAddress": "172.18.0.3"},
            "monitoring": {"NetworkID": "d" * 64, "EndpointID": "c" * 64, "IPAddress": "172.19.0.5"},
        },
    },
}

WORKER_INSPECT = {
    "Id": WORKER_ID,
    "Created": "2025-01-06T09:00:00Z",
    "State": {
        "Status": "exited",
        "Running": False,
        "OOMKilled": True,
        "Pid": 0,
        "ExitCode": 137,
        "StartedAt": "2025-01-06T09:00:01Z",
        "FinishedAt": "2025-01-06T09:10:00Z",
    },
    "Image": WORKER_IMAGE,
    "Name": "/app-worker-1",
    "RestartCount": 0,
    "HostConfig": {
        "NetworkMode": "none",
        "PortBindings": {},
        "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
        "Privileged": True,
        "Memory": 268435456,
        "NanoCpus": 1500000000,
    },
    "Mounts": [],
    "Config": {
        "User": "1000:1000",
        "Env": ["QUEUE=default"],
        "Image": "app/worker:latest",
        "Labels": {"com.docker.compose.project": "app", "com.docker.compose.service": "worker"},
    },
    "NetworkSettings": {"Ports": {}, "Networks": {"none": {"NetworkID": "a" * 64}}},
}

CONTAINERS_JSON = [
    {
        "Id": WORKER_ID,
        "Names": ["/app-worker-1"],
        "Image": "app/worker:latest",
        "ImageID": WORKER_IMAGE,
        "Command": "/bin/worker",
        "Created": 1736154000,
        "Ports": [],
        "Labels": {"com.docker.compose.project": "app", "com.docker.compose.service": "worker"},
        "State": "exited",
        "Status": "Exited (137) 5 minutes ago",
        "HostConfig": {"NetworkMode": "none"},
        "Mounts": [],
    },
    {
        "Id": WEB_ID,
        "Names": ["/app-web-1"],
        "Image": "registry.example.com/app/web:1.4",
        "ImageID": WEB_IMAGE,
        "Command": "/docker-entrypoint.sh nginx -g 'daemon off;'",
        "Created": 1736154000,
        "Ports": [
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"},
            {"IP": "127.0.0.1", "PrivatePort": 443, "PublicPort": 8443, "Type": "tcp"},
            {"PrivatePort": 9000, "Type": "tcp"},
        ],
        "Labels": {"com.docker.compose.project": "app", "com.docker.compose.service": "web"},
        "State": "running",
        "Status": "Up 2 hours (unhealthy)",
        "HostConfig": {"NetworkMode": "app_default"},
        "Mounts": [],
    },
    {
        "Id": GONE_ID,
        "Names": ["/app-gone-1"],
        "Image": "app/gone:1",
        "ImageID": WORKER_IMAGE,
        "State": "exited",
        "Status": "Exited (0) 1 second ago",
    },
]

IMAGES_JSON = [
    {
        "Containers": -1,
        "Created": 1736150000,
        "Id": WORKER_IMAGE,
        "Labels": None,
        "ParentId": "",
        "RepoDigests": ["app/worker@sha256:" + "9" * 64],
        "RepoTags": ["app/worker:latest", "app/worker:2.0"],
        "SharedSize": -1,
        "Size": 1982256,
    },
    {
        "Containers": -1,
        "Created": 1736150000,
        "Id": WEB_IMAGE,
        "RepoDigests": ["registry.example.com/app/web@sha256:" + "8" * 64],
        "RepoTags": ["registry.example.com/app/web:1.4"],
        "Size": 1982256,
    },
    {"Id": "sha256:" + "c3" * 32, "RepoDigests": ["<none>@<none>"], "RepoTags": ["<none>:<none>"]},
]

EXPECTED_WEB = {
    "name": "app-web-1",
    "project": "app",
    "service": "web",
    "image": "registry.example.com/app/web:1.4",
    "image_id": WEB_IMAGE,
    "repo_digests": ["registry.example.com/app/web@sha256:" + "8" * 64],
    "state": "running",
    "health": "unhealthy",
    "restart_count": 2,
    "exit_code": 0,
    "oom_killed": False,
    "ports": ["127.0.0.1:8443:443/tcp", "80:80/tcp"],
    "mounts": [
        "/srv/app/nginx.conf:/etc/nginx/nginx.conf:ro",
        ":/var/cache/nginx",
        "static:/usr/share/nginx/html",
    ],
    "memory": None,
    "nano_cpus": None,
    "restart_policy": "no",
    "privileged": False,
    "user": None,
    "networks": ["app_default", "monitoring"],
    "healthcheck": True,
    "command": ["nginx", "-g", "daemon off;"],
    # A secret option's value and the container's secret environment values are masked.
    "entrypoint": ["/docker-entrypoint.sh", "--token", "***"],
    "fingerprints": {
        "command": fingerprint(KEY, json.dumps(["nginx", "-g", "daemon off;"])),
        "entrypoint": fingerprint(KEY, json.dumps(["/docker-entrypoint.sh", "--token", CANARY])),
    },
    "health_config": {
        "test": ["CMD-SHELL", "curl -fsS ***"],
        "test_fp": fingerprint(KEY, json.dumps(["CMD-SHELL", "curl -fsS http://localhost/?k=" + CANARY])),
        "interval": "1m30s",
        "timeout": None,
        "start_period": None,
        "retries": "3",
    },
    "cap_add": ["CHOWN", "NET_ADMIN"],
    "cap_drop": ["ALL"],
    "network_mode": "app_default",
    "labels": {"deploy.token": describe_value("deploy.token", CANARY, KEY), "team": describe_value("team", "web", KEY)},
    "config_hash": fingerprint(KEY, "c0ffee"),
}

EXPECTED_WORKER = {
    "name": "app-worker-1",
    "project": "app",
    "service": "worker",
    "image": "app/worker:latest",
    "image_id": WORKER_IMAGE,
    "repo_digests": ["app/worker@sha256:" + "9" * 64],
    "state": "exited",
    "health": None,
    "restart_count": 0,
    "exit_code": 137,
    "oom_killed": True,
    "ports": [],
    "mounts": [],
    "memory": 268435456,
    "nano_cpus": 1500000000,
    "restart_policy": "unless-stopped",
    "privileged": True,
    "user": "1000:1000",
    "networks": ["none"],
    "healthcheck": False,
    "command": None,
    "entrypoint": None,
    "fingerprints": {"command": None, "entrypoint": None},
    "health_config": None,
    "cap_add": [],
    "cap_drop": [],
    "network_mode": "none",
    "labels": {},
    "config_hash": None,
}

EXPECTED_IMAGES = [
    {
        "id": WEB_IMAGE,
        "tags": ["registry.example.com/app/web:1.4"],
        "digests": ["registry.example.com/app/web@sha256:" + "8" * 64],
    },
    {
        "id": WORKER_IMAGE,
        "tags": ["app/worker:2.0", "app/worker:latest"],
        "digests": ["app/worker@sha256:" + "9" * 64],
    },
    {"id": "sha256:" + "c3" * 32, "tags": [], "digests": []},
]


def _without_environment(container):
    return {key: value for key, value in container.items() if key != "environment"}


# ---------------------------------------------------------------- pure normalisation


@pytest.mark.parametrize(
    ("bindings", "expected"),
    [
        pytest.param(
            {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"}, {"HostIp": "::", "HostPort": "80"}]},
            ["80:80/tcp"],
            id="ipv4-and-ipv6-duplicate",
        ),
        pytest.param({"80/tcp": [{"HostIp": "", "HostPort": "80"}]}, ["80:80/tcp"], id="configured-any-address"),
        pytest.param(
            {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}, ["127.0.0.1:8080:80/tcp"], id="loopback"
        ),
        pytest.param({"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}, ["[::1]:8080:80/tcp"], id="ipv6-loopback"),
        pytest.param({"80/tcp": [{"HostIp": "::", "HostPort": "8080"}]}, ["8080:80/tcp"], id="ipv6-any-only"),
        pytest.param({"9000/tcp": None}, [], id="exposed-not-published"),
        pytest.param({"9000/tcp": []}, [], id="exposed-empty-list"),
        pytest.param({"80/tcp": [{"HostIp": "", "HostPort": ""}]}, ["80/tcp"], id="ephemeral-host-port"),
        pytest.param({"53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}]}, ["5353:53/udp"], id="udp"),
        pytest.param({"80": [{"HostPort": "81"}]}, ["81:80/tcp"], id="protocol-defaults-to-tcp"),
        pytest.param(
            {
                "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}],
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"}, {"HostIp": "0.0.0.0", "HostPort": "8080"}],
            },
            ["127.0.0.1:8443:443/tcp", "8080:80/tcp", "80:80/tcp"],
            id="several-sorted",
        ),
        pytest.param(None, [], id="none"),
        pytest.param({"80/tcp": "garbage", 5: [{}], "81/tcp": ["x", None]}, [], id="odd-shapes"),
    ],
)
def test_canonical_ports(bindings, expected):
    assert canonical_ports(bindings) == expected


@pytest.mark.parametrize(
    ("inspect", "expected"),
    [
        pytest.param(WEB_INSPECT, ["127.0.0.1:8443:443/tcp", "80:80/tcp"], id="port-bindings-win"),
        pytest.param(
            {
                "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]}},
                "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}]}},
            },
            ["80/tcp"],
            id="ephemeral-port-is-not-the-picked-number",
        ),
        pytest.param(
            {
                "HostConfig": {"PortBindings": {}, "PublishAllPorts": True},
                "Config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
                "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}]}},
            },
            ["53/udp", "80/tcp"],
            id="publish-all",
        ),
        pytest.param(
            {"NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"}], "81/tcp": None}}},
            ["80:80/tcp"],
            id="no-host-config-falls-back",
        ),
        pytest.param({"HostConfig": {"PortBindings": None}}, [], id="nothing"),
    ],
)
def test_container_ports(inspect, expected):
    assert container_ports(inspect) == expected


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        pytest.param(WEB_INSPECT["Mounts"], EXPECTED_WEB["mounts"], id="bind-ro-named-anonymous"),
        pytest.param(
            [{"Type": "bind", "Source": "/data", "Destination": "/data", "Mode": "", "RW": True}],
            ["/data:/data"],
            id="bind-rw",
        ),
        pytest.param(
            [
                {
                    "Type": "volume",
                    "Name": "pgdata",
                    "Source": "/var/lib/docker/volumes/pgdata/_data",
                    "Destination": "/var/lib/postgresql/data",
                    "RW": False,
                }
            ],
            ["pgdata:/var/lib/postgresql/data:ro"],
            id="named-volume-ro-by-name",
        ),
        pytest.param([{"Type": "tmpfs", "Source": "", "Destination": "/run", "RW": True}], [":/run"], id="tmpfs"),
        pytest.param([{"Type": "bind", "Source": "/x"}, "junk", None], [], id="no-destination"),
        pytest.param(None, [], id="none"),
    ],
)
def test_canonical_mounts(mounts, expected):
    assert canonical_mounts(mounts) == expected


def test_environment_secrets_are_fingerprinted():
    env = describe_environment(WEB_INSPECT["Config"]["Env"], KEY)
    assert list(env) == sorted(env)
    token = env["API_TOKEN"]
    assert token["secret"] is True
    assert token["display"] is None
    assert token["fp"] == fingerprint(KEY, CANARY)
    url = env["DATABASE_URL"]
    assert url["secret"] is True
    assert url["display"] == "postgresql://app:***@db:5432/app"
    assert env["DEBUG"]["display"] == "0"
    assert env["DEBUG"]["secret"] is False
    assert env["EMPTY"]["empty"] is True
    dumped = json.dumps(env)
    assert CANARY not in dumped
    assert DB_CANARY not in dumped


@pytest.mark.parametrize(
    ("env", "expected_keys"),
    [
        pytest.param(["A=1", "A=2"], {"A": "2"}, id="last-wins"),
        pytest.param(["NOVALUE"], {"NOVALUE": ""}, id="no-equals"),
        pytest.param(["X=a=b"], {"X": "a=b"}, id="value-with-equals"),
        pytest.param(["=oops", "", 5, None], {}, id="odd-entries"),
        pytest.param(None, {}, id="none"),
    ],
)
def test_environment_shapes(env, expected_keys):
    described = describe_environment(env, KEY)
    assert {key: record["display"] for key, record in described.items()} == expected_keys


def test_environment_key_that_is_a_token_is_replaced():
    described = describe_environment([CANARY + "=1"], KEY)
    (key,) = described
    assert key == "<redacted:%s>" % fingerprint(KEY, CANARY)
    assert CANARY not in json.dumps(described)


def test_normalize_container_web():
    digests = {image["id"]: image["digests"] for image in EXPECTED_IMAGES}
    container = normalize_container(WEB_INSPECT, KEY, digests)
    assert set(container) == CONTAINER_FIELDS
    assert _without_environment(container) == EXPECTED_WEB
    assert set(container["environment"]) == {"API_TOKEN", "DATABASE_URL", "DEBUG", "EMPTY", "PATH"}
    dumped = json.dumps(container)
    assert CANARY not in dumped
    assert DB_CANARY not in dumped
    # Volatile values are not kept.
    for volatile in (WEB_ID, "2025-01-06T09:00:01.5Z", "4242", "0123456789ab", "172.18.0.3"):
        assert volatile not in dumped


def test_normalize_container_worker():
    digests = {image["id"]: image["digests"] for image in EXPECTED_IMAGES}
    container = normalize_container(WORKER_INSPECT, KEY, digests)
    assert _without_environment(container) == EXPECTED_WORKER
    assert container["environment"]["QUEUE"]["display"] == "default"


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        ({"Status": "healthy", "FailingStreak": 0}, "healthy"),
        ({"Status": "unhealthy", "FailingStreak": 4}, "unhealthy"),
        ({"Status": "starting", "FailingStreak": 0}, "starting"),
        (None, None),
        ("garbage", None),
    ],
)
def test_health(health, expected):
    inspect = copy.deepcopy(WORKER_INSPECT)
    if health is None:
        inspect["State"].pop("Health", None)
    else:
        inspect["State"]["Health"] = health
    assert normalize_container(inspect, KEY)["health"] == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"Name": "", "MaximumRetryCount": 0}, "no"),
        ({"Name": "no", "MaximumRetryCount": 0}, "no"),
        ({"Name": "always", "MaximumRetryCount": 0}, "always"),
        ({"Name": "on-failure", "MaximumRetryCount": 3}, "on-failure"),
        ({"MaximumRetryCount": 0}, "no"),
        (None, None),
    ],
)
def test_restart_policy(policy, expected):
    inspect = copy.deepcopy(WORKER_INSPECT)
    inspect["HostConfig"]["RestartPolicy"] = policy
    assert normalize_container(inspect, KEY)["restart_policy"] == expected


@pytest.mark.parametrize(
    ("memory", "nano_cpus", "expected"),
    [(0, 0, (None, None)), (67108864, 500000000, (67108864, 500000000)), (None, "x", (None, None))],
)
def test_limits(memory, nano_cpus, expected):
    inspect = copy.deepcopy(WORKER_INSPECT)
    inspect["HostConfig"].update(Memory=memory, NanoCpus=nano_cpus)
    container = normalize_container(inspect, KEY)
    assert (container["memory"], container["nano_cpus"]) == expected


def test_normalize_container_tolerates_an_empty_answer():
    container = normalize_container({}, KEY)
    assert set(container) == CONTAINER_FIELDS
    assert container["name"] == ""
    assert container["ports"] == container["mounts"] == container["networks"] == []


def test_normalize_images():
    assert normalize_images(IMAGES_JSON) == EXPECTED_IMAGES
    assert normalize_images([{"RepoTags": ["no-id:1"]}, "junk"]) == []


def test_select_containers_sorts_by_name_and_caps():
    assert select_containers(CONTAINERS_JSON) == ([GONE_ID, WEB_ID, WORKER_ID], False)
    assert select_containers(CONTAINERS_JSON, limit=2) == ([GONE_ID, WEB_ID], True)
    # A linked container also carries "/other/alias": its own name is the short one.
    linked = [{"Id": "abc", "Names": ["/z/alias", "/a-own"]}, {"Id": "def", "Names": ["/b"]}]
    assert select_containers(linked) == (["abc", "def"], False)
    # An id that could change the request path is never used.
    assert select_containers([{"Id": "../../images/x", "Names": ["/x"]}]) == ([], False)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("unix:///var/run/docker.sock", "/var/run/docker.sock"),
        ("unix:///run/envparity-lab/docker.sock", "/run/envparity-lab/docker.sock"),
        ("unix://", "/var/run/docker.sock"),
        ("", "/var/run/docker.sock"),
        (None, "/var/run/docker.sock"),
        ("UNIX:///tmp/d.sock", "/tmp/d.sock"),
    ],
)
def test_socket_path(host, expected):
    assert socket_path(host) == expected


@pytest.mark.parametrize(
    "host",
    ["tcp://127.0.0.1:2375", "ssh://deploy@prod", "npipe:////./pipe/docker_engine", "fd://", "/var/run/docker.sock"],
)
def test_unsupported_hosts(host):
    result = collect_engine(host, KEY)
    assert set(result) == ENGINE_FIELDS
    assert result["status"] == "unsupported"
    assert "unix://" in result["reason"]
    assert "deploy" not in result["reason"]
    assert result["containers"] == [] and result["images"] == []


def test_a_bad_key_is_a_status_not_a_traceback():
    assert collect_engine("unix:///nonexistent/d.sock", b"")["status"] == "failed"


# ---------------------------------------------------------------- fake engines


@pytest.fixture
def short_dir():
    """A directory with a short path: a unix socket path has at most 107 bytes."""
    path = tempfile.mkdtemp(prefix="ep-eng-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


class _FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path, routes):
        self.routes = routes
        self.requests = []
        self.connections = 0
        super().__init__(path, _FakeHandler)


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.connections += 1

    def log_message(self, *args):
        pass

    def parse_request(self):
        ok = super().parse_request()
        if ok:
            self.server.requests.append((self.command, self.path))
        return ok

    def do_GET(self):
        status, body = self.server.routes.get(self.path, (404, {"message": "page not found"}))
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def fake_engine(directory, routes):
    path = os.path.join(directory, "fake.sock")
    server = _FakeEngine(path, routes)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield "unix://" + path, server
    finally:
        server.shutdown()
        server.server_close()


def engine_routes(prefix="/v1.41"):
    routes = {
        "/version": (200, VERSION),
        prefix + "/containers/json?all=1": (200, CONTAINERS_JSON),
        prefix + "/images/json": (200, IMAGES_JSON),
        prefix + "/containers/%s/json" % WEB_ID: (200, WEB_INSPECT),
        prefix + "/containers/%s/json" % WORKER_ID: (200, WORKER_INSPECT),
        prefix + "/containers/%s/json" % GONE_ID: (404, {"message": "No such container: " + GONE_ID}),
    }
    return routes


def test_fake_engine_whole_collection(short_dir):
    with fake_engine(short_dir, engine_routes()) as (host, server):
        result = collect_engine(host, KEY, timeout=5)
    assert set(result) == ENGINE_FIELDS
    assert result["status"] == "ok", result["reason"]
    assert result["reason"] is None
    assert (result["version"], result["api_version"]) == ("20.10.24+dfsg1", "1.41")
    # Sorted by name; the container removed between the list and its inspection is skipped.
    assert [_without_environment(c) for c in result["containers"]] == [EXPECTED_WEB, EXPECTED_WORKER]
    assert result["images"] == EXPECTED_IMAGES
    assert result["truncated"] is False
    # GET only, one keep-alive connection, the engine's own API version on every path but /version.
    assert {method for method, _ in server.requests} == {"GET"}
    assert server.connections == 1
    assert server.requests[0] == ("GET", "/version")
    assert all(path.startswith("/v1.41/") for _, path in server.requests[1:])
    assert len(server.requests) == 6
    dumped = json.dumps(result)
    assert CANARY not in dumped
    assert DB_CANARY not in dumped


def test_fake_engine_is_collected_the_same_twice(short_dir):
    with fake_engine(short_dir, engine_routes()) as (host, _):
        assert collect_engine(host, KEY, 5) == collect_engine(host, KEY, 5)


def test_unversioned_paths_without_an_api_version(short_dir):
    routes = engine_routes(prefix="")
    routes["/version"] = (200, {"Version": "odd"})
    with fake_engine(short_dir, routes) as (host, server):
        result = collect_engine(host, KEY, 5)
    assert result["status"] == "ok"
    assert result["api_version"] is None
    assert ("GET", "/containers/json?all=1") in server.requests


def test_container_cap_sets_truncated(short_dir, monkeypatch):
    monkeypatch.setattr(docker_engine, "MAX_CONTAINERS", 1)
    with fake_engine(short_dir, engine_routes()) as (host, server):
        result = collect_engine(host, KEY, 5)
    assert result["status"] == "ok"
    assert result["truncated"] is True
    # The first by name is the one that disappeared: none is left, and only one was asked for.
    assert result["containers"] == []
    assert sum(1 for _, path in server.requests if path.endswith("/json") and "/containers/" in path[6:]) == 1


ROUTE_NAMES = {
    "version": "/version",
    "containers": "/v1.41/containers/json?all=1",
    "images": "/v1.41/images/json",
    "inspect": "/v1.41/containers/%s/json" % WEB_ID,
}


@pytest.mark.parametrize("route", sorted(ROUTE_NAMES))
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"Version": "' + CANARY.encode() + b'", ', id="truncated-json"),
        pytest.param(b"<html>" + CANARY.encode() + b"</html>", id="html"),
        pytest.param(b"\xff\xfe" + CANARY.encode(), id="not-utf8"),
    ],
)
def test_malformed_json_is_failed(short_dir, route, body):
    routes = engine_routes()
    routes[ROUTE_NAMES[route]] = (200, body)
    with fake_engine(short_dir, routes) as (host, _):
        result = collect_engine(host, KEY, 5)
    assert result["status"] == "failed"
    assert "malformed JSON" in result["reason"]
    assert CANARY not in json.dumps(result)
    assert result["containers"] == [] and result["images"] == []


@pytest.mark.parametrize(
    ("route", "body"),
    [("containers", {"message": CANARY}), ("images", "a string"), ("inspect", [1, 2]), ("version", [])],
)
def test_unexpected_shapes_are_failed(short_dir, route, body):
    routes = engine_routes()
    routes[ROUTE_NAMES[route]] = (200, body)
    with fake_engine(short_dir, routes) as (host, _):
        result = collect_engine(host, KEY, 5)
    assert result["status"] == "failed"
    assert "unexpected shape" in result["reason"]
    assert CANARY not in json.dumps(result)


@pytest.mark.parametrize(
    ("status", "expected"), [(500, "failed"), (400, "failed"), (403, "permission_denied"), (401, "permission_denied")]
)
def test_http_errors(short_dir, status, expected):
    routes = engine_routes()
    routes[ROUTE_NAMES["containers"]] = (status, {"message": "denied: " + CANARY})
    with fake_engine(short_dir, routes) as (host, _):
        result = collect_engine(host, KEY, 5)
    assert result["status"] == expected
    assert "HTTP" in result["reason"] and str(status) in result["reason"]
    assert CANARY not in json.dumps(result)


def test_answers_above_the_size_limit_are_refused(short_dir, monkeypatch):
    monkeypatch.setattr(docker_engine, "MAX_LIST_BYTES", 1000)
    with fake_engine(short_dir, engine_routes()) as (host, _):
        result = collect_engine(host, KEY, 5)
    assert result["status"] == "failed"
    assert "1000-byte limit" in result["reason"]
    assert "GET /containers/json" in result["reason"]


# ---------------------------------------------------------------- unreachable, refused, silent


def test_missing_socket_is_unreachable(short_dir):
    path = os.path.join(short_dir, "nope.sock")
    result = collect_engine("unix://" + path, KEY, 2)
    assert result["status"] == "unreachable"
    assert path in result["reason"]
    assert "drift_docker_host" in result["reason"] and "dockerd" in result["reason"]


def test_missing_directory_is_unreachable(short_dir):
    result = collect_engine("unix://" + os.path.join(short_dir, "no", "d.sock"), KEY, 2)
    assert result["status"] == "unreachable"


def test_stale_socket_is_unreachable(short_dir):
    path = os.path.join(short_dir, "stale.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.close()  # the file stays; nobody listens
    result = collect_engine("unix://" + path, KEY, 2)
    assert result["status"] == "unreachable"
    assert "connection refused" in result["reason"]
    assert path in result["reason"]


def _listening(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(8)
    return sock


@contextlib.contextmanager
def _server(path, behaviour):
    """A unix socket server whose connections are handled by behaviour(conn, stop)."""
    listener = _listening(path)
    stop = threading.Event()
    held = []

    def serve():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            threading.Thread(target=behaviour, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield "unix://" + path
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def _silent(conn, stop):
    stop.wait(30)


def _drip(conn, stop):
    """Answers one byte of a status line at a time, never finishing the headers."""
    with contextlib.suppress(OSError):
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.2):
            conn.sendall(b"X")


@pytest.mark.parametrize("behaviour", [_silent, _drip], ids=["silent", "drip"])
def test_an_engine_that_never_answers_fails_within_the_timeout(short_dir, behaviour):
    with _server(os.path.join(short_dir, "mute.sock"), behaviour) as host:
        started = time.monotonic()
        result = collect_engine(host, KEY, timeout=1)
        elapsed = time.monotonic() - started
    assert result["status"] == "failed"
    assert "did not answer within 1 seconds" in result["reason"]
    assert elapsed < 2.5


@needs_root
def test_permission_denied_for_a_user_without_access(short_dir):
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("runuser is not installed (Debian package util-linux)")
    os.chmod(short_dir, 0o755)
    path = os.path.join(short_dir, "root.sock")
    listener = _listening(path)
    try:
        os.chown(path, 0, 0)
        os.chmod(path, 0o660)
        script = (
            "import json, sys; sys.path.insert(0, sys.argv[1]);"
            "from ansible_collections.envparity.audit.plugins.module_utils.docker_engine import collect_engine;"
            "print(json.dumps(collect_engine(sys.argv[2], b'k' * 32, 5)))"
        )
        completed = subprocess.run(
            [runuser, "-u", "nobody", "--", SYSTEM_PYTHON, "-c", script, COLLECTIONS, "unix://" + path],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C"},
            check=False,
        )
    finally:
        listener.close()
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["status"] == "permission_denied"
    assert path in result["reason"]
    assert "group 'root'" in result["reason"]
    assert "Traceback" not in completed.stderr


# ---------------------------------------------------------------- a real dockerd


def _docker_cli():
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def api_get_raw(sock_path, path):
    """GET with HTTP/1.0 on a fresh connection: independent of the collector's client."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(sock_path)
        sock.sendall(("GET %s HTTP/1.0\r\nHost: docker\r\n\r\n" % path).encode())
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"200", head
    return body


def api_get(sock_path, path):
    return json.loads(api_get_raw(sock_path, path))


def _busybox_rootfs_tar():
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for directory in ("bin", "tmp", "data", "conf"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add("/bin/busybox", arcname="bin/busybox")
    return data.getvalue()


class Dockerd:
    def __init__(self, base, exec_root):
        self.base = base
        self.exec_root = exec_root
        self.sock = os.path.join(base, "d.sock")
        self.host = "unix://" + self.sock
        self.pidfile = os.path.join(base, "d.pid")
        self.cli_config = os.path.join(base, "cli")
        self.cli = _docker_cli()

    def docker(self, *args, stdin=None):
        completed = subprocess.run(
            [self.cli, "-H", self.host, *args],
            input=stdin,
            capture_output=True,
            timeout=60,
            env=dict(os.environ, DOCKER_CONFIG=self.cli_config),
            check=False,
        )
        assert completed.returncode == 0, completed.stderr.decode(errors="replace")
        return completed.stdout.decode().strip()


def _log_tail(path):
    try:
        return Path(path).read_text(errors="replace")[-1500:]
    except OSError:
        return ""


def _unmount_under(*prefixes):
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted(points, key=len, reverse=True):
        if point.startswith(prefixes):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _stop(daemon, process):
    with contextlib.suppress(AssertionError, subprocess.SubprocessError, OSError):
        names = daemon.docker("ps", "-aq")
        if names:
            daemon.docker("rm", "-f", "-v", *names.split())
    pid = None
    with contextlib.suppress(OSError, ValueError):
        pid = int(Path(daemon.pidfile).read_text().strip())
    if pid is None:
        pid = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        process.wait(25)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        process.wait(10)
    _unmount_under(daemon.base + "/", daemon.exec_root + "/")
    shutil.rmtree(daemon.exec_root, ignore_errors=True)
    shutil.rmtree(daemon.base, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd():
    """A dockerd of our own: socket, data root, exec root and pidfile in directories of its own."""
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    binary = shutil.which("dockerd") or ("/usr/sbin/dockerd" if os.path.exists("/usr/sbin/dockerd") else None)
    if binary is None:
        pytest.skip("dockerd is not installed (Debian package docker.io)")
    if _docker_cli() is None:
        pytest.skip("the docker CLI is not installed (Debian package docker.io)")
    if not os.path.exists("/bin/busybox"):
        pytest.skip("/bin/busybox is missing (Debian package busybox-static)")
    base = tempfile.mkdtemp(prefix="ep-dockerd-", dir="/tmp")
    daemon = Dockerd(base, "/run/ep-test-%d" % os.getpid())
    log = open(os.path.join(base, "dockerd.log"), "wb")  # noqa: SIM115 - kept open for the daemon's life
    process = subprocess.Popen(
        [
            binary,
            "--host", daemon.host,
            "--data-root", os.path.join(base, "data"),
            "--exec-root", daemon.exec_root,
            "--pidfile", daemon.pidfile,
            "--iptables=false",
            "--bridge=none",
            # Leave the host's sysctls alone (dockerd would turn IP forwarding on).
            "--ip-forward=false",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.skip("dockerd exited at start: %s" % _log_tail(log.name))
            with contextlib.suppress(OSError, AssertionError, ValueError, IndexError):
                api_get(daemon.sock, "/version")
                break
            if time.monotonic() > deadline:
                pytest.skip("dockerd did not answer within 30 s: %s" % _log_tail(log.name))
            time.sleep(0.1)
        daemon.docker("import", "-", "envparity-test:1", stdin=_busybox_rootfs_tar())
        os.makedirs(os.path.join(base, "conf"))
        daemon.docker(
            "run", "-d", "--name", "ep-web", "--network", "none",
            "--label", "com.docker.compose.project=eptest", "--label", "com.docker.compose.service=web",
            "-e", "API_TOKEN=" + CANARY, "-e", "DEBUG=0",
            "--memory", "64m", "--cpus", "0.5", "--restart", "unless-stopped",
            "envparity-test:1", "/bin/busybox", "sleep", "300",
        )  # fmt: skip
        daemon.docker(
            "create", "--name", "ep-data", "--network", "none",
            "-v", "ep-volume:/data", "-v", os.path.join(base, "conf") + ":/conf:ro",
            "envparity-test:1", "/bin/busybox", "true",
        )  # fmt: skip
        yield daemon
    finally:
        _stop(daemon, process)
        log.close()


def engine_state(sock_path):
    """What an audit must leave as it found it."""
    containers = []
    for summary in api_get(sock_path, "/containers/json?all=1"):
        inspect = api_get(sock_path, "/containers/%s/json" % summary["Id"])
        state = inspect["State"]
        containers.append(
            (
                summary["Id"],
                summary["Names"],
                summary["ImageID"],
                state["Status"],
                state["Pid"],
                state["StartedAt"],
                state["FinishedAt"],
                inspect["RestartCount"],
            )
        )
    images = [(i["Id"], sorted(i["RepoTags"] or []), i["Created"]) for i in api_get(sock_path, "/images/json?all=1")]
    networks = [(n["Id"], n["Name"]) for n in api_get(sock_path, "/networks")]
    volumes = [(v["Name"], v["CreatedAt"]) for v in api_get(sock_path, "/volumes")["Volumes"] or []]
    return sorted(containers), sorted(images), sorted(networks), sorted(volumes)


def test_real_engine_facts(dockerd):
    result = collect_engine(dockerd.host, KEY, 10)
    assert result["status"] == "ok", result["reason"]
    assert set(result) == ENGINE_FIELDS
    assert result["version"] and result["api_version"]
    assert result["truncated"] is False
    by_name = {c["name"]: c for c in result["containers"]}
    assert list(by_name) == ["ep-data", "ep-web"]
    web = by_name["ep-web"]
    assert set(web) == CONTAINER_FIELDS
    assert (web["project"], web["service"]) == ("eptest", "web")
    assert web["image"] == "envparity-test:1"
    assert web["image_id"].startswith("sha256:")
    assert web["state"] == "running"
    assert web["health"] is None
    assert web["memory"] == 64 * 1024 * 1024
    assert web["nano_cpus"] == 500_000_000
    assert web["restart_policy"] == "unless-stopped"
    assert web["privileged"] is False
    assert web["user"] is None
    assert web["networks"] == ["none"]
    assert web["ports"] == [] and web["mounts"] == []
    token = web["environment"]["API_TOKEN"]
    assert token["secret"] is True and token["display"] is None
    assert token["fp"] == fingerprint(KEY, CANARY)
    assert web["environment"]["DEBUG"]["display"] == "0"
    data = by_name["ep-data"]
    assert data["state"] == "created"
    assert data["project"] is None and data["service"] is None
    assert data["mounts"] == ["%s/conf:/conf:ro" % dockerd.base, "ep-volume:/data"]
    assert (data["memory"], data["nano_cpus"], data["restart_policy"]) == (None, None, "no")
    images = {tag: image for image in result["images"] for tag in image["tags"]}
    assert images["envparity-test:1"]["id"] == web["image_id"]
    assert CANARY not in json.dumps(result)


def test_real_engine_is_unchanged_by_the_audit(dockerd):
    before = engine_state(dockerd.sock)
    since = "%.9f" % time.time()
    first = collect_engine(dockerd.host, KEY, 10)
    second = collect_engine(dockerd.host, KEY, 10)
    until = "%.9f" % (time.time() + 0.001)
    after = engine_state(dockerd.sock)
    assert first["status"] == "ok"
    assert first == second
    assert before == after
    assert before[0] and before[1] and before[2] and before[3]
    # The engine's own journal: no container, image, network or volume event during the audit.
    events = api_get_raw(dockerd.sock, "/events?since=%s&until=%s" % (since, until))
    assert [json.loads(line) for line in events.splitlines() if line.strip()] == []


def test_real_engine_socket_gone_is_unreachable(dockerd):
    result = collect_engine("unix://" + dockerd.sock + ".missing", KEY, 2)
    assert result["status"] == "unreachable"
    assert dockerd.sock + ".missing" in result["reason"]


@pytest.mark.parametrize(
    ("healthcheck", "runs_one"),
    [
        ({"Test": ["CMD-SHELL", "curl -f http://localhost/ -H 'X-Token: %s'" % CANARY], "Interval": 30000000000}, True),
        ({"Test": ["CMD", "true"]}, True),
        ({"Test": ["NONE"]}, False),
        ({"Test": []}, False),
        ({}, False),
        (None, False),
        ("junk", False),
    ],
)
def test_the_effective_healthcheck_is_seen_its_command_redacted(healthcheck, runs_one):
    # Config.Healthcheck is the image's unless the container sets its own.
    container = normalize_container({"Name": "/app-web-1", "Config": {"Healthcheck": healthcheck}}, KEY)
    assert container["healthcheck"] is runs_one
    assert CANARY not in json.dumps(container)
    if runs_one:
        test = healthcheck["Test"]
        assert container["health_config"]["test_fp"] == fingerprint(KEY, json.dumps(test))
