"""The git collector against real repositories built with git in tmp_path.

Every repository here is made by the test with fixed identities and dates (no dependence on the
machine's git configuration). The collector runs with an empty global configuration and no
system one, so a `safe.directory = *` on the test machine cannot hide the dubious-ownership case.
"""

import hashlib
import json
import os
import random
import shutil
import stat
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import bounded_run, git_collect
from ansible_collections.envparity.audit.plugins.module_utils.git_collect import collect_git
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint, fingerprint_bytes

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
_RNG = random.Random(5)
# Assembled at run time so that no secret scanner mistakes this file for a leak.
CANARY = "gh" + "p_CANARY" + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(32))
REPO_FIELDS = {
    "path",
    "status",
    "reason",
    "head",
    "branch",
    "detached",
    "tag",
    "describe",
    "upstream",
    "ahead",
    "behind",
    "staged",
    "modified",
    "untracked",
    "stash_count",
    "last_commit",
    "remotes",
    "submodules",
    "history",
    "history_truncated",
    "shallow",
    "declared_programs",
}
DEPLOY_FIELDS = {"path", "status", "reason", "files", "count", "truncated", "skipped", "unreadable"}
# The directory holding ansible_collections/ (tests/conftest.py puts it on sys.path).
COLLECTIONS = str(Path(__file__).resolve().parents[4] / "collections")
# The host's own interpreter, as on an audited host (the virtualenv may not be readable by others).
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
BASE_DATE = 1736154000  # 2025-01-06T09:00:00Z

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture(autouse=True)
def _isolated_git_config(tmp_path_factory, monkeypatch):
    """The collector (and the builders) see an empty global config and no system config."""
    config = tmp_path_factory.mktemp("gitconfig") / "global"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return config


# ---------------------------------------------------------------- building repositories

_clock = {"tick": 0}


def git(repo, *args, check=True, date=None):
    """Run git in `repo` with a fixed identity and a fixed, increasing date."""
    if date is None:
        _clock["tick"] += 60
        date = BASE_DATE + _clock["tick"]
    stamp = "@%d +0000" % date
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
    }
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-C", str(repo), *args],
        env=env,
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError("git %s failed: %s" % (" ".join(args), proc.stderr.decode(errors="replace")))
    return proc.stdout.decode().strip()


def write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(mode)
    return path


def commit(repo, files, subject):
    for rel, text in files.items():
        write(repo / rel, text)
    git(repo, "add", "--", *files)
    git(repo, "commit", "-q", "-m", subject)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path, commits=1):
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for number in range(commits):
        commit(path, {"file%d.txt" % number: "content %d\n" % number}, "Commit %d" % number)
    return path


def collect(repo=None, deploy=None, key=KEY, **settings):
    request = {"project_dir": None, "repos": [], "deploy_dirs": [], **settings}
    if repo is not None:
        request["repos"] = [{"name": "app", "path": str(repo)}]
    if deploy is not None:
        request["deploy_dirs"] = [{"name": "site", "path": str(deploy[0]), "ignore": deploy[1]}]
    return collect_git(request, key)


def collect_repo(repo, **settings):
    result = collect(repo, **settings)
    assert set(result) == {"repos", "deploy_dirs"}
    assert list(result["repos"]) == ["app"]
    entry = result["repos"]["app"]
    assert set(entry) == REPO_FIELDS
    json.dumps(entry)  # plain data only
    return entry


def paths(listing):
    return [(item["path"], item["status"]) for item in listing["files"]]


# ---------------------------------------------------------------- a clean repository


def test_clean_repository(tmp_path):
    repo = make_repo(tmp_path / "repo", commits=2)
    result = collect_repo(repo)
    head = git(repo, "rev-parse", "HEAD")
    assert result["status"] == "ok"
    assert result["reason"] is None
    assert result["path"] == str(repo)
    assert result["head"] == head
    assert (result["branch"], result["detached"]) == ("main", False)
    assert (result["tag"], result["describe"]) == (None, git(repo, "describe", "--tags", "--always"))
    assert (result["upstream"], result["ahead"], result["behind"]) == (None, None, None)
    for name in ("staged", "modified", "untracked"):
        assert result[name] == {"files": [], "count": 0, "truncated": False}
    assert result["stash_count"] == 0
    assert result["last_commit"] == {
        "sha": head,
        "date": git(repo, "log", "-1", "--format=%cI"),
        "subject": "Commit 1",
    }
    assert result["last_commit"]["date"].endswith("+00:00") and "T" in result["last_commit"]["date"]
    assert result["remotes"] == {}
    assert result["submodules"] == {}
    assert [c["subject"] for c in result["history"]] == ["Commit 1", "Commit 0"]
    assert result["history_truncated"] is False


def test_relative_path_and_tilde(tmp_path, monkeypatch):
    make_repo(tmp_path / "home" / "projects" / "app")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    by_project = collect_git({"project_dir": "~/projects", "repos": [{"name": "a", "path": "app"}]}, KEY)
    by_tilde = collect_git({"repos": [{"name": "a", "path": "~/projects/app/."}]}, KEY)
    for result in (by_project, by_tilde):
        assert result["repos"]["a"]["status"] == "ok"
        assert result["repos"]["a"]["path"] == str(tmp_path / "home" / "projects" / "app")


# ---------------------------------------------------------------- upstream, ahead and behind


