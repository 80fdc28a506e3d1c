"""Containers of the health area against a fake Docker engine on a unix socket: GET only, one stats
sample and one log window per container, concurrently, bounded (module_utils/health_containers.py)."""

import json
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import health_containers
from ansible_collections.envparity.audit.plugins.module_utils.health_collect import DEFAULTS
from ansible_collections.envparity.audit.plugins.module_utils.health_containers import (
    collect_stacks,
    demux,
    memory_used,
)
from tests.unit.plugins.module_utils.test_docker_engine import fake_engine, short_dir  # noqa: F401

SECRET = "sk-live-Zq8vN3xR7tLm2Kp9Wd4Hs6Jb"
PREFIX = "/v1.41"
API, BATCH, GONE = "a" * 12, "b" * 12, "c" * 12


def frame(stream, text):
    data = text.encode()
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def summary(ident, service, project="shop"):
    return {
        "Id": ident,
        "Created": 1767225600,  # 2026-01-01, as the list gives it
        "Names": ["/%s-%s-1" % (project, service)],
        "Labels": {"com.docker.compose.project": project, "com.docker.compose.service": service},
        "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}] if service == "api" else [],
    }


def inspect(running, oom=False, restarts=0, memory=0):
    return {
        "Created": "2026-01-01T00:00:00.123456789Z",
        "RestartCount": restarts,
        "Config": {"Tty": False},
        "HostConfig": {"Memory": memory},
        "State": {
            "Status": "running" if running else "exited",
            "Running": running,
            "OOMKilled": oom,
            "ExitCode": 0 if running else 137,
            "StartedAt": "2026-01-01T00:00:01Z",
            "Health": {"Status": "healthy", "Log": [{"ExitCode": 0, "Output": "ok token=%s" % SECRET}]},
        },
    }


STATS = {
    "memory_stats": {"usage": 110 * 1048576, "limit": 4 * 1024**3, "stats": {"total_inactive_file": 10 * 1048576}},
    "cpu_stats": {"cpu_usage": {"total_usage": 5 * 10**9}},
    "pids_stats": {"current": 7},
}
LOGS = frame(1, "INFO started\n") + frame(2, "ERROR charge 42 failed key=%s\n" % SECRET) + frame(1, "WARN slow\n")


class Routes(dict):
    """Exact paths, or a path's start for queries whose values vary (since=...)."""

    def get(self, path, default=None):
        if path in self:
            return self[path]
        for start, answer in self.items():
            if start.endswith("?") and path.startswith(start):
                return answer
        return default


def routes():
    return Routes(
        {
            "/version": (200, {"Version": "24.0.7", "ApiVersion": "1.41"}),
            PREFIX + "/containers/json?all=1": (
                200,
                [summary(API, "api"), summary(BATCH, "batch"), summary(GONE, "gone"), summary("d" * 12, "x", "other")],
            ),
            PREFIX + "/containers/%s/json" % API: (200, inspect(True, memory=128 * 1048576)),
            PREFIX + "/containers/%s/json" % BATCH: (200, inspect(False, oom=True, restarts=2)),
            PREFIX + "/containers/%s/json" % GONE: (404, {"message": "No such container"}),
            PREFIX + "/containers/%s/stats?stream=false&one-shot=true" % API: (200, STATS),
            PREFIX + "/containers/%s/logs?" % API: (200, LOGS),
            PREFIX + "/containers/%s/logs?" % BATCH: (200, b""),
        }
    )


def request(host, **extra):
    return dict(DEFAULTS, docker_host=host, stacks=[{"name": "shop", "project": "shop"}], **extra)


def test_a_stack_is_sampled_with_get_requests_only(short_dir):  # noqa: F811
    with fake_engine(short_dir, routes()) as (host, server):
        found = collect_stacks(request(host))
    result = found["stacks"]
    stack = result["shop"]
    assert stack["status"] == "ok" and stack["project"] == "shop"
    assert sorted(stack["services"]) == ["api", "batch"]  # gone was removed meanwhile; x is another project's
    api, batch = stack["services"]["api"], stack["services"]["batch"]
    assert api["memory_used"] == 100 * 1048576 and api["memory_percent"] == 78.1
    assert api["pids"] == 7 and api["cpu_share"] is not None and api["health"] == "healthy"
    assert batch["oom_killed"] is True and batch["restart_count"] == 2 and batch["exit_code"] == 137
    assert batch["memory_percent"] is None and batch["pids"] is None
    assert stack["published"] == ["8080/tcp"]
    logs = stack["logs"]["api"]
    assert logs["levels"] == {"error": 1, "warning": 1, "info": 1, "debug": 0, "other": 0}
    assert [entry["template"] for entry in logs["templates"].values()] == ["ERROR charge <n> failed key=<secret>"]
    assert SECRET not in json.dumps(result)
    # GET only; no stats asked of the stopped container; logs bounded by tail and since
    assert {method for method, _ in server.requests} == {"GET"}
    paths = [path for _, path in server.requests]
    assert not any("/%s/stats" % BATCH in path for path in paths)
    log_path = next(path for path in paths if "/%s/logs?" % API in path)
    assert "tail=1000" in log_path and "since=" in log_path


