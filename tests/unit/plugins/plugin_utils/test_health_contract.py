"""Hostile health facts (plugin_utils/health_contract.py through facts_contract.area_problem): a shape
the diff does not read is "could not collect" with a reason, never a traceback."""

import copy

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.health_collect import collect_health
from ansible_collections.envparity.audit.plugins.plugin_utils import health_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import area_problem
from tests.unit.plugins.plugin_utils.test_health_diff import cell, source


def test_real_and_synthetic_facts_validate(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("ERROR x 1\n")
    real = collect_health(
        {"paths": [{"name": "tmp", "path": str(tmp_path)}], "log_files": [{"name": "app", "path": str(log)}]}
    )
    assert area_problem("health", real) is None
    assert area_problem("health", cell(logs={"api": source({"a": ("ERROR <n>", 2)})})) is None


def _set(data, path, value):
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("host", "host", "sockets"), ["22"], "sockets[0] is not an object"),
        (("host", "host", "sockets"), [{"protocol": "tcp", "address": "x", "port": "22"}], "port is not a number"),
        (("host", "host", "filesystems"), {"data": {"status": "ok", "used_percent": "91%"}}, "used_percent"),
        (("host", "host", "cron"), {"entries": "0 3 * * *"}, "entries is not a list"),
        (("host", "host", "load"), "high", "load is not a list"),
        (("host", "host", "clock_synchronised"), "no", "clock_synchronised"),
        (("stacks", "shop", "services", "api", "restart_count"), None, "restart_count is not a number"),
        (("stacks", "shop", "services", "api"), ["ok"], "is not an object"),
        (("stacks", "shop", "logs"), {"api": {"status": "ok", "lines": 1, "levels": {}, "templates": {}}}, "no error"),
        (("stacks", "shop", "published"), "8080", "published is not a list"),
        (("settings", "thresholds"), {"disk_percent": "85"}, "is not a number or true/false"),
        (("settings",), None, "settings is not an object"),
        (("stacks", "shop", "services", "api", "exit_code"), "137", "exit_code is not a number"),
        (("stacks", "shop", "services", "api", "state"), 1, "state is not text"),
        (("other_containers", "running"), [{"name": 7}], "name is not text"),
        (("other_containers", "running"), [{"name": "x", "project": ["p"]}], "project is not text"),
        (("other_containers",), {"status": "ok"}, "other_containers has no running"),
        (("settings", "known_projects"), "ai_*", "known_projects is not a list"),
    ],
)
def test_hostile_shapes_are_reasons(path, value, words):
    data = copy.deepcopy(cell())
    _set(data, path, value)
    problem = area_problem("health", data)
    assert problem is not None and words in problem, problem


def test_a_missing_threshold_takes_the_default():
    bad = copy.deepcopy(cell())
    bad["host"]["host"]["filesystems"]["data"]["used_percent"] = 99.0
    del bad["settings"]["thresholds"]["disk_percent"]
    assert area_problem("health", bad) is None
    found = health_diff.diff(["dev", "prod"], {"dev": cell(), "prod": bad}, {"baseline": "dev", "production": {"prod"}})
    assert [f["check"] for f in found] == ["health.disk_full"]
