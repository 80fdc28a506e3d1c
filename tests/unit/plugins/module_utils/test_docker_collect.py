"""collect_docker: the compose side and the engine side run concurrently, and a failure of one never
hides the other."""

import json
import os
import threading
import time

import pytest

compose = pytest.importorskip(
    "ansible_collections.envparity.audit.plugins.module_utils.compose",
    reason="plugins/module_utils/compose.py (the compose collector) does not exist yet",
)

from ansible_collections.envparity.audit.plugins.module_utils import docker_collect  # noqa: E402
from ansible_collections.envparity.audit.plugins.module_utils.docker_collect import collect_docker  # noqa: E402

KEY = b"k" * 32
CANARY = "canary-" + "5f3a9c1e" * 3
ENGINE_FIELDS = {"status", "reason", "version", "api_version", "containers", "images", "truncated"}
STACK_FIELDS = {"project", "status", "reason", "files", "env_file", "services", "reader"}


def request(**overrides):
    base = {
        "project_dir": "/srv/app",
        "stacks": [
            {"name": "app", "files": ["docker/docker-compose.yml"], "env_file": None, "project": None},
            {"name": "monitoring", "files": ["monitoring/compose.yml"], "env_file": ".env", "project": "mon"},
        ],
        "docker_host": "unix:///run/test/docker.sock",
        "max_file_bytes": 4096,
        "timeout": 3,
        "compose_paths": ["/nonexistent/docker-compose"],
    }
    base.update(overrides)
    return base


def fake_stacks(stacks, project_dir, hmac_key, max_bytes, compose=None):
    return {
        stack["name"]: {
            "project": stack["name"],
            "status": "ok",
            "reason": None,
            "files": [],
            "env_file": None,
            "services": {},
            "reader": {"name": "built-in", "version": None, "note": compose},
        }
        for stack in stacks
    }


def fake_engine(docker_host, hmac_key, timeout):
    return {
        "status": "ok",
        "reason": None,
        "version": "20.10.24",
        "api_version": "1.41",
        "containers": [],
        "images": [],
        "truncated": False,
    }


def explode(*args):
    raise RuntimeError("boom with a value: " + CANARY)


def test_arguments_reach_both_sides(monkeypatch):
    calls = {}

    def stacks(*args):
        calls["stacks"] = args
        return fake_stacks(*args)

    def engine(*args):
        calls["engine"] = args
        return fake_engine(*args)

    monkeypatch.setattr(compose, "collect_stacks", stacks)
    monkeypatch.setattr(docker_collect, "collect_engine", engine)
    req = request()
    result = collect_docker(req, KEY)
    # No Compose where the request says: the built-in reader reads, and the stacks say why.
    assert calls["stacks"] == (
        req["stacks"],
        "/srv/app",
        KEY,
        4096,
        "Compose v2 is not installed at /nonexistent/docker-compose",
    )
    assert calls["engine"] == ("unix:///run/test/docker.sock", KEY, 3)
    assert set(result) == {"stacks", "engine"}
    assert sorted(result["stacks"]) == ["app", "monitoring"]
    assert result["engine"]["status"] == "ok"


def test_both_sides_run_at_the_same_time(monkeypatch):
    # Each side waits for the other: run one after the other, they would both time out.
    barrier = threading.Barrier(2, timeout=5)

    def stacks(*args):
        barrier.wait()
        return fake_stacks(*args)

    def engine(*args):
        barrier.wait()
        return fake_engine(*args)

    monkeypatch.setattr(compose, "collect_stacks", stacks)
    monkeypatch.setattr(docker_collect, "collect_engine", engine)
    started = time.monotonic()
    result = collect_docker(request(), KEY)
    assert time.monotonic() - started < 4
    assert result["engine"]["status"] == "ok"
    assert {stack["status"] for stack in result["stacks"].values()} == {"ok"}


def test_compose_failure_does_not_hide_the_engine(monkeypatch):
    monkeypatch.setattr(compose, "collect_stacks", explode)
    monkeypatch.setattr(docker_collect, "collect_engine", fake_engine)
    result = collect_docker(request(), KEY)
    assert result["engine"] == fake_engine(None, KEY, 1)
    assert sorted(result["stacks"]) == ["app", "monitoring"]
    for stack in result["stacks"].values():
        assert set(stack) == STACK_FIELDS
        assert stack["status"] == "failed"
        assert stack["reason"] == "RuntimeError in the compose collector."
    assert CANARY not in json.dumps(result)


