"""The action glue that opens a run (drift_run) and hands the key to the module (drift_facts).

Real Ansible objects: a Task, a PlayContext and the local connection plugin.
"""

import json
import os
import stat

import pytest
from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import connection_loader
from ansible.template import Templar
from ansible.utils.display import Display

from ansible_collections.envparity.audit.plugins.action import drift_facts, drift_run
from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir

GROUPS = {"all": ["d", "p"], "dev": ["d"], "prod": ["p"]}


@pytest.fixture(autouse=True)
def no_key_left(tmp_path):
    """Keys of the runs a test opened go with it (they live outside tmp_path, in /dev/shm)."""
    yield
    for link in tmp_path.rglob("key"):
        if link.is_symlink():
            run_dir.discard_key(str(link.parent))


def action(module, args, pipelining=True, task_vars=None):
    task = Task()
    task.args = args
    task.action = "envparity.audit." + module.__name__.rsplit(".", 1)[1]
    play_context = PlayContext()
    connection = connection_loader.get("local", play_context)
    connection.set_option("pipelining", pipelining)
    loader = DataLoader()
    return module.ActionModule(task, connection, play_context, loader, Templar(loader, variables=task_vars or {}), None)


def run_vars(report_dir, **extra):
    """The variables drift_run reads (the audit role's), as a play would give them."""
    variables = {
        "groups": GROUPS,
        "playbook_dir": "/nonexistent",
        "drift_environments": ["dev", "prod"],
        "drift_report_dir": str(report_dir),
        "ansible_inventory_sources": ["i"],
    }
    variables.update(extra)
    return variables


def open_run(report_dir, **extra):
    task_vars = run_vars(report_dir, **extra)
    return action(drift_run, {}, task_vars=task_vars).run(task_vars=task_vars)


@pytest.fixture
def warnings(monkeypatch):
    shown = []
    monkeypatch.setattr(Display, "warning", lambda self, message, *args, **kwargs: shown.append(message))
    return shown


def test_a_run_is_opened_and_only_its_location_is_returned(tmp_path):
    result = open_run(tmp_path / "reports")
    key = run_dir.read_key(result["run_dir"])
    assert stat.S_IMODE(os.stat(os.path.join(result["run_dir"], "key")).st_mode) == 0o600
    assert key not in json.dumps(result)
    settings = run_dir.load_settings(result["run_dir"])
    assert settings["groups"] == GROUPS
    assert settings["areas"] == ["env", "git", "docker", "postgres", "endpoints", "health", "deps"]
    assert (settings["fail_on"], settings["host_timeout"]) == ("never", 300)
    assert result["run_dir"].startswith(str(tmp_path / "reports" / ".runs"))


@pytest.mark.parametrize(
    ("switch", "allow"),
    [
        ("DEFAULT_DEBUG", None),
        ("DEFAULT_KEEP_REMOTE_FILES", None),
        ("DEFAULT_DEBUG", "false"),
        ("DEFAULT_DEBUG", False),
    ],
)
def test_unsafe_debug_switches_are_refused_before_the_run_exists(tmp_path, monkeypatch, switch, allow):
    monkeypatch.setattr(C, switch, True)
    extra = {} if allow is None else {"drift_allow_unsafe_debug": allow}
    with pytest.raises(AnsibleActionFail, match="refusing to audit: ANSIBLE_.*drift_allow_unsafe_debug=true"):
        open_run(tmp_path / "reports", **extra)
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("allow", [True, "true", "yes"])
def test_a_forced_unsafe_debug_run_opens_with_a_loud_warning(tmp_path, monkeypatch, warnings, allow):
    monkeypatch.setattr(C, "DEFAULT_KEEP_REMOTE_FILES", True)
    result = open_run(tmp_path / "reports", drift_allow_unsafe_debug=allow)
    assert os.path.isdir(result["run_dir"])
    assert len(warnings) == 1
    assert warnings[0].startswith("ENVPARITY UNSAFE DEBUG FORCED (drift_allow_unsafe_debug): ANSIBLE_KEEP_REMOTE_FILES")


