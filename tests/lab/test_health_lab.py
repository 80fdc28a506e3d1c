"""The lab's health area (lab/health_area.py), run as root against the real lab on this machine:
each planted item is there as the manifest says, and the collector finds it (the collector's
own reading is the oracle where the kernel is: statvfs, /proc/net/tcp, the engine's state)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from tests.lab.labtest import CANARIES, MANIFEST, REPO, engine_get, labctl  # noqa: E402

sys.path.insert(0, str(REPO / "lab"))
import health_area  # noqa: E402

PROD_OPS = "ai_assistant_ops"
DEV_OPS = "personal_assistant_ops"


def state(name):
    found = engine_get("/containers/%s/json" % name)
    assert found is not None, name
    return found


def test_status_reports_the_health_parts():
    result = labctl("status")
    for name in ("health debug", "health uploads", "health stacks"):
        line = next(line for line in result.stdout.splitlines() if name in line)
        assert line.split()[0] == "ok", line


def test_prod_batch_was_oom_killed_and_flaky_restarted_twice():
    batch = state("%s-batch-1" % PROD_OPS)
    assert batch["State"]["OOMKilled"] is True and batch["State"]["Status"] == "exited"
    flaky = state("%s-flaky-1" % PROD_OPS)
    assert flaky["RestartCount"] == 2 and flaky["State"]["ExitCode"] == 1
    # dev's are the same services, done without trouble
    assert state("%s-batch-1" % DEV_OPS)["State"]["OOMKilled"] is False
    assert state("%s-flaky-1" % DEV_OPS)["RestartCount"] == 0


def test_an_orphan_of_an_undeclared_project_runs():
    orphan = state("%s-shell-1" % health_area.ORPHAN_PROJECT)
    assert orphan["State"]["Running"] is True
    assert orphan["Config"]["Labels"]["com.docker.compose.project"] == health_area.ORPHAN_PROJECT


def test_the_apis_have_run_long_enough_for_a_rate():
    for project in (PROD_OPS, DEV_OPS):
        assert health_area._up_for("%s-api-1" % project) >= health_area.RATE_SECONDS


def test_prod_worker_holds_most_of_its_memory_limit():
    stats = engine_get("/containers/%s-worker-1/stats?stream=false&one-shot=true" % PROD_OPS)
    memory = stats["memory_stats"]
    used = memory["usage"] - memory["stats"].get("total_inactive_file", memory["stats"].get("inactive_file", 0))
    assert used >= 0.9 * state("%s-worker-1" % PROD_OPS)["HostConfig"]["Memory"]


def test_prod_api_logs_the_payment_error_and_dev_does_not():
    def logs(name):
        return engine_get("/containers/%s/logs?stdout=1&stderr=1&tail=200" % name)

    assert "ERROR payment" in logs("%s-api-1" % PROD_OPS)
    assert "ERROR payment" not in logs("%s-api-1" % DEV_OPS)
    assert "ERROR upstream timeout" in logs("%s-api-1" % DEV_OPS) or "INFO request ok" in logs("%s-api-1" % DEV_OPS)


def test_prods_log_file_holds_the_canaries_in_error_lines():
    canaries = json.loads(CANARIES.read_text())
    text = health_area.LOG_FILES["prod"].read_text()
    for name in ("health.prod.log_password", "health.prod.log_token", "health.prod.log_url_password"):
        line = next(line for line in text.splitlines() if canaries[name] in line)
        assert " ERROR " in line


def test_the_uploads_tmpfs_is_nearly_full():
    info = os.statvfs(health_area.UPLOADS["prod"])
    assert (info.f_blocks - info.f_bfree) / info.f_blocks >= 0.85


def test_the_debug_server_listens_as_deploy():
    with socket.create_connection(("127.0.0.1", health_area.DEBUG_PORT), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert sock.recv(12).startswith(b"HTTP/1.0 200")


def test_prod_has_a_cron_entry_dev_has_not():
    prod = (health_area.CRON_DIRS["prod"] / "app").read_text()
    dev = (health_area.CRON_DIRS["dev"] / "app").read_text()
    assert health_area.CRON_PROD_ONLY in prod and health_area.CRON_PROD_ONLY not in dev


def test_the_manifest_lists_the_health_items_and_no_canary():
    planted = [item for item in json.loads(MANIFEST.read_text())["planted"] if item["area"] == "health"]
    assert planted == health_area.planted() and len(planted) == 15
    text = MANIFEST.read_text()
    assert not [value for value in json.loads(CANARIES.read_text()).values() if value in text]


def test_the_collector_reads_the_planted_state():
    """The host-side collector on prod's paths (as root here): every planted item is in its facts."""
    sys.path.insert(0, str(REPO / "collections"))
    from ansible_collections.envparity.audit.plugins.module_utils.health_collect import collect_health

    facts = collect_health(
        {
            "paths": [{"name": "uploads", "path": str(health_area.UPLOADS["prod"])}],
            "stacks": [{"name": "ops", "project": PROD_OPS}],
            "log_files": [{"name": "app", "path": str(health_area.LOG_FILES["prod"])}],
            "cron_paths": [str(health_area.CRON_DIRS["prod"])],
            "docker_host": "unix:///run/envparity-lab/docker.sock",
        }
    )
    host = facts["host"]["host"]
    assert host["filesystems"]["uploads"]["used_percent"] >= 85
    assert any(item["port"] == health_area.DEBUG_PORT for item in host["sockets"])
    assert " ".join(health_area.CRON_PROD_ONLY.split()) in host["cron"]["entries"]
    services = facts["stacks"]["ops"]["services"]
    assert services["batch"]["oom_killed"] and services["flaky"]["restart_count"] == 2
    assert services["batch"]["exit_code"] == 137 and services["flaky"]["exit_code"] == 1
    assert services["batch"]["finished_at"] is not None
    others = {item["name"]: item for item in facts["other_containers"]["running"]}
    assert others["%s-shell-1" % health_area.ORPHAN_PROJECT]["project"] == health_area.ORPHAN_PROJECT
    assert not any(item["project"] == PROD_OPS for item in others.values())
    api = facts["stacks"]["ops"]["logs"]["api"]
    assert api["span_seconds"] >= health_area.RATE_SECONDS and api["levels"]["error"] > 0
    assert services["worker"]["memory_percent"] >= 90
    assert len(facts["log_files"]["app"]["templates"]) == 4
    assert Path(health_area.LOG_FILES["prod"]).stat().st_size > 0


def test_another_users_socket_owner_is_not_visible_to_deploy():
    """Prod's audit runs as deploy: the owner of root's sshd socket cannot be seen (None), the debug
    server deploy runs can."""
    code = (
        "import json, sys; sys.path.insert(0, %r); "
        "from ansible_collections.envparity.audit.plugins.module_utils.health_host import listening_sockets; "
        "print(json.dumps(listening_sockets()))" % str(REPO / "collections")
    )
    proc = subprocess.run(
        ["runuser", "-u", "deploy", "--", "/usr/bin/python3", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    sockets = {item["port"]: item["process"] for item in json.loads(proc.stdout)}
    assert sockets[health_area.DEBUG_PORT] == "python3"
    assert sockets[2222] is None  # the lab's sshd, root's