def test_engine_failure_does_not_hide_the_stacks(monkeypatch):
    monkeypatch.setattr(compose, "collect_stacks", fake_stacks)
    monkeypatch.setattr(docker_collect, "collect_engine", explode)
    result = collect_docker(request(), KEY)
    assert {stack["status"] for stack in result["stacks"].values()} == {"ok"}
    engine = result["engine"]
    assert set(engine) == ENGINE_FIELDS
    assert engine["status"] == "failed"
    assert engine["reason"] == "RuntimeError in the Docker engine collector."
    assert engine["containers"] == [] and engine["images"] == []
    assert CANARY not in json.dumps(result)


def test_both_failing_are_both_reported(monkeypatch):
    monkeypatch.setattr(compose, "collect_stacks", explode)
    monkeypatch.setattr(docker_collect, "collect_engine", explode)
    result = collect_docker(request(), KEY)
    assert result["engine"]["status"] == "failed"
    assert {stack["status"] for stack in result["stacks"].values()} == {"failed"}


def test_a_slow_engine_does_not_delay_the_stacks_result(monkeypatch):
    finished = {}

    def stacks(*args):
        finished["stacks"] = time.monotonic()
        return fake_stacks(*args)

    def engine(*args):
        time.sleep(0.5)
        finished["engine"] = time.monotonic()
        return fake_engine(*args)

    monkeypatch.setattr(compose, "collect_stacks", stacks)
    monkeypatch.setattr(docker_collect, "collect_engine", engine)
    collect_docker(request(), KEY)
    assert finished["stacks"] < finished["engine"] - 0.3


def test_no_stacks_skips_the_compose_collector(monkeypatch):
    monkeypatch.setattr(compose, "collect_stacks", explode)
    monkeypatch.setattr(docker_collect, "collect_engine", fake_engine)
    result = collect_docker(request(stacks=[]), KEY)
    assert result["stacks"] == {}
    assert result["engine"]["status"] == "ok"


def test_defaults_for_missing_request_keys(monkeypatch):
    calls = {}

    def engine(*args):
        calls["engine"] = args
        return fake_engine(*args)

    monkeypatch.setattr(docker_collect, "collect_engine", engine)
    result = collect_docker({}, KEY)
    assert calls["engine"] == ("unix:///var/run/docker.sock", KEY, 10)
    assert result["stacks"] == {}


def test_real_sides_with_nothing_there(tmp_path):
    # The real compose collector on a missing file, the real engine collector on a missing socket.
    req = request(
        project_dir=str(tmp_path),
        stacks=[{"name": "app", "files": ["missing.yml"], "env_file": None, "project": None}],
        docker_host="unix://" + os.path.join(str(tmp_path), "nope.sock"),
    )
    result = collect_docker(req, KEY)
    assert result["engine"]["status"] == "unreachable"
    assert set(result["engine"]) == ENGINE_FIELDS
    assert list(result["stacks"]) == ["app"]
    assert result["stacks"]["app"]["status"] == "failed"


def test_a_stack_compose_must_read_is_not_compared_without_compose(tmp_path, monkeypatch):
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: nginx\n")
    monkeypatch.setattr(docker_collect, "collect_engine", fake_engine)
    req = {
        "project_dir": str(tmp_path),
        "stacks": [{"name": "app", "files": ["compose.yml"], "env_file": None, "project": None}],
        "compose_paths": ["/nonexistent/docker-compose"],
    }
    auto = collect_docker(dict(req, compose_reader="auto"), KEY)["stacks"]["app"]
    assert auto["status"] == "ok" and list(auto["services"]) == ["web"]
    assert auto["reader"] == {
        "name": "built-in",
        "version": None,
        "note": "Compose v2 is not installed at /nonexistent/docker-compose",
    }
    required = collect_docker(dict(req, compose_reader="compose"), KEY)["stacks"]["app"]
    assert required["status"] == "failed" and required["services"] == {}
    assert required["reason"] == (
        "Compose must read this stack (drift_docker_compose_reader: compose), but Compose v2 is not installed at "
        "/nonexistent/docker-compose."
    )
    builtin = collect_docker(dict(req, compose_reader="built-in"), KEY)["stacks"]["app"]
    assert builtin["reader"] == {"name": "built-in", "version": None, "note": None}
