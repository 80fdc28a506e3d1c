"""The CI recipes (examples/ci/) run as written: their shell steps executed by bash against the lab,
with the secrets given as CI gives them (GitHub: secret values in environment variables; GitLab:
File variables, a path to a file holding the value), on an inventory that names no key and no
known_hosts file of its own, so that the audit reaches prod only through what the recipe wrote.

Not run here: the steps that are actions (checkout, setup-python, upload-artifact), the install
step (pip install -r requirements.txt: the test's virtualenv is that), `gh run download` and the
GitLab API (no GitHub or GitLab here: the test puts the previous run's artifact where they would,
and the GitLab download is pointed at a closed loopback port to show its fallback)."""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

from .conftest import LAB_STATE, ROOT

GITHUB = ROOT / "examples" / "ci" / "github-actions.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci.yml"
SSH = LAB_STATE / "ssh"
CLOSED_PORT = "http://127.0.0.1:9/api/v4"  # discard port: nothing listens, the download fails at once


def ci_inventory(tmp_path):
    """The lab inventory without its own key and known_hosts: the recipe must supply them."""
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory" / "lab", inventory)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    prod = hosts["all"]["children"]["prod"]["hosts"]["prod-vm"]
    del prod["ansible_ssh_private_key_file"], prod["ansible_ssh_common_args"]
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inventory