def test_no_warning_without_unsafe_switches(tmp_path, warnings):
    open_run(tmp_path / "reports", drift_allow_unsafe_debug=True)
    assert warnings == []


@pytest.mark.parametrize(
    ("pipelining", "forced", "gives_key"),
    [(True, False, True), (False, False, False), (False, True, True)],
)
def test_the_key_is_handed_over_only_to_a_pipelined_module(tmp_path, pipelining, forced, gives_key):
    _, path = run_dir.new_run(str(tmp_path))
    glue = action(drift_facts, {"run_dir": path}, pipelining=pipelining)
    task_vars = {"drift_allow_unsafe_debug": forced}
    if gives_key:
        assert glue._run_key(path, task_vars) == run_dir.read_key(path)
    else:
        with pytest.raises(AnsibleActionFail, match="pipelining is off for this host's connection"):
            glue._run_key(path, task_vars)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"drift_fail_on": "sometimes"}, "drift_fail_on"),
        ({"drift_environments": ["dev", "staging"]}, "staging"),
        ({"drift_areas": ["env", "dns"]}, "drift_areas names dns"),
        ({"ansible_run_tags": ["report"], "drift_areas": []}, "no area is selected"),
    ],
)
def test_bad_audit_settings_are_refused_before_the_run_exists(tmp_path, extra, message):
    with pytest.raises(AnsibleActionFail, match=message):
        open_run(tmp_path / "reports", **extra)
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("tags", "skip", "areas"),
    [
        (["all"], [], ["env", "git", "docker", "postgres", "endpoints", "health", "deps"]),
        (["env", "git"], [], ["env", "git"]),
        (["all"], ["docker"], ["env", "git", "postgres", "endpoints", "health", "deps"]),
    ],
)
def test_the_areas_follow_the_tags(tmp_path, tags, skip, areas):
    result = open_run(tmp_path / "reports", ansible_run_tags=tags, ansible_skip_tags=skip)
    assert result["areas"] == areas
    assert run_dir.load_settings(result["run_dir"])["areas"] == areas


def test_a_host_request_has_only_its_configured_areas_and_secrets_apart():
    variables = {
        "env": {"drift_env_files": []},
        "postgres": {
            "drift_postgres": [{"name": "app", "dbname": "a", "user": "u", "password": "pw-CANARY-123"}],
        },
    }
    areas, secrets = drift_facts.host_requests(["env", "postgres"], lambda area: variables[area])
    assert list(areas) == ["postgres"]
    assert "pw-CANARY-123" not in json.dumps(areas)
    assert secrets == {"postgres": {"app": "pw-CANARY-123"}}


@pytest.mark.parametrize(
    ("phase", "run_id", "message"),
    [
        ("all", "r1", "drift_run_id names a shared run: set drift_phase to collect or report"),
        ("collect", None, "drift_phase collect needs drift_run_id"),
        ("report", None, "drift_phase report needs drift_run_id"),
    ],
)
def test_a_phase_and_a_run_id_go_together(tmp_path, phase, run_id, message):
    with pytest.raises(drift_run.AuditConfigError, match=message):
        drift_run.open_run(str(tmp_path), {"phase": phase, "run_id": run_id, "areas": ["env"]})
    assert not os.listdir(tmp_path)


def test_the_phases_open_join_and_claim_one_run(tmp_path):
    settings = {"phase": "collect", "run_id": "wf-7", "areas": ["env"]}
    first = drift_run.open_run(str(tmp_path), settings)
    assert first == ("wf-7", str(tmp_path / "wf-7"))
    assert drift_run.open_run(str(tmp_path), settings) == first  # the next slice joins
    assert drift_run.open_run(str(tmp_path), dict(settings, phase="report")) == first
    assert (tmp_path / "wf-7" / "reported").exists()
    run_id, path = drift_run.open_run(str(tmp_path), dict(settings, phase="all", run_id=None))
    assert run_id != "wf-7" and os.path.dirname(path) == str(tmp_path)
