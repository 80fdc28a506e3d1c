"""The docker area end to end: compose stacks and the lab's Docker engine, through ansible-runner."""

import json
import pathlib
import shutil
import socket
import subprocess

import jsonschema
import pytest

from tests.lab import docker_oracle

from .test_env_audit import SCHEMA, identities

DOCKER = ["docker", "-H", "unix:///run/envparity-lab/docker.sock"]
BOMB = """x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
x-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
x-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
x-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
x-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
x-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
x-g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
x-h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
services:
  web:
    image: lab/web:1.0
    labels: *h
"""


def engine_state():
    """Everything the audit could change in the engine, with ids and start times."""

    def lines(*args):
        return subprocess.run(DOCKER + list(args), check=True, capture_output=True, text=True).stdout.splitlines()

    containers = lines("ps", "-aq")
    inspected = (
        json.loads(subprocess.run(DOCKER + ["inspect", *containers], check=True, capture_output=True, text=True).stdout)
        if containers
        else []
    )
    return {
        "containers": sorted(
            (c["Id"], c["Name"], c["State"]["Status"], c["State"]["StartedAt"], c["RestartCount"], c["Image"])
            for c in inspected
        ),
        "images": sorted(lines("images", "-q", "--no-trunc")),
        "networks": sorted(lines("network", "ls", "-q")),
        "volumes": sorted(lines("volume", "ls", "-q")),
    }


def test_docker_recall_and_precision_against_compose_and_the_engine(audit, lab):
    """The report's docker findings against an oracle from real Compose v2 and the Engine API
    (tests/lab/docker_oracle.py), both ways."""
    result = audit(cmdline="--tags docker")
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert report["areas"] == ["docker"]
    found = {identity[1:5] for identity in identities(report["findings"])}
    shown = docker_oracle.lab_findings()
    assert sorted(shown - found) == [], "compose or the engine shows it, the report misses it (recall)"
    assert sorted(found - shown) == [], "the report has it, compose and the engine do not show it (precision)"
    mismatch = next(f for f in report["findings"] if f["check"] == "docker.image_mismatch")
    assert mismatch["values"]["prod"] == "declared lab/web:1.0, running lab/web:0.9"
    assert "## Area: docker" in result.markdown


def test_the_audit_changes_nothing_in_the_engine(audit):
    before = engine_state()
    result = audit(cmdline="--tags docker")
    assert result.rc == 0, result.stdout
    assert engine_state() == before


COMPOSE_PLUGIN = pathlib.Path("/usr/local/lib/docker/cli-plugins/docker-compose")
# What a healthcheck makes the engine report on its own, every interval: not the audit's doing.
HEALTH_ACTIONS = ("exec_create: ", "exec_start: ", "exec_die", "health_status")