@pytest.fixture
def home():
    """A runner's HOME: short, as ssh's control sockets under ~/.ansible/cp need (108 bytes at most)."""
    path = tempfile.mkdtemp(prefix="ep-ci-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def base_environment(home):
    """What a runner's shell has: a PATH with the tools (here, the test's virtualenv) and a HOME."""
    return {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
    }


def bash(options, script, environment):
    """A CI shell: bash with the CI's options, in the checkout, with only the CI's environment."""
    return subprocess.run(
        ["bash", *options, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


# --- GitHub Actions ------------------------------------------------------------------------------


class GitHubRun:
    """One run of the workflow's job: each step's env evaluated, its `run` executed by bash -e
    (GitHub's default shell), GITHUB_ENV applied between steps, `if: always()` honoured."""

    def __init__(self, tmp_path, home, secrets, variables):
        self.temp = tmp_path / "runner-temp"
        self.temp.mkdir(exist_ok=True)
        self.files = {name: tmp_path / name.lower() for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")}
        for path in self.files.values():
            path.write_text("")
        self.secrets, self.variables = secrets, variables
        self.environment = dict(base_environment(home), RUNNER_TEMP=str(self.temp), GITHUB_WORKSPACE=str(ROOT))
        self.environment.update({name: str(path) for name, path in self.files.items()})
        self.results = {}

    def expression(self, text):
        def evaluate(match):
            expr = match.group(1).strip()
            found = re.fullmatch(r"vars\.(\w+) \|\| '([^']*)'", expr)
            if found:
                return self.variables.get(found.group(1)) or found.group(2)
            found = re.fullmatch(r"secrets\.(\w+)", expr)
            if found:
                return self.secrets.get(found.group(1), "")
            known = {"runner.temp": str(self.temp), "github.token": "", "github.workflow": "envparity"}
            known["github.ref_name"] = "main"
            assert expr in known, "an expression the test does not know: %s" % expr
            return known[expr]

        return re.sub(r"\$\{\{(.*?)\}\}", evaluate, str(text))

    def run(self, job):
        self.environment.update({name: self.expression(value) for name, value in job["env"].items()})
        failed = False
        for step in job["steps"]:
            if "uses" in step or step.get("id") == "install":
                continue
            condition = step.get("if")
            assert condition in (None, "always()"), condition
            if failed and condition != "always()":
                continue
            environment = dict(self.environment)
            environment.update({name: self.expression(value) for name, value in (step.get("env") or {}).items()})
            completed = bash(["-e"], step["run"], environment)  # GitHub's default shell
            self.results[step["id"]] = completed
            if completed.returncode != 0 and not step.get("continue-on-error"):
                failed = True
            for line in self.files["GITHUB_ENV"].read_text().splitlines():
                name, _, value = line.partition("=")
                self.environment[name] = value
        return not failed

    @property
    def work(self):
        return self.temp / "envparity"


def workflow():
    return yaml.safe_load(GITHUB.read_text())


def lab_secrets():
    return {
        "ENVPARITY_SSH_KEY": (SSH / "id_ed25519").read_text(),
        "ENVPARITY_KNOWN_HOSTS": (SSH / "known_hosts").read_text(),
    }


def test_the_workflow_is_a_workflow():
    document = workflow()
    assert set(document["on"]) == {"schedule", "workflow_dispatch"}
    job = document["jobs"]["audit"]
    uses = [step["uses"] for step in job["steps"] if "uses" in step]
    assert uses == ["actions/checkout@v4", "actions/setup-python@v5", "actions/upload-artifact@v4"]
    install = next(step for step in job["steps"] if step.get("id") == "install")
    assert install["run"] == "python -m pip install -r requirements.txt"  # the one step this test skips
    upload = job["steps"][-1]
    assert upload["if"] == "always()" and upload["with"]["name"] == "envparity-report"


def test_the_workflow_audits_the_lab_gates_on_new_and_compares_with_the_previous_run(tmp_path, home, lab):
    inventory = ci_inventory(tmp_path)
    variables = {"ENVPARITY_INVENTORY": str(inventory)}
    (tmp_path / "first").mkdir()
    first = GitHubRun(tmp_path / "first", home, lab_secrets(), variables)
    assert not first.run(workflow()["jobs"]["audit"])  # first run: every finding is new, high ones trip
    audit = first.results["audit"]
    assert audit.returncode == 2, audit.stdout + audit.stderr
    assert "new at or above high" in audit.stdout
    key = first.work / "ssh" / "id"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert "no previous report: every finding is new in this run" in first.results["previous"].stdout
    out = first.work / "out"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.junit.xml", "report.md"]
    summary = first.files["GITHUB_STEP_SUMMARY"].read_text()
    assert summary == (out / "report.md").read_text() and summary.startswith("#")
    prod = [c for c in yaml.safe_load((out / "report.json").read_text())["columns"] if c["host"] == "prod-vm"]
    assert prod and prod[0]["status"] == "ok"  # reached over SSH with the key and known_hosts the recipe wrote

    # The next run: the artifact of the first where `gh run download` puts it.
    (tmp_path / "second").mkdir()
    second = GitHubRun(tmp_path / "second", home, lab_secrets(), variables)
    (second.work / "previous").mkdir(parents=True)
    shutil.copy(out / "report.json", second.work / "previous" / "report.json")
    passed = second.run(workflow()["jobs"]["audit"])
    report = yaml.safe_load((second.work / "out" / "report.json").read_text())
    assert report["history"]["source"].startswith("previous report ")
    first_ids = {f["id"] for f in yaml.safe_load((out / "report.json").read_text())["findings"]}
    persisting = [f for f in report["findings"] if f["state"] in ("persisting", "changed")]
    assert persisting and {f["id"] for f in persisting} <= first_ids
    # The shared lab may drift between the two runs (e.g. a response time): the gate follows what is new.
    assert passed is not report["gate"]["tripped"], second.results["audit"].stdout


def test_a_missing_secret_stops_the_workflow_before_the_audit(tmp_path, home):
    run = GitHubRun(tmp_path, home, dict(lab_secrets(), ENVPARITY_KNOWN_HOSTS=""), {})
    assert not run.run(workflow()["jobs"]["audit"])
    check = run.results["secrets"]
    assert check.returncode == 1
    assert "::error::envparity: missing secret(s): ENVPARITY_KNOWN_HOSTS" in check.stdout
    assert "audit" not in run.results and "ssh" not in run.results
    assert run.results["summary"].returncode == 0  # always(): says that no report was written
    assert "envparity wrote no report" in run.files["GITHUB_STEP_SUMMARY"].read_text()


# --- GitLab CI -----------------------------------------------------------------------------------


def gitlab_job():
    return yaml.safe_load(GITLAB.read_text())["envparity"]


def run_gitlab(tmp_path, home, files, extra=None):
    """The job's script in one bash -eo pipefail shell (GitLab's bash executor), then after_script
    in another; File variables as GitLab gives them: the variable holds a path to the value."""
    job = gitlab_job()
    assert job["before_script"] == ["python -m pip install -r requirements.txt"]  # skipped here
    environment = dict(
        base_environment(home),
        CI_PROJECT_DIR=str(tmp_path / "project"),
        CI_API_V4_URL=CLOSED_PORT,
        CI_PROJECT_ID="1",
        CI_JOB_TOKEN="not-a-token",
        CI_COMMIT_REF_NAME="main",
        CI_JOB_NAME="envparity",
    )
    for name, value in files.items():
        path = tmp_path / "gitlab-files" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(value)
        environment[name] = str(path)
    for name, value in job["variables"].items():  # GitLab expands the predefined variables in them
        environment[name] = value.replace("$CI_PROJECT_DIR", environment["CI_PROJECT_DIR"])
    environment.update(extra or {})

    script = bash(["-eo", "pipefail"], "\n".join(job["script"]), environment)
    after = bash(["-eo", "pipefail"], "\n".join(job["after_script"]), environment)
    return script, after, pathlib.Path(environment["ENVPARITY_WORK"])


def test_the_gitlab_job_audits_the_lab_with_file_variables(tmp_path, home, lab):
    inventory = ci_inventory(tmp_path)
    settings = {"ENVPARITY_INVENTORY": str(inventory), "ENVPARITY_FAIL_ON_NEW": "never"}
    script, after, work = run_gitlab(tmp_path, home, lab_secrets(), settings)
    assert script.returncode == 0, script.stdout + script.stderr
    assert "no previous report: every finding is new in this run" in script.stdout
    assert after.returncode == 0
    out = work / "out"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.junit.xml", "report.md"]
    assert after.stdout == (out / "report.md").read_text()
    prod = [c for c in yaml.safe_load((out / "report.json").read_text())["columns"] if c["host"] == "prod-vm"]
    assert prod and prod[0]["status"] == "ok"  # reached with the key and known_hosts from the File variables
    artifacts = gitlab_job()["artifacts"]
    assert (tmp_path / "project" / artifacts["reports"]["junit"]).exists()
    assert artifacts["when"] == "always" and artifacts["paths"] == ["envparity-out/out/"]


def test_a_missing_gitlab_variable_stops_the_job_before_the_audit(tmp_path, home):
    script, after, work = run_gitlab(tmp_path, home, {"ENVPARITY_SSH_KEY": lab_secrets()["ENVPARITY_SSH_KEY"]})
    assert script.returncode == 1
    assert "envparity: missing CI/CD variable(s) of type File: ENVPARITY_KNOWN_HOSTS" in script.stderr
    assert not (work / "reports").exists()
    assert "envparity wrote no report" in after.stdout