@pytest.mark.parametrize(
    ("local", "remote", "ahead", "behind"),
    [(0, 0, 0, 0), (2, 0, 2, 0), (0, 3, 0, 3), (2, 1, 2, 1)],
)
def test_ahead_behind_from_local_refs(tmp_path, local, remote, ahead, behind):
    repo = make_repo(tmp_path / "repo", commits=1)
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")
    git(repo, "branch", "-q", "--set-upstream-to=origin/main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    for number in range(remote):
        commit(other, {"remote%d" % number: "r\n"}, "Remote %d" % number)
    if remote:
        git(other, "push", "-q", "origin", "main")
    for number in range(local):
        commit(repo, {"local%d" % number: "l\n"}, "Local %d" % number)

    # Nothing fetched yet: the collector reads local refs only, so the remote's commits are unseen.
    before = collect_repo(repo)
    assert (before["upstream"], before["ahead"], before["behind"]) == ("origin/main", ahead, 0)

    git(repo, "fetch", "-q", "origin")
    after = collect_repo(repo)
    assert (after["upstream"], after["ahead"], after["behind"]) == ("origin/main", ahead, behind)
    assert after["remotes"] == {"origin": str(origin)}


def test_fetch_when_asked(tmp_path):
    repo = make_repo(tmp_path / "repo")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")
    git(repo, "branch", "-q", "--set-upstream-to=origin/main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    commit(other, {"r": "r\n"}, "Remote")
    git(other, "push", "-q", "origin", "main")

    alone = make_repo(tmp_path / "alone")
    assert collect_repo(alone, fetch=True)["reason"] is None  # no remote: nothing to fetch, no note
    assert collect_repo(repo)["behind"] == 0  # fetch is off by default
    (repo / ".git" / "FETCH_HEAD").unlink()  # left by the set-up's own fetch
    fetched = collect_repo(repo, fetch=True)
    assert (fetched["status"], fetched["reason"], fetched["behind"]) == ("ok", None, 1)
    assert not (repo / ".git" / "FETCH_HEAD").exists()

    git(repo, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    failed = collect_repo(repo, fetch=True)
    assert failed["status"] == "ok"
    assert failed["reason"] == "git fetch failed; upstream, ahead and behind come from the local refs."
    assert failed["behind"] == 1


def test_upstream_that_is_gone(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", str(tmp_path / "never-fetched.git"))
    git(repo, "config", "branch.main.remote", "origin")
    git(repo, "config", "branch.main.merge", "refs/heads/main")
    result = collect_repo(repo)
    assert (result["status"], result["upstream"], result["ahead"], result["behind"]) == (
        "ok",
        "origin/main",
        None,
        None,
    )


# ---------------------------------------------------------------- HEAD, branch, tags


def test_detached_head(tmp_path):
    repo = make_repo(tmp_path / "repo", commits=3)
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    result = collect_repo(repo)
    assert result["detached"] is True
    assert result["branch"] is None
    assert result["head"] == git(repo, "rev-parse", "HEAD~0")
    assert result["last_commit"]["subject"] == "Commit 1"
    assert [c["subject"] for c in result["history"]] == ["Commit 1", "Commit 0"]


@pytest.mark.parametrize(
    ("tags", "expected_tag"),
    [
        ([], None),
        ([("v1.0", "HEAD", False)], "v1.0"),
        ([("v0.9", "HEAD~2", True)], "v0.9"),
        ([("release-2025-01-06", "HEAD~1", False)], "release-2025-01-06"),
        ([("v0.1", "HEAD~3", True), ("v0.2", "HEAD~1", False)], "v0.2"),
    ],
)
def test_tag_and_describe(tmp_path, tags, expected_tag):
    repo = make_repo(tmp_path / "repo", commits=4)
    for name, target, annotated in tags:
        if annotated:
            git(repo, "tag", "-a", "-m", "release %s" % name, name, target)
        else:
            git(repo, "tag", name, target)
    result = collect_repo(repo)
    assert result["tag"] == expected_tag
    assert result["describe"] == git(repo, "describe", "--tags", "--always")


def test_branch_name_with_slash(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature/reminders")
    assert collect_repo(repo)["branch"] == "feature/reminders"


# ---------------------------------------------------------------- working tree


def _dirty_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(
        repo,
        {
            "keep.txt": "k\n",
            "edit.txt": "e\n",
            "gone.txt": "g\n",
            "old.txt": "o\n" * 20,
            "link": "l\n",
            "both.txt": "b\n",
        },
        "Base",
    )
    write(repo / "added.txt", "new\n")
    git(repo, "add", "added.txt")
    write(repo / "both.txt", "staged\n")
    git(repo, "add", "both.txt")
    write(repo / "both.txt", "staged, then edited\n")
    git(repo, "rm", "-q", "gone.txt")
    git(repo, "mv", "old.txt", "renamed.txt")
    write(repo / "edit.txt", "edited\n")
    (repo / "link").unlink()
    (repo / "link").symlink_to("keep.txt")
    write(repo / "untracked.txt", "u\n")
    write(repo / "deep" / "er" / "u.txt", "u\n")
    write(repo / "deep" / "v.txt", "v\n")
    write(repo / ".gitignore", "*.log\n")
    write(repo / "ignored.log", "i\n")
    return repo


def test_staged_modified_untracked(tmp_path):
    result = collect_repo(_dirty_repo(tmp_path))
    assert paths(result["staged"]) == [
        ("added.txt", "A"),
        ("both.txt", "M"),
        ("gone.txt", "D"),
        ("renamed.txt", "R"),
    ]
    assert paths(result["modified"]) == [("both.txt", "M"), ("edit.txt", "M"), ("link", "T")]
    # --untracked-files=all: every file, not the directory; ignored files are not listed.
    assert paths(result["untracked"]) == [
        (".gitignore", "?"),
        ("deep/er/u.txt", "?"),
        ("deep/v.txt", "?"),
        ("untracked.txt", "?"),
    ]
    for name, count in (("staged", 4), ("modified", 3), ("untracked", 4)):
        assert (result[name]["count"], result[name]["truncated"]) == (count, False)


@pytest.mark.parametrize(("limit", "shown", "truncated"), [(0, 0, True), (2, 2, True), (4, 4, False), (50, 4, False)])
def test_file_lists_are_capped_with_a_count(tmp_path, limit, shown, truncated):
    result = collect_repo(_dirty_repo(tmp_path), file_limit=limit)
    for name in ("staged", "untracked"):
        assert len(result[name]["files"]) == shown
        assert result[name]["count"] == 4
        assert result[name]["truncated"] is truncated


def test_unmerged_paths(tmp_path):
    repo = make_repo(tmp_path / "repo")
    commit(repo, {"conflict.txt": "base\n"}, "Base")
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, {"conflict.txt": "side\n"}, "Side")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"conflict.txt": "main\n"}, "Main")
    git(repo, "merge", "-q", "side", check=False)
    result = collect_repo(repo)
    assert result["status"] == "ok"
    assert paths(result["modified"]) == [("conflict.txt", "U")]


def test_paths_with_spaces_newlines_and_non_utf8(tmp_path):
    repo = make_repo(tmp_path / "repo")
    write(repo / "with space.txt", "x")
    write(repo / "new\nline.txt", "x")
    (repo / os.fsdecode(b"latin\xe9.txt")).write_bytes(b"x")
    result = collect_repo(repo)
    listed = [item["path"] for item in result["untracked"]["files"]]
    assert "with space.txt" in listed
    assert "new\nline.txt" in listed
    assert "latin\\xe9.txt" in listed  # undecodable bytes shown escaped, never dropped
    json.dumps(result)


@pytest.mark.parametrize("stashes", [0, 1, 2])
@pytest.mark.parametrize("porcelain_stash_line", [True, False])
def test_stash_count(tmp_path, monkeypatch, stashes, porcelain_stash_line):
    if not porcelain_stash_line:  # as with git < 2.35: a second call counts the stash list
        monkeypatch.setattr(git_collect, "SHOW_STASH_GIT", (99, 0))
    repo = make_repo(tmp_path / "repo")
    for number in range(stashes):
        write(repo / "file0.txt", "wip %d\n" % number)
        git(repo, "stash", "push", "-q", "-m", "wip %d" % number)
    result = collect_repo(repo)
    assert result["stash_count"] == stashes
    assert result["modified"]["count"] == 0


# ---------------------------------------------------------------- remotes and secrets


def test_remote_credentials_are_removed(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", "https://deploy:%s@git.example.invalid/team/app.git" % CANARY)
    git(repo, "remote", "add", "bot", "https://%s@git.example.invalid/team/app.git" % CANARY)
    git(repo, "remote", "add", "github", "git@github.com:team/app.git")
    git(repo, "remote", "add", "ssh.mirror", "ssh://git@git.example.invalid:2222/team/app.git")
    git(repo, "remote", "add", "plain", "https://git.example.invalid/team/app.git")
    git(repo, "remote", "add", "query", "https://git.example.invalid/app.git?private_token=%s" % CANARY)
    commit(repo, {"a": "a\n"}, "Rotate the deploy token %s (was leaked)" % CANARY)
    result = collect_repo(repo)
    assert result["remotes"] == {
        "origin": "https://deploy:***@git.example.invalid/team/app.git",
        "bot": "https://***@git.example.invalid/team/app.git",
        "github": "git@github.com:team/app.git",
        "ssh.mirror": "ssh://git@git.example.invalid:2222/team/app.git",
        "plain": "https://git.example.invalid/team/app.git",
        "query": "https://git.example.invalid/app.git?private_token=***",
    }
    assert result["last_commit"]["subject"] == "Rotate the deploy token *** (was leaked)"
    assert result["history"][0]["subject"] == "Rotate the deploy token *** (was leaked)"
    assert CANARY not in json.dumps(result)
    assert CANARY[4:] not in json.dumps(result)


def test_failure_reasons_never_quote_git_output(tmp_path):
    """A URL in git's error text (a failed fetch) never reaches the result."""
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", "https://deploy:%s@127.0.0.1:9/team/app.git" % CANARY)
    result = collect_repo(repo, fetch=True, timeout=10)
    assert result["status"] == "ok"
    assert "fetch" in result["reason"]
    assert CANARY not in json.dumps(result)


# ---------------------------------------------------------------- submodules


def test_submodule_commit(tmp_path):
    sub = make_repo(tmp_path / "sub", commits=2)
    sub_head = git(sub, "rev-parse", "HEAD")
    repo = make_repo(tmp_path / "repo")
    write(repo / ".gitmodules", '[submodule "libs/sub"]\n\tpath = libs/sub\n\turl = ../sub\n')
    git(repo, "add", ".gitmodules")
    git(repo, "update-index", "--add", "--cacheinfo", "160000,%s,libs/sub" % sub_head)
    git(repo, "commit", "-q", "-m", "Add the submodule")
    result = collect_repo(repo)
    assert result["submodules"] == {"libs/sub": sub_head}
    assert result["history"][0]["files"] == [".gitmodules", "libs/sub"]


# ---------------------------------------------------------------- history


def test_history_order_parents_and_files(tmp_path):
    repo = make_repo(tmp_path / "repo", commits=1)
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, {"side.txt": "s\n", "dir/nested.txt": "n\n"}, "Side work")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"main.txt": "m\n"}, "Main work")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge side", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "Empty commit")
    git(repo, "rm", "-q", "main.txt")
    git(repo, "commit", "-q", "-m", "Remove main.txt")
    result = collect_repo(repo)

    expected_order = git(repo, "rev-list", "--topo-order", "HEAD").split()
    assert [c["sha"] for c in result["history"]] == expected_order
    by_subject = {c["subject"]: c for c in result["history"]}
    for entry in result["history"]:
        assert entry["parents"] == git(repo, "log", "-1", "--format=%P", entry["sha"]).split()
        assert entry["date"] == git(repo, "log", "-1", "--format=%cI", entry["sha"])
        assert set(entry) == {"sha", "parents", "subject", "date", "files", "files_truncated", "patch_id", "introduces"}
    assert len(by_subject["Merge side"]["parents"]) == 2
    assert by_subject["Merge side"]["files"] == []  # a merge lists no files
    assert by_subject["Empty commit"]["files"] == []
    assert by_subject["Side work"]["files"] == ["dir/nested.txt", "side.txt"]
    assert by_subject["Remove main.txt"]["files"] == ["main.txt"]
    assert by_subject["Commit 0"]["parents"] == []
    # Patch ids: keyed, for commits with one parent; an empty commit has none (no diff).
    assert by_subject["Merge side"]["patch_id"] is None and by_subject["Commit 0"]["patch_id"] is None
    assert by_subject["Empty commit"]["patch_id"] is None
    assert by_subject["Side work"]["patch_id"].startswith("hmac-sha256:")
    assert result["history_truncated"] is False


