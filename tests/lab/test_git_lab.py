"""The lab's git area (lab/git_area.py), run as root against the real lab on this machine.

Like tests/lab/test_labctl.py, the module brings the lab up and leaves it as it found it: running
(with fresh canaries, since replant is tested) if it was up, stopped otherwise. Every git command
here is read-only (`--no-optional-locks`: not even the index is refreshed) and runs as the
checkout's owner.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from tests.lab import git_oracle  # noqa: E402
from tests.lab.git_oracle import DEV_DIR, PROD_DIR, STATIC_DIR  # noqa: E402
from tests.lab.labtest import (  # noqa: E402
    CANARIES,
    MANIFEST,
    REPO,
    SYSTEM_PYTHON,
    labctl,
)

COLLECTIONS = REPO / "collections"

INITIAL = "Initial commit"
SHARED = "Add the API, the worker, settings and the first migration"
DEV_ONLY = [
    "Add reminders to the API and the web page",
    "Add the reminders table",
    "Check for due reminders every 5 minutes",
]
PROD_ONLY = ["Hotfix: give the worker more time per task"]


def git(repo: Path, *args: str) -> str:
    return git_oracle.git(repo, *args)


def has_commit(repo: Path, sha: str) -> bool:
    return git_oracle.run_git(repo, "cat-file", "-e", sha + "^{commit}").returncode == 0


def subjects(repo: Path) -> list[str]:
    return git(repo, "log", "--reverse", "--format=%s", "HEAD").splitlines()


def sha_of(repo: Path, subject: str) -> str:
    for line in git(repo, "log", "--format=%H %s", "HEAD").splitlines():
        sha, _, found = line.partition(" ")
        if found == subject:
            return sha
    raise AssertionError("no commit %r in %s" % (subject, repo))


def status(repo: Path) -> set[str]:
    return {
        entry for entry in git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all").split("\0") if entry
    }


def canary() -> str:
    return json.loads(CANARIES.read_text())["git.prod.origin_token"]


def snapshot() -> dict[str, tuple]:
    """Mode, owner, mtime and content hash of everything in the checkouts and the static deploy."""
    state = {}
    for root in (DEV_DIR, PROD_DIR, STATIC_DIR):
        for path in (root, *sorted(root.rglob("*"))):
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            state[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, digest)
    return state


# ---------------------------------------------------------------- dev


def test_dev_is_three_commits_ahead_of_the_shared_history():
    assert subjects(DEV_DIR) == [INITIAL, SHARED, *DEV_ONLY]
    assert git(DEV_DIR, "symbolic-ref", "--short", "HEAD").strip() == "main"
    files = {
        subject: git(DEV_DIR, "show", "--name-only", "--format=", sha_of(DEV_DIR, subject)).split()
        for subject in DEV_ONLY
    }
    assert files[DEV_ONLY[1]] == ["migrations/versions/0002_add_reminders.py"]
    assert files[DEV_ONLY[2]] == ["config/settings.py"]
    assert "app/main.py" in files[DEV_ONLY[0]]
    assert {"site/index.html", "site/app.js", "site/style.css"} <= set(files[DEV_ONLY[0]])


def test_dev_working_tree_and_stash():
    # the docker area's compose and env files are not committed: untracked too
    assert status(DEV_DIR) == {
        "A  app/notifications.py",
        " M app/reminders.py",
        "?? notes/todo.md",
        "?? docker/.env.dev",
        "?? docker/compose.dev.override.yml",
        "?? docker/compose.dev.yml",
    }
    stashes = git(DEV_DIR, "stash", "list", "--format=%gs").splitlines()
    assert stashes == ["On main: try a one-minute reminder interval"]
    assert git(DEV_DIR, "stash", "show", "--name-only", "stash@{0}").split() == ["config/settings.py"]


def test_dev_remote_has_no_credential():
    assert git(DEV_DIR, "remote").split() == ["origin"]
    assert (
        git(DEV_DIR, "config", "--get", "remote.origin.url").strip() == "git@git.example.invalid:team/ai_assistant.git"
    )
    assert canary() not in (DEV_DIR / ".git" / "config").read_text()


# ---------------------------------------------------------------- prod


def test_prod_diverged_from_dev():
    assert subjects(PROD_DIR) == [INITIAL, SHARED, *PROD_ONLY]
    assert git(PROD_DIR, "symbolic-ref", "--short", "HEAD").strip() == "main"
    # Same history up to the shared commit: identical ids, built independently in each checkout.
    for subject in (INITIAL, SHARED):
        assert sha_of(DEV_DIR, subject) == sha_of(PROD_DIR, subject)
    # Each side has commits the other lacks.
    for subject in DEV_ONLY:
        assert not has_commit(PROD_DIR, sha_of(DEV_DIR, subject))
    hotfix = sha_of(PROD_DIR, PROD_ONLY[0])
    assert not has_commit(DEV_DIR, hotfix)
    assert git(PROD_DIR, "log", "-1", "--format=%an", hotfix).strip() == "deploy"
    # Both sides carry the same tag on the shared commit.
    for repo in (DEV_DIR, PROD_DIR):
        assert git(repo, "rev-parse", "v1.0.0^{commit}").strip() == sha_of(repo, SHARED)


def test_prod_hotfix_untracked_and_no_stash():
    assert status(PROD_DIR) == {
        " M app/main.py",
        "?? app/main.py.orig",
        "?? docker/.env.prod",
        "?? docker/compose.prod.override.yml",
        "?? docker/compose.prod.yml",
    }
    assert "HOTFIX" in (PROD_DIR / "app" / "main.py").read_text()
    assert git(PROD_DIR, "stash", "list") == ""


def test_prod_remote_carries_the_canary_token():
    token = canary()
    assert token.startswith("ghp_CANARY")
    url = git(PROD_DIR, "config", "--get", "remote.origin.url").strip()
    assert url == "https://deploy:%s@git.example.invalid/team/ai_assistant.git" % token
    assert token in (PROD_DIR / ".git" / "config").read_text()


def test_prod_checkout_is_owned_by_deploy():
    deploy = pwd.getpwnam("deploy").pw_uid
    wrong = [str(p) for p in (PROD_DIR, *PROD_DIR.rglob("*")) if p.lstat().st_uid != deploy]
    assert wrong == []


def test_static_deploy_is_dev_site_with_one_file_edited():
    deploy = pwd.getpwnam("deploy").pw_uid
    names = sorted(p.name for p in STATIC_DIR.iterdir())
    assert names == ["app.js", "index.html", "style.css"]
    assert sorted(p.name for p in (DEV_DIR / "site").iterdir()) == names
    differs = [name for name in names if (STATIC_DIR / name).read_bytes() != (DEV_DIR / "site" / name).read_bytes()]
    assert differs == ["app.js"]
    for path in (STATIC_DIR, *STATIC_DIR.iterdir()):
        assert path.lstat().st_uid == deploy
    assert not (STATIC_DIR / ".git").exists()


# ---------------------------------------------------------------- manifest and canaries


def test_the_manifest_lists_what_git_itself_shows():
    """The lab's manifest against an oracle computed with git (rev-list, patch-id, status, stash,
    remote, ls-tree) and file hashes, both ways: no planted entry the repositories do not bear
    out, no difference they show that is not planted."""
    planted = [e for e in json.loads(MANIFEST.read_text())["planted"] if e["area"] == "git"]
    listed = {(e["subject"], e["key"], e["kind"], e["check"]) for e in planted}
    shown = git_oracle.lab_findings()
    assert sorted(listed - shown) == [], "planted, but git does not show it"
    assert sorted(shown - listed) == [], "git shows it, but it is not planted"
    assert len(planted) == len(listed)
    # the oracle sees every kind of drift the lab is there to plant
    assert {check for _, _, _, check in shown} >= {
        "git.diverged",
        "git.uncommitted_production",
        "git.untracked_production",
        "git.stash",
        "git.remote_changed",
        "git.file_changed",
    }


def test_canary_is_recorded_and_not_in_the_manifest():
    token = canary()
    assert token not in MANIFEST.read_text()
    st = CANARIES.stat()
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)


# ---------------------------------------------------------------- the collector sees it


def _collect(user: str, request: dict) -> dict:
    code = (
        "import json, sys; sys.path.insert(0, %r); "
        "from ansible_collections.envparity.audit.plugins.module_utils.git_collect import collect_git; "
        "print(json.dumps(collect_git(json.loads(sys.argv[1]), b'k' * 32)))"
    ) % str(COLLECTIONS)
    cmd = [SYSTEM_PYTHON, "-I", "-S", "-c", code, json.dumps(request)]
    if user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert canary() not in proc.stdout
    return json.loads(proc.stdout)


def test_collector_reads_the_planted_state_read_only():
    before = snapshot()
    dev = _collect(
        "root",
        {
            "project_dir": str(DEV_DIR),
            "repos": [{"name": "app", "path": "."}],
            "deploy_dirs": [{"name": "site", "path": "site"}],
        },
    )
    prod = _collect(
        "deploy",
        {
            "project_dir": str(PROD_DIR),
            "repos": [{"name": "app", "path": "."}],
            "deploy_dirs": [{"name": "site", "path": str(STATIC_DIR)}],
        },
    )
    assert snapshot() == before
    d, p = dev["repos"]["app"], prod["repos"]["app"]
    assert (d["status"], p["status"]) == ("ok", "ok")
    assert (d["tag"], p["tag"]) == ("v1.0.0", "v1.0.0")
    assert (d["stash_count"], p["stash_count"]) == (1, 0)
    assert (d["staged"]["count"], d["modified"]["count"], d["untracked"]["count"]) == (1, 1, 4)
    assert (p["staged"]["count"], p["modified"]["count"], p["untracked"]["count"]) == (0, 1, 4)
    assert p["remotes"] == {"origin": "https://deploy:***@git.example.invalid/team/ai_assistant.git"}
    assert d["remotes"] == {"origin": "git@git.example.invalid:team/ai_assistant.git"}
    assert [c["subject"] for c in d["history"]] == [*reversed(DEV_ONLY), SHARED, INITIAL]
    assert [c["subject"] for c in p["history"]] == [*PROD_ONLY, SHARED, INITIAL]
    dev_files, prod_files = dev["deploy_dirs"]["site"]["files"], prod["deploy_dirs"]["site"]["files"]
    assert sorted(dev_files) == sorted(prod_files) == ["app.js", "index.html", "style.css"]
    assert [name for name in dev_files if dev_files[name] != prod_files[name]] == ["app.js"]


def _audit(dev: dict, prod: dict, prod_user: str = "deploy") -> set[tuple]:
    """The real collector on each side and the real diff (dev the baseline, prod production)."""
    from ansible_collections.envparity.audit.plugins.plugin_utils.git_diff import diff

    cells = {"dev": _collect("root", dev), "prod": _collect(prod_user, prod)}
    findings = diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}})
    return {(f["subject"], f["key"], f["kind"], f["check"]) for f in findings}


def test_the_audit_finds_what_git_itself_shows():
    found = _audit(
        {
            "project_dir": str(DEV_DIR),
            "repos": [{"name": "app", "path": "."}],
            "deploy_dirs": [{"name": "site", "path": "site"}],
        },
        {
            "project_dir": str(PROD_DIR),
            "repos": [{"name": "app", "path": "."}],
            "deploy_dirs": [{"name": "site", "path": str(STATIC_DIR)}],
        },
    )
    shown = git_oracle.lab_findings()
    assert sorted(shown - found) == [], "git shows it, the audit misses it (recall)"
    assert sorted(found - shown) == [], "the audit reports what git does not show (precision)"


def _commit(repo: Path, path: str, text: str, message: str) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    _git_write(repo, "add", path)
    _git_write(repo, "commit", "-q", "-m", message)


def _git_write(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env, timeout=60)


def _behind(base: Path, other: Path) -> None:
    _git_write(other, "reset", "-q", "--hard", "HEAD~1")


def _ahead(base: Path, other: Path) -> None:
    _commit(other, "app/extra.py", "x = 1\n", "Only on prod")


def _diverged(base: Path, other: Path) -> None:
    _git_write(other, "reset", "-q", "--hard", "HEAD~1")
    _commit(other, "config/settings.py", "TIMEOUT = 300\n", "Hot-fix on prod")


def _cherry_picked(base: Path, other: Path) -> None:
    _commit(base, "app/later.py", "y = 2\n", "Later on dev")
    _git_write(other, "reset", "-q", "--hard", "HEAD~1")
    _git_write(other, "cherry-pick", base_sha(base, "HEAD~1"))


def base_sha(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev).strip()


def _worktrees_stash_remote_branch(base: Path, other: Path) -> None:
    (other / "app" / "main.py").write_text("patched\n")
    (other / "leftover.txt").write_text("x\n")
    (base / "app" / "main.py").write_text("in progress\n")
    _git_write(base, "stash", "push", "-q", "-m", "aside")
    (base / "new.txt").write_text("new\n")
    _git_write(base, "add", "new.txt")
    _git_write(other, "remote", "set-url", "origin", "https://git.example.invalid/other.git")
    _git_write(other, "checkout", "-q", "-b", "release")


def _same(base: Path, other: Path) -> None:
    pass


@pytest.mark.parametrize(
    "change",
    [_same, _behind, _ahead, _diverged, _cherry_picked, _worktrees_stash_remote_branch],
    ids=lambda change: change.__name__.strip("_"),
)
def test_the_audit_agrees_with_git_on_repositories_built_here(tmp_path, change):
    """The same oracle and audit on repositories made for each relation: each case gives a
    different expected set, so a wrong placement, status or remote rule on either side fails it."""
    base, other = tmp_path / "base", tmp_path / "other"
    base.mkdir()
    _git_write(base, "init", "-q", "-b", "main")
    _git_write(base, "remote", "add", "origin", "git@git.example.invalid:team/app.git")
    _commit(base, "app/main.py", "v1\n", "First")
    _commit(base, "migrations/0001.py", "m\n", "Migration")
    _git_write(tmp_path, "clone", "-q", "--no-local", str(base), str(other))
    _git_write(other, "remote", "set-url", "origin", "git@git.example.invalid:team/app.git")
    change(base, other)
    os.chmod(tmp_path, 0o755)
    found = _audit(
        {"project_dir": str(base), "repos": [{"name": "app", "path": "."}]},
        {"project_dir": str(other), "repos": [{"name": "app", "path": "."}]},
        prod_user="root",
    )
    shown = git_oracle.repo_findings("app", base, other)
    assert sorted(shown - found) == [], "git shows it, the audit misses it (recall)"
    assert sorted(found - shown) == [], "the audit reports what git does not show (precision)"
    if change is not _same:
        assert shown, "the case changes nothing git can see"


# ---------------------------------------------------------------- idempotency and replant


def test_second_up_changes_nothing():
    before = snapshot()
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "labctl up: no changes" in proc.stdout
    after = snapshot()
    assert [path for path in set(before) | set(after) if before.get(path) != after.get(path)] == []


def test_replant_keeps_git_state_and_changes_only_the_token():
    def git_state():
        return {
            repo: (
                git(repo, "rev-parse", "HEAD"),
                git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
                git(repo, "stash", "list", "--format=%H"),
                status(repo),
                hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(),
            )
            for repo in (DEV_DIR, PROD_DIR)
        }

    old_token, old_state = canary(), git_state()
    old_static = {p.name: p.read_bytes() for p in STATIC_DIR.iterdir()}
    old_manifest = MANIFEST.read_bytes()
    proc = labctl("replant")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new_token = canary()
    assert new_token != old_token
    assert git_state() == old_state
    assert {p.name: p.read_bytes() for p in STATIC_DIR.iterdir()} == old_static
    assert MANIFEST.read_bytes() == old_manifest
    config = (PROD_DIR / ".git" / "config").read_text()
    assert new_token in config and old_token not in config
    assert "labctl up: no changes" in labctl("up").stdout