def engine_events(since, until):
    """The engine's events between two of its own timestamps, healthchecks' execs left out."""
    output = subprocess.run(
        DOCKER + ["events", "--since", since, "--until", until, "--format", "{{json .}}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    events = [json.loads(line) for line in output.splitlines() if line.strip()]
    return [(e.get("Type"), e.get("Action")) for e in events if not (e.get("Action") or "").startswith(HEALTH_ACTIONS)]


def engine_now():
    return subprocess.run(
        DOCKER + ["info", "--format", "{{.SystemTime}}"], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_compose_reads_every_stack_where_installed_and_both_readers_agree(audit):
    """The lab installs Compose v2 as Docker's CLI plugin: the audit reads every stack with it
    (the report says so per stack and host), starts and changes nothing in the engine while it
    runs, and finds exactly what the built-in reader finds."""
    assert COMPOSE_PLUGIN.is_file(), "the lab installs Compose at %s (lab/docker_area.py)" % COMPOSE_PLUGIN
    version = subprocess.run(
        [str(COMPOSE_PLUGIN), "version", "--short"], check=True, capture_output=True, text=True
    ).stdout
    since = engine_now()
    with_compose = audit(cmdline="--tags docker")
    events = engine_events(since, engine_now())
    assert with_compose.rc == 0, with_compose.stdout
    jsonschema.validate(with_compose.report, SCHEMA)
    assert events == [], "the audit made the engine do something"
    (table,) = with_compose.report["tables"]["docker"]["tables"]
    assert table["title"] == "Compose files read by"
    assert len(table["rows"]) >= 3
    for row in table["rows"]:
        assert row[1:] == ["Compose %s" % version.strip().lstrip("v")] * 2, row
    builtin = audit(cmdline="--tags docker", extravars={"drift_docker_compose_reader": "built-in"})
    assert builtin.rc == 0, builtin.stdout
    assert {row[1] for row in builtin.report["tables"]["docker"]["tables"][0]["rows"]} == {"built-in reader"}

    def shown(report):
        findings = report["findings"]
        return sorted((f["subject"], f["key"], f["check"], json.dumps(f["values"], sort_keys=True)) for f in findings)

    assert shown(with_compose.report) == shown(builtin.report)
    assert "### Compose files read by" in with_compose.markdown


@pytest.fixture
def stopped_engine_socket(tmp_path_factory):
    """A socket file nobody listens on: what a stopped dockerd leaves behind."""
    base = pathlib.Path("/tmp") / ("envparity-dk-" + tmp_path_factory.getbasetemp().name)
    base.mkdir(mode=0o755, exist_ok=True)
    path = base / "docker.sock"
    if path.exists():
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.close()
    path.chmod(0o666)
    yield path
    shutil.rmtree(base, ignore_errors=True)


def test_engine_stopped_is_a_clear_status_and_the_rest_stands(audit, stopped_engine_socket):
    result = audit(extravars={"drift_docker_host": "unix://%s" % stopped_engine_socket})
    assert result.rc == 0, result.stdout
    report = result.report
    # stack app (stack py, lab/deps_area.py's Python service, says the same)
    engine = [f for f in report["findings"] if f["check"] == "docker.engine_status" and f["subject"] == "app"]
    assert [(f["key"], f["kind"], f["environments"]) for f in engine] == [("@engine", "unknown", ["dev", "prod"])]
    assert engine[0]["values"] == {"dev": "unreachable", "prod": "unreachable"}
    assert str(stopped_engine_socket) in engine[0]["message"]
    # declared state is still compared, and the other areas report as usual
    assert any(f["check"] == "docker.declared_changed" for f in report["findings"])
    assert {f["area"] for f in report["findings"]} >= {"env", "git", "docker"}
    assert not any(f["check"] in ("docker.not_running", "docker.orphan") for f in report["findings"])
    assert "Traceback" not in result.stdout


@pytest.fixture
def hostile_compose(tmp_path_factory):
    base = pathlib.Path("/tmp") / ("envparity-compose-" + tmp_path_factory.getbasetemp().name)
    base.mkdir(mode=0o755, exist_ok=True)
    (base / "bomb.yml").write_text(BOMB)
    (base / "malformed.yml").write_text("services:\n  web:\n    image: [unclosed\n")
    for path in base.iterdir():
        path.chmod(0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_yaml_bomb_and_malformed_compose_files(audit, hostile_compose):
    stacks = [
        {"name": "bomb", "files": [str(hostile_compose / "bomb.yml")]},
        {"name": "broken", "files": [str(hostile_compose / "malformed.yml")]},
    ]
    result = audit(cmdline="--tags docker", extravars={"drift_compose": stacks})
    assert result.rc == 0, result.stdout
    status = {f["subject"]: f for f in result.report["findings"] if f["check"] == "docker.stack_status"}
    assert set(status) == {"bomb", "broken"}
    assert status["bomb"]["values"]["prod"].endswith("unsafe YAML (bomb)")
    assert status["broken"]["values"]["dev"].endswith("malformed YAML")
    assert "Traceback" not in result.stdout