def test_commit_files_are_capped(tmp_path):
    repo = make_repo(tmp_path / "repo")
    many = {"many/%03d.txt" % n: "%d\n" % n for n in range(60)}
    commit(repo, many, "Sixty files")
    entry = collect_repo(repo)["history"][0]
    assert entry["files"] == sorted(many)[:50]
    assert entry["files_truncated"] is True


def test_renames_list_both_paths(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "mv", "file0.txt", "moved.txt")
    git(repo, "commit", "-q", "-m", "Move")
    assert collect_repo(repo)["history"][0]["files"] == ["file0.txt", "moved.txt"]


@pytest.mark.parametrize(("limit", "shown", "truncated"), [(3, 3, True), (5, 5, False), (200, 5, False), (0, 0, True)])
def test_history_limit(tmp_path, limit, shown, truncated):
    repo = make_repo(tmp_path / "repo", commits=5)
    result = collect_repo(repo, history_limit=limit)
    assert len(result["history"]) == shown
    assert result["history_truncated"] is truncated
    assert [c["subject"] for c in result["history"]] == ["Commit %d" % n for n in range(4, 4 - shown, -1)]
    assert result["last_commit"]["subject"] == "Commit 4"


def test_unborn_branch(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    write(repo / "first.txt", "1\n")
    git(repo, "add", "first.txt")
    write(repo / "later.txt", "2\n")
    result = collect_repo(repo)
    assert result["status"] == "ok"
    assert (result["head"], result["branch"], result["detached"]) == (None, "trunk", False)
    assert (result["tag"], result["describe"], result["last_commit"]) == (None, None, None)
    assert result["history"] == []
    assert paths(result["staged"]) == [("first.txt", "A")]
    assert paths(result["untracked"]) == [("later.txt", "?")]


# ---------------------------------------------------------------- statuses


def test_missing_path(tmp_path):
    result = collect_repo(tmp_path / "nowhere")
    assert (result["status"], result["reason"]) == ("missing", "The path does not exist.")
    assert result["path"] == str(tmp_path / "nowhere")


@pytest.mark.parametrize("kind", ["empty_dir", "file", "subdir_of_a_repo"])
def test_not_a_repository(tmp_path, kind):
    if kind == "empty_dir":
        target = tmp_path / "plain"
        target.mkdir()
    elif kind == "file":
        target = write(tmp_path / "file.txt", "x")
    else:
        # Inside another repository (a dotfiles repo in $HOME): never reported as that repository.
        make_repo(tmp_path / "outer")
        target = tmp_path / "outer" / "inner"
        target.mkdir()
    result = collect_repo(target)
    assert result["status"] == "not_a_repository"
    assert result["reason"].endswith(".")
    assert result["head"] is None


@needs_root
def test_dubious_ownership(tmp_path, _isolated_git_config):
    repo = make_repo(tmp_path / "repo")
    for path in (repo, *repo.rglob("*")):
        os.chown(path, 12345, 12345, follow_symlinks=False)
    before = _isolated_git_config.read_bytes()
    result = collect_repo(repo)
    assert result["status"] == "dubious_ownership"
    assert "safe.directory" in result["reason"]
    assert "will not override" in result["reason"]
    assert result["head"] is None and result["history"] == []
    # The user's git configuration is untouched (no safe.directory was added).
    assert _isolated_git_config.read_bytes() == before


@needs_root
def test_dubious_ownership_as_another_user():
    """An ordinary account auditing root's repository gets the same status (run through runuser)."""
    if shutil.which("runuser") is None:
        pytest.skip("runuser not available")
    # pytest's tmp_path is private to root: this repository must be reachable by `nobody`.
    base = Path(tempfile.mkdtemp(prefix="envparity-dubious-"))
    try:
        base.chmod(0o755)
        repo = make_repo(base / "repo")
        for path in (repo, *repo.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        code = (
            "import json, sys; sys.path.insert(0, %r); "
            "from ansible_collections.envparity.audit.plugins.module_utils.git_collect import collect_git; "
            "print(json.dumps(collect_git({'repos': [{'name': 'a', 'path': %r}]}, b'k')))"
        ) % (COLLECTIONS, str(repo))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base), "GIT_CONFIG_NOSYSTEM": "1"}
        proc = subprocess.run(
            ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-I", "-c", code],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
            cwd=str(base),
        )
        if proc.returncode != 0 and "Permission denied" in proc.stderr:
            pytest.skip("nobody cannot run this interpreter or read the collection")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["repos"]["a"]["status"] == "dubious_ownership"
    finally:
        shutil.rmtree(base)


