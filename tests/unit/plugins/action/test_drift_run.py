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


def action(module, args, pipelining=True):
    task = Task()
    task.args = args
    task.action = "envparity.audit." + module.__name__.rsplit(".", 1)[1]
    play_context = PlayContext()
    connection = connection_loader.get("local", play_context)
    connection.set_option("pipelining", pipelining)
    return module.ActionModule(task, connection, play_context, DataLoader(), None)


def run_args(base_dir, **extra):
    args = {
        "base_dir": str(base_dir),
        "environments": ["dev", "prod"],
        "production_environments": ["prod"],
        "rules_files": [],
        "fail_on": "never",
        "report_dir": "/r",
        "template": "/t",
        "inventory": "i",
        "keep_run_dir": False,
    }
    args.update(extra)
    return args


@pytest.fixture
def warnings(monkeypatch):
    shown = []
    monkeypatch.setattr(Display, "warning", lambda self, message, *args, **kwargs: shown.append(message))
    return shown


def test_a_run_is_opened_and_only_its_location_is_returned(tmp_path):
    result = action(drift_run, run_args(tmp_path / "runs")).run(task_vars={"groups": GROUPS})
    key = run_dir.read_key(result["run_dir"])
    assert stat.S_IMODE(os.stat(os.path.join(result["run_dir"], "key")).st_mode) == 0o600
    assert key not in json.dumps(result)
    assert run_dir.load_settings(result["run_dir"])["groups"] == GROUPS


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
    extra = {} if allow is None else {"allow_unsafe_debug": allow}
    with pytest.raises(AnsibleActionFail, match="refusing to audit: ANSIBLE_.*drift_allow_unsafe_debug=true"):
        action(drift_run, run_args(tmp_path / "runs", **extra)).run(task_vars={"groups": GROUPS})
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("allow", [True, "true", "yes"])
def test_a_forced_unsafe_debug_run_opens_with_a_loud_warning(tmp_path, monkeypatch, warnings, allow):
    monkeypatch.setattr(C, "DEFAULT_KEEP_REMOTE_FILES", True)
    args = run_args(tmp_path / "runs", allow_unsafe_debug=allow)
    result = action(drift_run, args).run(task_vars={"groups": GROUPS})
    assert os.path.isdir(result["run_dir"])
    assert len(warnings) == 1
    assert warnings[0].startswith("ENVPARITY UNSAFE DEBUG FORCED (drift_allow_unsafe_debug): ANSIBLE_KEEP_REMOTE_FILES")


def test_no_warning_without_unsafe_switches(tmp_path, warnings):
    action(drift_run, run_args(tmp_path / "runs", allow_unsafe_debug=True)).run(task_vars={"groups": GROUPS})
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
