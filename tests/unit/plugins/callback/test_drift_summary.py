"""The drift_summary callback with real Ansible objects (hosts, tasks, task results, stats) and a
real run directory: failures are recorded for the report, a report is written when no host
remained to write it, and the summary is printed."""

import json
import os

import pytest
from ansible.executor.stats import AggregateStats
from ansible.executor.task_result import CallbackTaskResult
from ansible.inventory.host import Host
from ansible.playbook.task import Task

from ansible_collections.envparity.audit.plugins.callback.drift_summary import CallbackModule
from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import REPORT_TEMPLATE

REQUEST = {"env": {"project_dir": None, "files": [{"name": "app", "path": "a.env", "template": None}], "max_bytes": 9}}


def task_result(host, action, data):
    task = Task()
    task.action = action
    task.name = action.rsplit(".", 1)[-1]
    return CallbackTaskResult(Host(host), task, data, {})


@pytest.fixture
def opened(tmp_path):
    settings = {
        "environments": ["dev", "prod"],
        "production_environments": ["prod"],
        "groups": {"dev": ["d"], "prod": ["p"]},
        "rules_files": [],
        "fail_on": "high",
        "report_dir": str(tmp_path / "reports"),
        "template": REPORT_TEMPLATE,
        "inventory": "test",
        "keep_run_dir": False,
        "areas": ["env"],
    }
    _, path = run_dir.new_run(str(tmp_path / "reports" / ".runs"), settings)
    for host in ("d", "p"):
        run_dir.store_request(path, host, REQUEST)
    yield path
    run_dir.discard_key(path)


@pytest.fixture
def shown(monkeypatch):
    lines = []
    callback = CallbackModule()
    monkeypatch.setattr(callback._display, "display", lambda message, *a, **k: lines.append(message))
    monkeypatch.setattr(callback._display, "warning", lambda message, *a, **k: lines.append("WARNING " + message))
    return callback, lines


def test_an_unreachable_host_is_recorded_with_its_bounded_reason(opened, shown):
    callback, _ = shown
    callback.v2_runner_on_ok(task_result("d", "envparity.audit.drift_run", {"run_dir": opened}))
    message = "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 2999: Connection refused"
    callback.v2_runner_on_unreachable(task_result("p", "envparity.audit.drift_facts", {"msg": message}))
    assert run_dir.load_error(opened, "p") == {
        "host": "p",
        "status": "unreachable",
        "task": "drift_facts",
        "reason": message,
    }
    assert run_dir.load_error(opened, "d") is None


def test_a_failure_before_the_run_is_opened_records_nothing(opened, shown):
    callback, _ = shown
    callback.v2_runner_on_failed(task_result("p", "envparity.audit.drift_facts", {"msg": "boom"}))
    assert run_dir.load_error(opened, "p") is None


def test_with_every_host_gone_the_callback_writes_the_report_and_the_summary(opened, shown, tmp_path):
    callback, lines = shown
    callback.v2_runner_on_ok(task_result("d", "envparity.audit.drift_run", {"run_dir": opened}))
    for host in ("d", "p"):
        callback.v2_runner_on_unreachable(task_result(host, "envparity.audit.drift_facts", {"msg": "down"}))
    callback.v2_playbook_on_stats(AggregateStats())
    report = json.loads((tmp_path / "reports" / "latest.json").read_text())
    assert [(c["host"], c["status"]) for c in report["columns"]] == [("d", "unreachable"), ("p", "unreachable")]
    assert {f["check"] for f in report["findings"]} == {"collect.failed", "audit.not_compared"}
    assert any("the report was written by the callback" in line for line in lines)
    assert any(line.startswith("envparity: ") and "unexpected finding(s)" in line for line in lines)
    assert any("gate FAILED" in line for line in lines)
    assert not os.path.exists(opened)


def test_a_playbook_that_is_no_audit_prints_nothing(shown):
    callback, lines = shown
    callback.v2_runner_on_ok(task_result("x", "ansible.builtin.ping", {"ping": "pong"}))
    callback.v2_playbook_on_stats(AggregateStats())
    assert lines == []
