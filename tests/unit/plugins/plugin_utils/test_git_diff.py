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


# ---------------------------------------------------------------- shallow clones and cherry-picks


@pytest.fixture
def shallow_behind(tmp_path):
    """dev: c1..c6; prod: `git clone --depth 1` made at c4, two commits behind dev."""
    dev = tmp_path / "dev"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    for number in range(1, 5):
        commit(dev, "f%d.txt" % number, str(number), "c%d" % number)
    prod = tmp_path / "prod"
    git(tmp_path, "clone", "-q", "--depth", "1", "file://%s" % dev, str(prod))
    commit(dev, "migrations/0005.py", "5", "c5 add a migration")
    commit(dev, "f6.txt", "6", "c6")
    return dev, prod


def test_shallow_clone_behind_counts_only_what_dev_has_after_it(shallow_behind):
    dev, prod = shallow_behind
    prod_facts = facts(prod)["repos"]["app"]
    assert prod_facts["shallow"] == [prod_facts["head"]]  # read from .git/shallow
    relation, lacking, only = git_diff.place(facts(dev)["repos"]["app"], prod_facts)
    assert (relation, [c["subject"] for c in lacking], only) == ("behind", ["c6", "c5 add a migration"], [])
    head = [f for f in run_diff(dev, prod) if f["key"] == "head"]
    assert [f["check"] for f in head] == ["git.behind"]
    assert "prod is 2 commit(s) behind dev (1 touch migrations)" in head[0]["message"]
    assert "c4" not in head[0]["message"] and "c1" not in head[0]["message"]


def test_shallow_clone_with_nothing_in_common_is_partial_not_unrelated(tmp_path):
    """prod is a depth-1 clone of a release branch dev never had: unknown, and it says why."""
    dev = tmp_path / "dev"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    commit(dev, "a.txt", "a", "c1")
    git(dev, "checkout", "-q", "-b", "release")
    commit(dev, "r.txt", "r", "r1 release fix")
    commit(dev, "r.txt", "r2", "r2 release fix")
    git(dev, "checkout", "-q", "main")
    commit(dev, "b.txt", "b", "c2")
    prod = tmp_path / "prod"
    git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "release", "file://%s" % dev, str(prod))
    git(dev, "branch", "-q", "-D", "release")
    base, other = facts(dev)["repos"]["app"], facts(prod)["repos"]["app"]
    assert git_diff.place(base, other)[0] == "unknown"
    other["shallow"] = []  # the same histories without the shallow boundary: truly unrelated
    assert git_diff.place(base, other)[0] == "unrelated"
    head = [f for f in run_diff(dev, prod) if f["key"] == "head"]
    assert [(f["check"], f["severity"]) for f in head] == [("git.history_unknown", "high")]
    assert "placement is partial: prod is a shallow clone" in head[0]["message"]
    assert "git fetch --deepen" in head[0]["recommendation"]


def test_production_commits_that_are_cherry_picks_of_dev_commits(histories):
    base, clones = histories
    prod = clones["behind"]  # at c1
    git(prod, "fetch", "-q", "origin")
    git(prod, "cherry-pick", git(base, "rev-parse", "HEAD").strip())  # c3, as a new commit
    dev_facts, prod_facts = facts(base)["repos"]["app"], facts(prod)["repos"]["app"]
    relation, lacking, only = git_diff.place(dev_facts, prod_facts)
    assert relation == "diverged"
    picks = git_diff.cherry_picks(lacking, only)
    assert {c["subject"] for c in only} == {"c3 tune settings"}
    assert [picks[c["sha"]]["sha"] for c in only] == [git(base, "rev-parse", "HEAD").strip()]
    head = [f for f in run_diff(base, prod) if f["key"] == "head"]
    assert [(f["check"], f["severity"]) for f in head] == [("git.cherry_picked", "medium")]
    assert "cherry-picks of dev's commits" in head[0]["message"] and "prod lacks 2 commit(s)" in head[0]["message"]
    # A hot-fix of its own is not a cherry-pick: still diverged, and the pick is named in the message.
    commit(prod, "hotfix.py", "h", "hot-fix on prod")
    head = [f for f in run_diff(base, prod) if f["key"] == "head"]
    assert [f["check"] for f in head] == ["git.diverged"]
    assert "2 commit(s) only on prod" in head[0]["message"]
    assert "of which 1 are cherry-picks of dev's commits" in head[0]["message"]
    hotfix = clones["diverged"]
    head = [f for f in run_diff(base, hotfix) if f["key"] == "head"]
    assert [f["check"] for f in head] == ["git.diverged"] and "cherry-pick" not in head[0]["message"]


def test_patch_ids_differ_between_runs_keys(histories):
    """Patch ids are keyed: the same commit gets another id under another run's key."""
    base, _ = histories
    first = facts(base)["repos"]["app"]["history"][0]["patch_id"]
    request = {"project_dir": None, "repos": [{"name": "app", "path": str(base)}], "deploy_dirs": []}
    second = collect_git(request, b"x" * 32)["repos"]["app"]["history"][0]["patch_id"]
    assert first.startswith("hmac-sha256:") and second.startswith("hmac-sha256:") and first != second


# ---------------------------------------------------------------- programs declared by the repository


def test_declared_programs_become_a_policy_finding(histories):
    base, clones = histories
    prod = clones["same"]
    git(prod, "config", "core.fsmonitor", "/tmp/never-run-fsmonitor")
    git(prod, "config", "filter.crypt.clean", "crypt --token=s3cr3t-value")
    git(base, "config", "alias.lg", "!sh -c 'never run'")
    git(base, "config", "alias.st", "status")  # not a program
    findings = [f for f in run_diff(base, prod) if f["check"] == "git.runs_programs"]
    assert len(findings) == 1
    finding = findings[0]
    assert (finding["key"], finding["kind"], finding["severity"]) == ("@programs", "policy", "high")
    assert finding["environments"] == ["dev", "prod"]
    assert finding["values"] == {"dev": "alias.lg", "prod": "core.fsmonitor, filter.crypt.clean"}
    assert "declares programs that git would run on status" in finding["message"]
    assert "s3cr3t" not in str(finding) and "never-run" not in str(finding)
    # Only on dev (not production): medium.
    git(prod, "config", "--unset", "core.fsmonitor")
    git(prod, "config", "--unset", "filter.crypt.clean")
    only_dev = [f for f in run_diff(base, prod) if f["check"] == "git.runs_programs"]
    assert [(f["environments"], f["severity"]) for f in only_dev] == [(["dev"], "medium")]


def test_deployed_files_of_a_fleet_report_each_way_a_host_differs():
    """One host lacks the file, another has it edited: both are said (the shared keyed walk)."""
    cells = {
        "dev": {"repos": {}, "deploy_dirs": {"site": manifest({"a": ("1", "0644")})}},
        "prod/web1": {"repos": {}, "deploy_dirs": {"site": manifest({})}},
        "prod/web2": {"repos": {}, "deploy_dirs": {"site": manifest({"a": ("2", "0644")})}},
    }
    findings = git_diff.diff(
        ["dev", "prod/web1", "prod/web2"], cells, {"baseline": "dev", "production": {"prod/web1", "prod/web2"}}
    )
    assert [(f["key"], f["kind"], f["check"], f["environments"]) for f in findings] == [
        ("a", "missing", "git.file_missing", ["prod/web1"]),
        ("a", "changed", "git.file_changed", ["prod/web2"]),
    ]
