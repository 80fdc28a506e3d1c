"""The git area end to end: compare.yml through ansible-runner against the real lab."""

import json
import os
import pathlib
import shutil
import subprocess

import jsonschema
import pytest

from tests.lab import git_oracle

from .test_env_audit import SCHEMA, identities, planted


def test_git_recall_and_precision_against_git_itself(audit, lab):
    """The report's git findings against what git itself shows in the lab's checkouts (an oracle
    computed with git rev-list, patch-id, status, stash and remote, and file hashes), both ways."""
    result = audit(cmdline="--tags git")
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert report["areas"] == ["git"]
    found = {identity[1:5] for identity in identities(report["findings"])}
    shown = git_oracle.lab_findings()
    assert sorted(shown - found) == [], "git shows it, the report misses it (recall)"
    assert sorted(found - shown) == [], "the report has it, git does not show it (precision)"
    head = next(f for f in report["findings"] if f["key"] == "head")
    assert "only on prod" in head["message"] and "touch migrations" in head["message"]
    origin = next(f for f in report["findings"] if f["key"] == "remotes.origin")
    assert origin["values"]["prod"] == "https://deploy:***@git.example.invalid/team/ai_assistant.git"
    assert "## Area: git" in result.markdown


def test_every_area_in_one_run(audit, lab):
    result = audit()
    assert result.rc == 0, result.stdout
    assert result.report["areas"] == ["deps", "docker", "endpoints", "env", "git", "health", "postgres"]
    found = identities(result.report["findings"])
    areas = ("deps", "docker", "endpoints", "env", "git", "health", "postgres")
    assert found == sorted(item for area in areas for item in planted(lab["manifest"], area))
    # one module execution per host gathers both areas
    collect = [t for t in result.task_results() if t[1].startswith("Collect drift facts")]
    assert sorted(host for host, _, _ in collect) == ["dev-laptop", "prod-vm"]


@pytest.fixture
def odd_repositories(tmp_path_factory):
    """A root-owned repository (git refuses it to deploy: dubious ownership) and a corrupt one."""
    base = pathlib.Path("/tmp") / ("envparity-git-" + tmp_path_factory.getbasetemp().name)
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(mode=0o755)
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@invalid",
    )
    for name in ("rootowned", "corrupt"):
        repo = base / name
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
        (repo / "a.txt").write_text("a\n")
        subprocess.run(["git", "-C", str(repo), "add", "a.txt"], check=True, env=env)
        subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "one"], check=True, env=env)
    (base / "corrupt" / ".git" / "HEAD").write_text("garbage\n")
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    return base


def test_dubious_ownership_and_corrupt_repositories_have_clear_statuses(audit, odd_repositories):
    repos = [{"name": name, "path": str(odd_repositories / name)} for name in ("rootowned", "corrupt")]
    config_before = (
        pathlib.Path("/home/deploy/.gitconfig").read_bytes()
        if pathlib.Path("/home/deploy/.gitconfig").exists()
        else None
    )
    result = audit(cmdline="--tags git", extravars={"drift_git_repos": repos, "drift_deploy_dirs": []})
    assert result.rc == 0, result.stdout
    status = {f["subject"]: f["values"] for f in result.report["findings"] if f["check"] == "git.repository_status"}
    assert status == {
        "rootowned": {"dev": "ok", "prod": "refused by git (dubious ownership)"},
        "corrupt": {"dev": "corrupt repository", "prod": "corrupt repository"},
    }
    refused = next(f for f in result.report["findings"] if f["subject"] == "rootowned")
    assert "safe.directory" in refused["message"]
    # the user's git configuration is never changed to get around it
    after = (
        pathlib.Path("/home/deploy/.gitconfig").read_bytes()
        if pathlib.Path("/home/deploy/.gitconfig").exists()
        else None
    )
    assert after == config_before
    assert "Traceback" not in result.stdout
    json.dumps(result.report)
