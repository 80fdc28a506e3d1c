"""The git area's diff rules: history placement on real repositories built here, plus the checks."""

import os
import subprocess

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.git_collect import collect_git
from ansible_collections.envparity.audit.plugins.plugin_utils import git_diff

KEY = b"k" * 32
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(repo, *args):
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def commit(repo, path, text, subject):
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", subject)


@pytest.fixture
def histories(tmp_path):
    """base: c1-c2-c3 (c2 adds a migration, c3 a config change); forks built from it."""
    base = tmp_path / "base"
    base.mkdir()
    git(base, "init", "-q", "-b", "main")
    commit(base, "app.py", "1", "c1 start")
    commit(base, "migrations/0002_add.py", "m", "c2 add a migration")
    commit(base, "config/settings.py", "s", "c3 tune settings")
    clones = {}
    for name, reset, extra in (
        ("same", None, None),
        ("behind", "HEAD~2", None),
        ("ahead", None, "c4 only here"),
        ("diverged", "HEAD~2", "hot-fix on prod"),
    ):
        clone = tmp_path / name
        git(tmp_path, "clone", "-q", str(base), str(clone))
        if reset:
            git(clone, "reset", "-q", "--hard", reset)
        if extra:
            commit(clone, "hotfix.py", extra, extra)
        clones[name] = clone
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    git(unrelated, "init", "-q", "-b", "main")
    commit(unrelated, "other.py", "x", "another project")
    clones["unrelated"] = unrelated
    return base, clones


def facts(path):
    request = {
        "project_dir": None,
        "repos": [{"name": "app", "path": str(path)}],
        "deploy_dirs": [],
        "history_limit": 200,
        "file_limit": 200,
        "manifest_limit": 100,
        "fetch": False,
        "timeout": 20,
    }
    return collect_git(request, KEY)


@pytest.mark.parametrize(
    ("name", "relation", "lacking", "only"),
    [
        ("same", "same", [], []),
        ("behind", "behind", ["c3 tune settings", "c2 add a migration"], []),
        ("ahead", "ahead", [], ["c4 only here"]),
        ("diverged", "diverged", ["c3 tune settings", "c2 add a migration"], ["hot-fix on prod"]),
        ("unrelated", "unrelated", ["c3 tune settings", "c2 add a migration", "c1 start"], ["another project"]),
    ],
)
def test_history_placement_on_built_repositories(histories, name, relation, lacking, only):
    base, clones = histories
    base_repo = facts(base)["repos"]["app"]
    other_repo = facts(clones[name])["repos"]["app"]
    found, lacking_commits, only_commits = git_diff.place(base_repo, other_repo)
    assert found == relation
    assert [c["subject"] for c in lacking_commits] == lacking
    assert [c["subject"] for c in only_commits] == only


def test_placement_beyond_the_window_is_unknown_not_unrelated(histories):
    base, clones = histories
    base_repo = facts(base)["repos"]["app"]
    other_repo = facts(clones["diverged"])["repos"]["app"]
    base_repo["history"], base_repo["history_truncated"] = base_repo["history"][:1], True
    other_repo["history"], other_repo["history_truncated"] = other_repo["history"][:1], True
    assert git_diff.place(base_repo, other_repo)[0] == "unknown"


def run_diff(dev_path, prod_path):
    cells = {"dev": facts(dev_path), "prod": facts(prod_path)}
    return git_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}})


def test_behind_flags_migrations_and_config(histories):
    base, clones = histories
    findings = run_diff(base, clones["behind"])
    head = [f for f in findings if f["key"] == "head"]
    assert [(f["kind"], f["check"], f["severity"]) for f in head] == [("changed", "git.behind", "medium")]
    assert "2 commit(s) behind dev (1 touch migrations, 1 touch configuration)" in head[0]["message"]
    assert "[migration]" in head[0]["message"] and "[config]" in head[0]["message"]
    assert "migration tool's upgrade" in head[0]["recommendation"]


def test_diverged_production_hotfix_and_worktree(histories):
    base, clones = histories
    prod = clones["diverged"]
    (prod / "app.py").write_text("patched on the server")
    (prod / "notes.txt").write_text("scratch")
    (base / "wip.py").write_text("work in progress")
    checks = sorted((f["key"], f["check"]) for f in run_diff(base, prod))
    assert checks == [
        ("head", "git.diverged"),
        ("remotes.origin", "git.remote_changed"),
        ("worktree.dev", "git.uncommitted_dev"),
        ("worktree.modified", "git.uncommitted_production"),
        ("worktree.untracked", "git.untracked_production"),
    ]


def test_same_commit_and_clean_gives_nothing(histories):
    base, clones = histories
    same = clones["same"]
    git(same, "remote", "remove", "origin")
    assert run_diff(base, same) == []


def test_repository_status_findings(tmp_path, histories):
    base, _ = histories
    plain = tmp_path / "plain"
    plain.mkdir()
    findings = run_diff(base, plain)
    assert [(f["key"], f["kind"], f["check"]) for f in findings] == [
        ("@repository", "unknown", "git.repository_status")
    ]
    assert findings[0]["values"]["prod"] == "not a git repository"
    missing = run_diff(base, tmp_path / "absent")
    assert [(f["key"], f["kind"]) for f in missing] == [("@repository", "missing")]


def manifest(files):
    return {
        "path": "/d",
        "status": "ok",
        "reason": None,
        "count": len(files),
        "truncated": False,
        "files": {path: {"size": 1, "mode": mode, "fp": "hmac-sha256:" + fp} for path, (fp, mode) in files.items()},
    }


@pytest.mark.parametrize(
    ("dev", "prod", "expected"),
    [
        ({"a": ("1", "0644")}, {"a": ("1", "0644")}, []),
        ({"a": ("1", "0644")}, {}, [("a", "missing", "git.file_missing")]),
        ({}, {"a": ("1", "0644")}, [("a", "extra", "git.file_extra")]),
        ({"a": ("1", "0644")}, {"a": ("2", "0644")}, [("a", "changed", "git.file_changed")]),
        ({"a": ("1", "0644")}, {"a": ("1", "0755")}, [("a", "changed", "git.file_mode")]),
    ],
)
def test_deployed_files_manifest_diff(dev, prod, expected):
    cells = {
        "dev": {"repos": {}, "deploy_dirs": {"site": manifest(dev)}},
        "prod": {"repos": {}, "deploy_dirs": {"site": manifest(prod)}},
    }
    findings = git_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}})
    assert [(f["key"], f["kind"], f["check"]) for f in findings] == expected
    for finding in findings:
        assert "hmac-sha256" not in str(finding["values"])  # content is shown as A/B, never a fingerprint