def _remove_object(repo, rev):
    sha = git(repo, "rev-parse", rev)
    path = repo / ".git" / "objects" / sha[:2] / sha[2:]
    path.chmod(0o644)
    path.unlink()


@pytest.mark.parametrize(
    "damage",
    [
        lambda repo: write(repo / ".git" / "HEAD", "garbage, not a ref\n"),
        lambda repo: _remove_object(repo, "HEAD"),
        lambda repo: _remove_object(repo, "HEAD^{tree}"),
        lambda repo: _remove_object(repo, "HEAD~1"),
        lambda repo: write(repo / ".git" / "index", b"DIRC garbage"),
        lambda repo: shutil.rmtree(repo / ".git" / "objects"),
        lambda repo: write(repo / ".git" / "config", "[core\nbroken = \n"),
    ],
    ids=[
        "garbage_head",
        "missing_commit",
        "missing_tree",
        "missing_parent",
        "garbage_index",
        "no_objects",
        "bad_config",
    ],
)
def test_corrupt_repository(tmp_path, damage):
    repo = make_repo(tmp_path / "repo", commits=3)
    damage(repo)
    result = collect_repo(repo)
    assert result["status"] == "corrupt", result["reason"]
    assert result["reason"].endswith(".")


def test_git_missing(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(git_collect, "GIT_FALLBACKS", ())
    result = collect_git(
        {"repos": [{"name": "app", "path": str(repo)}, {"name": "gone", "path": str(tmp_path / "gone")}]}, KEY
    )
    assert result["repos"]["app"]["status"] == "git_missing"
    assert "not installed" in result["repos"]["app"]["reason"]
    assert result["repos"]["gone"]["status"] == "missing"  # the path's own problem comes first


def _fake_git(tmp_path, body):
    bindir = tmp_path / "fake-bin"
    bindir.mkdir()
    write(
        bindir / "git",
        '#!/bin/sh\nif [ "$3" = "--version" ]; then echo "git version 2.39.5"; exit 0; fi\n%s\n' % body,
        0o755,
    )
    return bindir


def test_timeout_kills_git_and_its_children(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    # The child `sleep` keeps stdout open: killing only the shell would leave the read hanging.
    monkeypatch.setenv("PATH", "%s:%s" % (_fake_git(tmp_path, "sleep 30"), os.environ["PATH"]))
    started = time.monotonic()
    result = collect_repo(repo, timeout=1)
    assert time.monotonic() - started < 10
    assert result["status"] == "timeout"
    assert result["reason"] == "git did not answer within 1 seconds while reading the configuration."


def test_too_old_git(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    bindir = tmp_path / "old-bin"
    bindir.mkdir()
    write(bindir / "git", '#!/bin/sh\necho "git version 2.7.4"\n', 0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    result = collect_repo(repo)
    assert result["status"] == "failed"
    assert "too old" in result["reason"]
    # Older still: git does not know --no-optional-locks at all.
    write(bindir / "git", '#!/bin/sh\necho "unknown option: --no-optional-locks" >&2\nexit 129\n', 0o755)
    result = collect_repo(repo)
    assert result["status"] == "failed"
    assert "too old" in result["reason"] and "2.15" in result["reason"]


def test_one_bad_repository_never_hides_the_others(tmp_path):
    good = make_repo(tmp_path / "good")
    bad = make_repo(tmp_path / "bad")
    write(bad / ".git" / "HEAD", "garbage\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    request = {
        "repos": [
            {"name": "bad", "path": str(bad)},
            {"name": "gone", "path": str(tmp_path / "gone")},
            {"name": "plain", "path": str(plain)},
            {"name": "good", "path": str(good)},
        ]
    }
    repos = collect_git(request, KEY)["repos"]
    assert {name: repos[name]["status"] for name in repos} == {
        "bad": "corrupt",
        "gone": "missing",
        "plain": "not_a_repository",
        "good": "ok",
    }


# ---------------------------------------------------------------- how git is run


def test_every_call_is_read_only_and_non_interactive(tmp_path, monkeypatch):
    repo = _dirty_repo(tmp_path)
    git(repo, "remote", "add", "origin", "https://git.example.invalid/x.git")
    git(repo, "tag", "v1")
    calls = []
    real_popen = subprocess.Popen

    def spy(argv, **kwargs):
        calls.append((list(argv), kwargs))
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(bounded_run.subprocess, "Popen", spy)  # git runs through bounded_run
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))  # an inherited GIT_DIR is ignored
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'safe.directory'='*'")
    result = collect_repo(repo)
    assert result["status"] == "ok"
    assert calls[0][0][1:] == ["--no-optional-locks", "--no-pager", "--version"]
    repo_calls = calls[1:]
    assert 1 <= len(repo_calls) <= 10
    commands = [_command(argv) for argv, _ in repo_calls]
    assert set(commands) <= {"status", "describe", "log", "config", "ls-files", "rev-parse", "diff-tree", "patch-id"}
    for argv, kwargs in repo_calls:
        assert isinstance(argv, list)
        assert argv[1:3] == ["--no-optional-locks", "--no-pager"]
        settings = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
        assert {"core.fsmonitor=", "core.hooksPath=/dev/null", "credential.helper=", "protocol.allow=never"} <= set(
            settings
        )
        assert not any("safe.directory" in arg for arg in argv)
        if _command(argv) == "config":
            assert "--list" in argv  # reads only
        if _command(argv) == "diff-tree":
            assert {"--no-ext-diff", "--no-textconv"} <= set(argv)
        assert kwargs["stdin"] in (subprocess.DEVNULL, subprocess.PIPE)
        env = kwargs["env"]
        assert env["LC_ALL"] == "C"
        assert env["GIT_OPTIONAL_LOCKS"] == "0"
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert os.path.basename(env["GIT_ASKPASS"]) == "true"
        assert env["GIT_SSH_COMMAND"] == "ssh -o BatchMode=yes"
        assert "GIT_DIR" not in env and "GIT_CONFIG_PARAMETERS" not in env
        assert env["GIT_CEILING_DIRECTORIES"] == str(tmp_path)
        assert kwargs["cwd"] == str(repo)
    assert "fetch" not in commands


def _command(argv):
    """The git command of an argv: the first word after the global options and -c pairs."""
    index = 1
    while argv[index].startswith("--") or argv[index] == "-c":
        index += 2 if argv[index] == "-c" else 1
    return argv[index]


def _snapshot(repo):
    """sha256 of .git/index, every ref, and mode/mtime/content of everything under the repo."""
    state = {}
    for path in (repo, *sorted(repo.rglob("*"))):
        st = path.lstat()
        digest = None
        if stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        state[str(path.relative_to(repo))] = (st.st_mode, st.st_mtime_ns, st.st_size, digest)
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return state, refs


def test_collect_never_writes_into_the_repository(tmp_path):
    repo = _dirty_repo(tmp_path)
    git(repo, "remote", "add", "origin", "https://deploy:%s@git.example.invalid/x.git" % CANARY)
    git(repo, "tag", "v1")
    write(repo / "keep.txt", "k\n")  # same content, new mtime: a plain `git status` would refresh the index
    os.utime(repo / "keep.txt", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    index = repo / ".git" / "index"
    index_sha = hashlib.sha256(index.read_bytes()).hexdigest()
    before = _snapshot(repo)
    time.sleep(0.05)
    for _ in range(2):
        assert collect_repo(repo)["status"] == "ok"
    assert hashlib.sha256(index.read_bytes()).hexdigest() == index_sha
    after = _snapshot(repo)
    assert after[1] == before[1]
    assert [name for name in set(before[0]) | set(after[0]) if before[0].get(name) != after[0].get(name)] == []
    # The check is meaningful: an ordinary `git status` does rewrite this index.
    subprocess.run(["git", "-C", str(repo), "status"], capture_output=True, check=True)
    assert hashlib.sha256(index.read_bytes()).hexdigest() != index_sha


# ---------------------------------------------------------------- deploy dirs


def _site(root):
    write(root / "index.html", "<h1>hi</h1>\n")
    write(root / "app.js", "console.log(1)\n", 0o640)
    write(root / "deploy.sh", "#!/bin/sh\n", 0o755)
    write(root / "assets" / "logo.svg", "<svg/>\n")
    write(root / "assets" / "same.txt", "<h1>hi</h1>\n")
    write(root / "logs" / "today.log", "log\n")
    write(root / "cache" / "deep" / "x.bin", "x")
    write(root / "node_modules" / "lib" / "index.js", "x")
    write(root / "a.pyc", "x")
    write(root / ".git" / "HEAD", "ref: refs/heads/main\n")
    write(root / "sub" / ".git", "gitdir: ../x\n")
    (root / "link-in").symlink_to("assets/logo.svg")
    (root / "link-out").symlink_to("/etc")
    (root / "dangling").symlink_to("missing/file")
    os.mkfifo(root / "pipe")
    return root


def collect_site(root, ignore=(), key=KEY, **settings):
    result = collect(deploy=(root, list(ignore)), key=key, **settings)
    entry = result["deploy_dirs"]["site"]
    assert set(entry) == DEPLOY_FIELDS
    json.dumps(entry)
    return entry


def test_deploy_dir_manifest(tmp_path):
    root = _site(tmp_path / "site")
    done = {}
    worker = threading.Thread(
        target=lambda: done.setdefault("r", collect_site(root, ["*.log", "cache", "node_modules/", "*.pyc"]))
    )
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "the collector blocked (on the FIFO?)"
    result = done["r"]
    assert (result["status"], result["reason"], result["path"]) == ("ok", None, str(root))
    assert sorted(result["files"]) == [
        "app.js",
        "assets/logo.svg",
        "assets/same.txt",
        "dangling",
        "deploy.sh",
        "index.html",
        "link-in",
        "link-out",
    ]
    assert result["count"] == 8
    assert (result["truncated"], result["skipped"], result["unreadable"]) == (False, 1, [])
    files = result["files"]
    assert files["index.html"] == {"size": 12, "mode": "0644", "fp": fingerprint(KEY, "<h1>hi</h1>\n")}
    assert files["app.js"]["mode"] == "0640"
    assert files["deploy.sh"]["mode"] == "0755"
    assert files["assets/same.txt"]["fp"] == files["index.html"]["fp"]  # equal content, equal fingerprint
    assert files["app.js"]["fp"] != files["index.html"]["fp"]
    assert files["link-in"] == {
        "size": len("assets/logo.svg"),
        "mode": "0777",
        "fp": fingerprint(KEY, "assets/logo.svg"),
        "link": True,
    }
    assert files["link-out"]["fp"] == fingerprint(KEY, "/etc")  # recorded, never followed
    assert files["dangling"]["link"] is True
    assert not any(name.startswith(("link-out/", "etc")) for name in files)


@pytest.mark.parametrize(
    ("ignore", "expected"),
    [
        ([], {"a/b/c.txt", "a/keep.md", "top.txt", "x.log"}),
        (["*.txt"], {"a/keep.md", "x.log"}),
        (["a"], {"top.txt", "x.log"}),
        (["a/b"], {"a/keep.md", "top.txt", "x.log"}),
        (["b/"], {"a/keep.md", "top.txt", "x.log"}),
        (["x.log/"], {"a/b/c.txt", "a/keep.md", "top.txt", "x.log"}),  # "dir/" matches directories only
        (["a/*"], {"top.txt", "x.log"}),
        (["*.log", "top.*"], {"a/b/c.txt", "a/keep.md"}),
    ],
)
def test_deploy_dir_ignore_globs(tmp_path, ignore, expected):
    root = tmp_path / "d"
    for rel in ("a/b/c.txt", "a/keep.md", "top.txt", "x.log"):
        write(root / rel, rel)
    assert set(collect_site(root, ignore)["files"]) == expected


def test_deploy_dir_truncation_is_deterministic(tmp_path):
    root = tmp_path / "d"
    for n in range(7):
        write(root / ("dir%d" % (n % 2)) / ("f%d" % n), str(n))
    result = collect_site(root, manifest_limit=3)
    assert (result["count"], result["truncated"], len(result["files"])) == (7, True, 3)
    assert list(result["files"]) == ["dir0/f0", "dir0/f2", "dir0/f4"]
    assert collect_site(root, manifest_limit=7)["truncated"] is False


def test_deploy_dir_fingerprints(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    big = os.urandom(3 * git_collect.READ_CHUNK + 17)
    for root in (one, two):
        write(root / "same.txt", "same\n")
        write(root / "big.bin", big)
    write(one / "differs.txt", "one\n")
    write(two / "differs.txt", "two\n")
    a, b = collect_site(one)["files"], collect_site(two)["files"]
    assert a["same.txt"]["fp"] == b["same.txt"]["fp"]
    assert a["big.bin"]["fp"] == b["big.bin"]["fp"] == fingerprint_bytes(KEY, big)  # streamed in chunks
    assert a["big.bin"]["size"] == len(big)
    assert a["differs.txt"]["fp"] != b["differs.txt"]["fp"]
    assert a["differs.txt"]["size"] == b["differs.txt"]["size"]
    # Another run's key gives other fingerprints: nothing to compare across runs.
    assert collect_site(one, key=OTHER_KEY)["files"]["same.txt"]["fp"] != a["same.txt"]["fp"]
    assert "same" not in json.dumps(a).replace("same.txt", "")


def test_deploy_dir_statuses(tmp_path):
    assert collect_site(tmp_path / "gone")["status"] == "missing"
    assert collect_site(write(tmp_path / "file", "x"))["status"] == "not_a_directory"
    real = tmp_path / "releases" / "42"
    write(real / "index.html", "x")
    (tmp_path / "current").symlink_to(real)
    followed = collect_site(tmp_path / "current")  # the top may be a symlink: followed
    assert (followed["status"], list(followed["files"])) == ("ok", ["index.html"])


def _collect_as_nobody(request):
    code = (
        "import json, sys; sys.path.insert(0, %r); "
        "from ansible_collections.envparity.audit.plugins.module_utils.git_collect import collect_git; "
        "print(json.dumps(collect_git(json.loads(sys.argv[1]), %r)))"
    ) % (COLLECTIONS, KEY)
    proc = subprocess.run(
        ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-I", "-c", code, json.dumps(request)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"},
        timeout=60,
        check=False,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_deploy_dir_unreadable_parts():
    """Root reads everything: as root, the collector runs as `nobody` (through runuser)."""
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("runuser not available")
    base = Path(tempfile.mkdtemp(prefix="envparity-unreadable-"))
    try:
        base.chmod(0o755)
        root = base / "d"
        write(root / "ok.txt", "fine\n")
        write(root / "secret.txt", "x", 0o000)
        write(root / "closed" / "f", "x")
        write(base / "top" / "f", "x")
        if as_root:
            for path in (base, *base.rglob("*")):
                os.chown(path, 65534, 65534)
        (root / "closed").chmod(0o000)
        (base / "top").chmod(0o000)
        request = {
            "deploy_dirs": [
                {"name": "site", "path": str(root), "ignore": []},
                {"name": "top", "path": str(base / "top"), "ignore": []},
            ]
        }
        result = (_collect_as_nobody(request) if as_root else collect_git(request, KEY))["deploy_dirs"]
    finally:
        for path in (root / "closed", base / "top"):
            path.chmod(0o755)
        shutil.rmtree(base)
    site = result["site"]
    assert site["status"] == "ok"
    assert site["files"]["secret.txt"] == {"size": 1, "mode": "0000", "fp": None, "unreadable": True}
    assert site["files"]["ok.txt"]["fp"] == fingerprint(KEY, "fine\n")
    assert site["unreadable"] == ["secret.txt", "closed/"]
    assert site["count"] == 2
    assert (result["top"]["status"], result["top"]["reason"]) == (
        "unreadable",
        "Permission denied when reading the directory.",
    )


def test_repos_and_deploy_dirs_together(tmp_path):
    repo = make_repo(tmp_path / "repo", commits=1)
    write(repo / "site" / "index.html", "x")
    result = collect_git(
        {
            "project_dir": str(repo),
            "repos": [{"name": "app", "path": "."}],
            "deploy_dirs": [{"name": "site", "path": "site", "ignore": []}, {"name": "whole", "path": "."}],
        },
        KEY,
    )
    assert result["repos"]["app"]["status"] == "ok"
    assert list(result["deploy_dirs"]["site"]["files"]) == ["index.html"]
    assert sorted(result["deploy_dirs"]["whole"]["files"]) == ["file0.txt", "site/index.html"]  # .git skipped


def test_empty_request():
    assert collect_git({}, KEY) == {"repos": {}, "deploy_dirs": {}}


# ---------------------------------------------------------------- programs the configuration names


def test_parse_config_list_with_and_without_scopes():
    scoped = b"local\0core.bare\nfalse\0local\0alias.x\n!a\nb\0global\0core.flag\0worktree\0pager.log\nless\0"
    assert git_collect.parse_config_list(scoped, scoped=True) == [
        ("local", "core.bare", "false"),
        ("local", "alias.x", "!a\nb"),  # a value keeps its own newlines
        ("global", "core.flag", None),  # written without "=": no value
        ("worktree", "pager.log", "less"),
    ]
    assert git_collect.parse_config_list(b"filter.X y.clean\ncat\0core.flag\0", scoped=False) == [
        (None, "filter.X y.clean", "cat"),
        (None, "core.flag", None),
    ]


@pytest.mark.parametrize(
    ("key", "value", "names"),
    [
        ("core.fsmonitor", "/srv/hook", True),
        ("core.fsmonitor", "true", True),  # git's daemon: still a process
        ("core.fsmonitor", "false", False),
        ("core.fsmonitor", None, True),
        ("filter.lfs.process", "git-lfs filter-process", True),
        ("filter.x.required", "true", False),
        ("diff.pdf.textconv", "pdftotext", True),
        ("diff.external", "difft", True),
        ("core.hookspath", ".githooks", True),
        ("core.sshcommand", "ssh -i k", True),
        ("credential.helper", "store", True),
        ("credential.https://h.example.helper", "x", True),
        ("credential.helper", "", False),
        ("gpg.program", "gpg2", True),
        ("gpg.ssh.program", "ssh-keygen", True),
        ("pager.log", "false", False),
        ("pager.log", "less -R", True),
        ("alias.st", "status", False),
        ("alias.boom", "!sh -c x", True),
        ("remote.origin.uploadpack", "x", True),
        ("remote.origin.url", "https://x.example", False),
        ("user.name", "x", False),
    ],
)
def test_which_keys_name_a_program(key, value, names):
    assert git_collect.declared_programs([("local", key, value)]) == ([key] if names else [])


def test_neutral_overrides_cover_every_declared_filter_and_remote():
    entries = [
        ("global", "filter.lfs.process", "git-lfs filter-process"),
        ("local", "filter.Crypt.clean", "x"),
        ("local", "remote.origin.url", "/srv/x.git"),
        ("local", "protocol.ext.allow", "always"),
        ("local", "protocol.evil.allow", "always"),
    ]
    args = git_collect.neutral_overrides(entries)
    settings = [args[i + 1] for i in range(0, len(args), 2)]
    assert set(args[0::2]) == {"-c"}
    for name in ("lfs", "Crypt"):
        assert {"filter.%s.%s=" % (name, part) for part in ("clean", "smudge", "process")} <= set(settings)
        assert "filter.%s.required=false" % name in settings
    assert "remote.origin.uploadpack=git-upload-pack" in settings
    # The repository's protocol.<name>.allow would beat protocol.allow: each is set again.
    assert {"protocol.allow=never", "protocol.ext.allow=never", "protocol.evil.allow=never"} <= set(settings)
    with pytest.raises(git_collect.GitError):
        git_collect.neutral_overrides([("local", "filter.a=b.clean", "x")])


@pytest.mark.parametrize("scoped", [True, False])
def test_declared_programs_come_from_the_repository_and_its_includes(
    tmp_path, monkeypatch, _isolated_git_config, scoped
):
    if not scoped:  # as with git < 2.26: the repository's own file is read with --local
        monkeypatch.setattr(git_collect, "SHOW_SCOPE_GIT", (99, 0))
    _isolated_git_config.write_text('[filter "lfs"]\n\tprocess = git-lfs filter-process\n[core]\n\tpager = less\n')
    repo = make_repo(tmp_path / "repo")
    write(tmp_path / "included.cfg", "[core]\n\tfsmonitor = /never/run\n")
    git(repo, "config", "include.path", str(tmp_path / "included.cfg"))
    write(tmp_path / "conditional.cfg", "[diff]\n\texternal = /never/run\n")
    git(repo, "config", "includeIf.gitdir:%s/.path" % repo, str(tmp_path / "conditional.cfg"))
    git(repo, "config", "diff.pdf.textconv", "pdftotext")
    result = collect_repo(repo)
    # The user's own configuration (lfs, pager) is neutralised but not reported.
    assert result["declared_programs"] == ["core.fsmonitor", "diff.external", "diff.pdf.textconv"]


def test_hidden_changes_are_reported_from_the_bytes_on_disk(tmp_path):
    """assume-unchanged and skip-worktree marks hide an edit from status; the bytes do not lie."""
    repo = make_repo(tmp_path / "repo")
    commit(repo, {"assumed.txt": "a\n", "skipped.txt": "s\n", "gone.txt": "g\n", "sparse.txt": "p\n"}, "Files")
    git(repo, "update-index", "--assume-unchanged", "assumed.txt", "gone.txt")
    git(repo, "update-index", "--skip-worktree", "skipped.txt", "sparse.txt")
    write(repo / "assumed.txt", "edited on the server\n")
    write(repo / "skipped.txt", "edited too\n")
    (repo / "gone.txt").unlink()
    (repo / "sparse.txt").unlink()  # absent by design in a sparse checkout: not reported
    assert git(repo, "status", "--porcelain") == ""  # git itself says nothing
    result = collect_repo(repo)
    assert paths(result["modified"]) == [("assumed.txt", "M"), ("gone.txt", "D"), ("skipped.txt", "M")]


def test_blob_ids_follow_the_object_format(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    made = subprocess.run(["git", "init", "-q", "--object-format=sha256", str(repo)], check=False, capture_output=True)
    if made.returncode:
        pytest.skip("this git has no sha256 repositories")
    commit(repo, {"a.txt": "a\n"}, "One")
    git(repo, "update-index", "--assume-unchanged", "a.txt")
    assert collect_repo(repo)["modified"]["count"] == 0  # same bytes, same sha256 blob id
    write(repo / "a.txt", "b\n")
    assert paths(collect_repo(repo)["modified"]) == [("a.txt", "M")]


# ---------------------------------------------------------------- token-looking names


TOKEN_NAME = "sk-" + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(30))


def test_mask_secret_name():
    masked = git_collect.mask_secret_name("config/%s.json" % TOKEN_NAME, KEY)
    assert masked.startswith("config/\u2039secret-looking name ") and TOKEN_NAME not in masked
    marker = masked.split("/")[1]
    assert marker == "\u2039secret-looking name %s\u203a" % fingerprint(KEY, TOKEN_NAME + ".json")[12:20]
    assert git_collect.mask_secret_name("config/%s.json" % TOKEN_NAME, KEY) == masked  # aligns across hosts
    assert git_collect.mask_secret_name("config/%s.json" % TOKEN_NAME, OTHER_KEY) != masked  # keyed
    assert git_collect.mask_secret_name("src/app/settings.py", KEY) == "src/app/settings.py"
    base64ish = "aB3/xY9+Qw2/Lm5=Zp7/Rt4/Kd8/Vn1"  # a token only as a whole
    assert git_collect.mask_secret_name(base64ish, KEY).startswith("\u2039secret-looking name")


def test_token_looking_file_names_never_leave_the_host(tmp_path):
    repo = make_repo(tmp_path / "repo")
    write(repo / "keys" / TOKEN_NAME, "x")
    write(repo / "notes.txt", "x")
    untracked = [item["path"] for item in collect_repo(repo)["untracked"]["files"]]
    assert untracked[1] == "notes.txt" and untracked[0].startswith("keys/\u2039secret-looking name ")
    site = tmp_path / "site"
    write(site / TOKEN_NAME / "a.txt", "x")
    (site / ("locked-" + TOKEN_NAME)).mkdir()
    (site / ("locked-" + TOKEN_NAME)).chmod(0)
    try:
        entry = collect_site(site)
    finally:
        (site / ("locked-" + TOKEN_NAME)).chmod(0o755)
    assert TOKEN_NAME not in json.dumps(entry)
    assert [name.endswith("/a.txt") and name.startswith("\u2039") for name in entry["files"]] == [True]


def _lfs_pointer(content):
    return "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
        hashlib.sha256(content).hexdigest(),
        len(content),
    )


def test_git_lfs_files_are_checked_against_their_pointer_without_running_git_lfs(tmp_path):
    """A filtered file whose blob is an LFS pointer is unchanged when its bytes are what the pointer names."""
    repo = make_repo(tmp_path / "repo")
    real = b"\x00big binary\xff" * 100
    commit(repo, {"model.bin": _lfs_pointer(real), "other.bin": _lfs_pointer(b"x"), "plain.bin": "p\n"}, "LFS")
    write(repo / ".gitattributes", "*.bin filter=lfs\n")
    git(repo, "config", "filter.lfs.process", "/never/run/git-lfs filter-process")
    git(repo, "config", "filter.lfs.required", "true")
    write(repo / "model.bin", real)  # what a smudge would have written
    write(repo / "other.bin", b"not what the pointer names")
    write(repo / "plain.bin", "p, edited\n")  # not a pointer blob: compared as bytes
    git(repo, "update-index", "--refresh", "-q", check=False)
    result = collect_repo(repo)
    assert result["status"] == "ok"
    assert [path for path, _ in paths(result["modified"])] == ["other.bin", "plain.bin"]
    assert result["declared_programs"] == ["filter.lfs.process"]


def test_parse_cat_file_batch_and_lfs_pointers():
    pointer = _lfs_pointer(b"abc").encode()
    data = b"aaaa blob %d\n%s\nbbbb missing\ncccc blob 2\nhi\n" % (len(pointer), pointer)
    blobs = git_collect.parse_cat_file_batch(data)
    assert blobs == {"aaaa": pointer, "cccc": b"hi"}
    assert git_collect.parse_lfs_pointer(pointer) == (hashlib.sha256(b"abc").hexdigest(), 3)
    assert git_collect.parse_lfs_pointer(b"hi") is None
    assert git_collect.parse_lfs_pointer(None) is None
