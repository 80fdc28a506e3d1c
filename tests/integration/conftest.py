"""Integration fixtures: the real lab, and audits run through ansible-runner."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import ansible_runner
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB_STATE = pathlib.Path("/var/lib/envparity-lab")
LABCTL = ROOT / "lab" / "labctl"
# ansible-runner starts ansible-playbook from PATH: use the one beside this interpreter.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


class Audit:
    """One ansible-runner run of compare.yml, with everything it wrote."""

    def __init__(self, runner, report_dir, private_dir):
        self.runner = runner
        self.rc = runner.rc
        self.report_dir = report_dir
        self.private_dir = private_dir
        self.stdout = runner.stdout.read() if runner.stdout else ""

    @property
    def report(self):
        return json.loads((self.report_dir / "latest.json").read_text())

    @property
    def markdown(self):
        return (self.report_dir / "latest.md").read_text()

    def findings(self, expected=None):
        return [f for f in self.report["findings"] if expected is None or f["expected"] is expected]

    def events(self):
        return list(self.runner.events)

    def task_results(self):
        """(host, task, changed) of every task result event."""
        found = []
        for event in self.events():
            data = event.get("event_data", {})
            if event.get("event") in ("runner_on_ok", "runner_on_failed"):
                found.append((data.get("host"), data.get("task"), bool(data.get("res", {}).get("changed"))))
        return found


@pytest.fixture(scope="session")
def lab():
    """The lab, up, with its manifest."""
    subprocess.run([sys.executable, str(LABCTL), "up"], check=True, capture_output=True)
    return {
        "manifest": json.loads((LAB_STATE / "manifest.json").read_text()),
        "state": LAB_STATE,
    }


@pytest.fixture(scope="session")
def canaries():
    """Fresh canary secrets planted for this test run (labctl replant; it waits for health)."""
    subprocess.run([sys.executable, str(LABCTL), "replant"], check=True, capture_output=True)
    return json.loads((LAB_STATE / "canaries.json").read_text())


@pytest.fixture
def audit(tmp_path, lab):
    """Run compare.yml against the lab; returns an Audit."""

    def run(cmdline="", extravars=None, envvars=None, verbosity=0):
        report_dir = tmp_path / "reports"
        private_dir = tmp_path / "runner"
        if private_dir.exists():
            shutil.rmtree(private_dir)
        private_dir.mkdir(parents=True)
        variables = {"drift_report_dir": str(report_dir)}
        variables.update(extravars or {})
        environment = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        environment.update(envvars or {})
        runner = ansible_runner.run(
            private_data_dir=str(private_dir),
            project_dir=str(ROOT),
            playbook=str(ROOT / "compare.yml"),
            extravars=variables,
            cmdline=cmdline,
            envvars=environment,
            verbosity=verbosity,
            quiet=True,
        )
        return Audit(runner, report_dir, private_dir)

    return run


def tree_state(*roots):
    """Checksum, mode and mtime of everything under the roots (git internals included)."""
    import hashlib

    state = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                info = os.lstat(path)
                digest = None
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as handle:
                        digest = hashlib.sha256(handle.read()).hexdigest()
                state[path] = (digest, info.st_mode, info.st_mtime_ns, info.st_uid)
    return state
