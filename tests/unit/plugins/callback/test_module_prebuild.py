"""The drift_summary callback builds drift_facts' payload ahead of the collect task, in a child
process, into Ansible's own module cache of the run: with real playbooks, Ansible's real module
builder and its cache. Each case runs in a fresh interpreter set up as ansible-playbook sets
itself up (the repository's ansible.cfg, the collection loader), since both are process-wide."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.envparity.audit.plugins.callback import drift_summary
from ansible_collections.envparity.audit.plugins.callback.drift_summary import FACTS_MODULE, prebuild_module, reap

ROOT = pathlib.Path(__file__).resolve().parents[4]
SETUP = """
import json, os, sys, time
from ansible import constants as C
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.playbook import Playbook
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar
from ansible.vars.manager import VariableManager
init_plugin_loader()
from ansible_collections.envparity.audit.plugins.callback import drift_summary

def load(path):
    loader = DataLoader()
    return Playbook.load(path, variable_manager=VariableManager(loader=loader), loader=loader)

def cached():
    cache = os.path.join(C.DEFAULT_LOCAL_TMP, "ansiballz_cache")
    names = os.listdir(cache) if os.path.isdir(cache) else []
    return sorted(n for n in names if "drift_facts" in n and not n.endswith(".lock"))
"""


def run(code, *args):
    """The code after SETUP in a fresh interpreter; its last stdout line as JSON."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(code), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_audit_playbook_runs_drift_facts_and_a_ping_playbook_does_not(tmp_path):
    ping = tmp_path / "ping.yml"
    ping.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    nested = tmp_path / "nested.yml"
    nested.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - block:\n        - ansible.builtin.ping:\n"
        "      always:\n        - envparity.audit.drift_facts:\n            run_dir: /x\n"
    )
    found = run(
        """
        print(json.dumps([drift_summary.runs_action(load(path), drift_summary.FACTS_ACTIONS) for path in sys.argv[1:]]))
        """,
        str(ROOT / "compare.yml"),
        str(ping),
        str(nested),
    )
    assert found == [True, False, True]


def test_the_child_fills_the_cache_the_collect_task_reads():
    found = run(
        """
        before = cached()
        pid = drift_summary.prebuild_module(drift_summary.FACTS_MODULE)
        _, status = os.waitpid(pid, 0)
        after = cached()
        # The collect task's build (its own interpreter and arguments) is then a cache hit: the
        # module finder never runs.
        def rebuilt(*args, **kwargs):
            raise AssertionError("rebuilt")
        module_common.recursive_finder = rebuilt
        started = time.monotonic()
        built = module_common.modify_module(
            module_name=drift_summary.FACTS_MODULE,
            module_path=module_loader.find_plugin(drift_summary.FACTS_MODULE),
            module_args={"areas": {}, "run_key": "00", "secrets": {}},
            templar=Templar(loader=DataLoader()),
            task_vars={"ansible_python_interpreter": "/usr/bin/python3"},
            module_compression=C.DEFAULT_MODULE_COMPRESSION,
        )
        print(json.dumps({
            "child": pid != os.getpid(), "exit": os.waitstatus_to_exitcode(status), "before": before,
            "after": after, "seconds": time.monotonic() - started, "shebang": built.shebang,
            "module": b"drift_facts" in built.b_module_data,
        }))
        """
    )
    assert (found["child"], found["exit"], found["before"]) == (True, 0, [])
    assert len(found["after"]) == 1
    assert (found["module"], found["shebang"]) == (True, "#!/usr/bin/python3")
    assert found["seconds"] < 1.0


def test_without_the_module_nothing_is_started_and_reaping_nothing_is_harmless(monkeypatch):
    monkeypatch.setattr(drift_summary.module_loader, "find_plugin", lambda name: None)
    assert prebuild_module(FACTS_MODULE) is None
    reap(None)


def test_a_child_still_running_at_the_end_is_stopped():
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    started = time.monotonic()
    reap(pid)
    assert time.monotonic() - started < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