def test_the_engine_down_is_every_stacks_status(short_dir):  # noqa: F811
    result = collect_stacks(request("unix://%s/nothing.sock" % short_dir))
    shop = result["stacks"]["shop"]
    assert shop["status"] == "unreachable" and "does not exist" in shop["reason"]
    assert result["others"]["status"] == "unreachable" and result["others"]["running"] == []


def test_a_slow_container_says_so_and_the_others_report(short_dir, monkeypatch):  # noqa: F811
    monkeypatch.setattr(health_containers, "CALL_TIMEOUT", 0.5)
    slow = routes()
    real_get = slow.get

    def get(path, default=None):
        if "/%s/stats" % API in path:
            time.sleep(2)
        return real_get(path, default)

    slow.get = get
    with fake_engine(short_dir, slow) as (host, _):
        started = time.monotonic()
        result = collect_stacks(request(host))["stacks"]
        elapsed = time.monotonic() - started
    api = result["shop"]["services"]["api"]
    assert api["status"] == "failed" and "did not answer within" in api["reason"]
    assert result["shop"]["services"]["batch"]["status"] == "ok"
    assert elapsed < 2


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (frame(1, "a\n") + frame(2, "b\nc"), [b"a", b"b", b"c"]),
        (b"plain tty output\nsecond", [b"plain tty output", b"second"]),
        (frame(1, "cut short")[:-3], [b"cut sh"]),
        (b"", [b""]),
    ],
)
def test_demux(data, lines):
    assert demux(data) == lines


def test_memory_used_as_docker_stats_counts_it():
    assert memory_used({"memory_stats": {"usage": 100, "stats": {"inactive_file": 30}}}) == 70  # cgroup v2
    assert memory_used({"memory_stats": {"usage": 100, "stats": {}}}) == 100
    assert memory_used({}) is None


def test_the_running_containers_of_no_configured_stack_are_listed(short_dir):  # noqa: F811
    listed = routes()
    loose = {"Id": "e" * 12, "Names": ["/adminer"], "Labels": {}, "State": "running", "Image": "adminer:4"}
    other = dict(summary("d" * 12, "x", "other"), State="running", Image="other:1")
    stopped = dict(summary("f" * 12, "y", "other"), State="exited")
    mine = dict(summary(API, "api"), State="running")
    listed[PREFIX + "/containers/json?all=1"] = (200, [mine, summary(BATCH, "batch"), loose, other, stopped])
    with fake_engine(short_dir, listed) as (host, _):
        result = collect_stacks(request(host))
    assert result["others"] == {
        "status": "ok",
        "reason": None,
        "running": [
            {"name": "adminer", "project": None, "service": None, "image": "adminer:4"},
            {"name": "other-x-1", "project": "other", "service": "x", "image": "other:1"},
        ],
        "truncated": False,
    }
    assert collect_stacks(dict(request(host), stacks=[])) == {"stacks": {}, "others": None}


def test_a_hostile_list_is_bounded():
    many = [
        {"Names": ["/n%04d" % index + "x" * 500], "Labels": {"com.docker.compose.project": 7}, "State": "running"}
        for index in range(health_containers.MAX_OTHER_CONTAINERS + 5)
    ]
    found = health_containers.other_containers(many + ["junk", None], {"shop"})
    assert found["truncated"] is True and len(found["running"]) == health_containers.MAX_OTHER_CONTAINERS
    first = found["running"][0]
    assert len(first["name"]) == health_containers.MAX_NAME_CHARS and first["project"] is None


NOW = 1796616000  # 2026-12-07T04:00:00Z


@pytest.mark.parametrize(
    ("state", "window"),
    [
        # up for 10 min: the logs since its start, 600 s (a previous run's lines are not this run's)
        ({"Running": True, "StartedAt": "2026-12-07T03:50:00.5Z"}, (NOW - 600, 600)),
        # up for a day: the last hour
        ({"Running": True, "StartedAt": "2026-12-06T04:00:00Z"}, (NOW - 3600, 3600)),
        # a job that ran from 03:20 to 03:30: those 10 minutes
        (
            {"Running": False, "StartedAt": "2026-12-07T03:20:00Z", "FinishedAt": "2026-12-07T03:30:00Z"},
            (NOW - 2400, 600),
        ),
        # ended before the window: no time covered
        (
            {"Running": False, "StartedAt": "2026-12-07T01:00:00Z", "FinishedAt": "2026-12-07T02:00:00Z"},
            (NOW - 3600, None),
        ),
        # the engine's zero time, or none: the whole window
        (
            {"Running": False, "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"},
            (NOW - 3600, 3600),
        ),
        ({}, (NOW - 3600, 3600)),
    ],
)
def test_the_log_window_is_the_current_runs(state, window):
    assert health_containers.run_window(state, NOW, 3600) == window


def test_a_record_says_when_the_last_run_ended():
    record = health_containers.container_record(
        dict(inspect(False), State=dict(inspect(False)["State"], FinishedAt="2026-12-07T04:00:00.123Z")), {}, NOW
    )
    assert record["exit_code"] == 137 and record["finished_at"] == NOW
    assert record["started_at"] == 1767225601
