"""What the git area must find in the lab, computed with git itself (not with envparity, and not
from the lab's list of what it planted): commit placement from `git rev-list`, cherry-picks from
`git patch-id`, the working tree from `git status`, stashes, remotes and branches from git's own
plumbing, and the deployed files by hashing them.

Every git call here is read-only and runs nothing the repository chooses: no optional locks (the
index is not even refreshed), no fsmonitor, hooks, pager, external diff or text conversion,
filters emptied, system configuration ignored; it runs as the checkout's owner.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import subprocess
from pathlib import Path

# The lab's git configuration (inventory/lab group_vars): repository `app` at each project's
# root, deploy dir `site` (dev: site/ in the checkout; prod: a copy deployed without git).
DEV_DIR = Path("/var/lib/envparity-lab/dev/personal_assistant")
PROD_DIR = Path("/home/deploy/ai_assistant")
STATIC_DIR = Path("/home/deploy/ai_assistant_static")
REPOS = {"app": {"dev": DEV_DIR, "prod": PROD_DIR}}
DEPLOY_DIRS = {"site": {"dev": DEV_DIR / "site", "prod": STATIC_DIR}}
BASELINE, PRODUCTION = "dev", "prod"

SAFE = [
    "--no-pager",
    "--no-optional-locks",
    "-c",
    "core.fsmonitor=",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.pager=cat",
    "-c",
    "diff.external=",
    "-c",
    "core.untrackedCache=false",
]
# Configuration keys that make git run a program (a repository declaring one gets git.runs_programs).
PROGRAM_KEY = re.compile(
    r"^(core\.(fsmonitor|sshcommand|pager|editor|askpass|hookspath|gitproxy)|filter\..+\.(clean|smudge|process)"
    r"|diff\..+\.(command|textconv)|merge\..+\.driver|credential(\..+)?\.helper|gpg(\..+)?\.program"
    r"|include(if\..+)?\.path|sequence\.editor|uploadpack\.packobjectshook|remote\..+\.(uploadpack|receivepack)"
    r"|protocol\..+\.allow|alias\..+)$",
    re.IGNORECASE,
)


def _filter_overrides(repo: Path, cmd: list[str], env: dict) -> list[str]:
    """`-c filter.<driver>.<program>=` for every filter driver the configuration declares."""
    listing = subprocess.run(
        [*cmd, "-C", str(repo), "config", "--name-only", "--get-regexp", r"^filter\."],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    ).stdout.split()
    drivers = sorted({key.split(".", 1)[1].rsplit(".", 1)[0] for key in listing})
    return [
        arg
        for driver in drivers
        for part in ("clean", "smudge", "process")
        for arg in ("-c", "filter.%s.%s=" % (driver, part))
    ]


def run_git(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    owner = pwd.getpwuid(repo.stat().st_uid).pw_name
    cmd = ["git", *SAFE]
    if owner != pwd.getpwuid(os.geteuid()).pw_name:
        cmd = ["runuser", "-u", owner, "--", *cmd]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(Path("~" + owner).expanduser()),
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    cmd = [*cmd, *_filter_overrides(repo, cmd, env), "-C", str(repo), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, check=False, env=env)


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    proc = run_git(repo, *args, stdin=stdin)
    assert proc.returncode == 0, "git %s in %s: %s" % (" ".join(args), repo, proc.stderr)
    return proc.stdout


def commits(repo: Path) -> list[str]:
    """Every commit reachable from HEAD, newest first."""
    return git(repo, "rev-list", "HEAD").split()


def patch_id(repo: Path, sha: str) -> str | None:
    patch = git(repo, "diff-tree", "-p", "--no-ext-diff", "--no-textconv", "--root", sha)
    ids = git(repo, "patch-id", "--stable", stdin=patch).split()
    return ids[0] if ids else None


def placement(base: Path, other: Path) -> str | None:
    """The check for where other's HEAD sits against base's, or None when both are at one commit.

    The two checkouts are separate repositories: their commit sets (full histories) are compared."""
    base_commits, other_commits = commits(base), commits(other)
    if base_commits[:1] == other_commits[:1]:
        return None
    lacking = [sha for sha in base_commits if sha not in set(other_commits)]
    only = [sha for sha in other_commits if sha not in set(base_commits)]
    if not only:
        return "git.behind"
    if not lacking:
        return "git.ahead"
    if not set(base_commits) & set(other_commits):
        return "git.unrelated"
    lacking_ids = {patch_id(base, sha) for sha in lacking} - {None}
    if all(patch_id(other, sha) in lacking_ids for sha in only):
        return "git.cherry_picked"
    return "git.diverged"


def worktree(repo: Path) -> dict[str, list[str]]:
    """staged / modified / untracked paths, from `git status --porcelain=v1 -z` (all untracked files)."""
    parts = {"staged": [], "modified": [], "untracked": []}
    entries = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all").split("\0")
    skip = False
    for entry in entries:
        if skip or not entry:
            skip = False
            continue
        code, path = entry[:2], entry[3:]
        if code == "??":
            parts["untracked"].append(path)
            continue
        if code[0] not in " ?":
            parts["staged"].append(path)
        if code[1] != " ":
            parts["modified"].append(path)
        skip = code[0] in "RC"  # a rename's source path follows
    return parts


def stash_count(repo: Path) -> int:
    return len(git(repo, "stash", "list", "--format=%H").split())


def branch(repo: Path) -> str:
    proc = run_git(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
    return proc.stdout.strip() if proc.returncode == 0 else "(detached)"


def remotes(repo: Path) -> dict[str, str]:
    return {name: git(repo, "remote", "get-url", name).strip() for name in git(repo, "remote").split()}


def submodules(repo: Path) -> dict[str, str]:
    """{path: commit} of the submodules recorded in HEAD's tree."""
    found = {}
    for line in git(repo, "ls-tree", "-r", "-z", "HEAD").split("\0"):
        if line.startswith("160000 commit "):
            meta, path = line.split("\t", 1)
            found[path] = meta.split()[2]
    return found


def program_keys(repo: Path) -> list[str]:
    """The repository's own configuration keys that name a program git would run."""
    keys = git(repo, "config", "--local", "--name-only", "--list").split()
    return sorted(key for key in keys if PROGRAM_KEY.match(key))


def files(directory: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mode)} of every regular file below a directory."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink() and ".git" not in path.relative_to(directory).parts:
            found[str(path.relative_to(directory))] = (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                path.stat().st_mode & 0o7777,
            )
    return found


def _keyed(subject: str, prefix: str, base: dict, other: dict, check: str) -> set[tuple]:
    found = set()
    for name in set(base) | set(other):
        if name not in other:
            found.add((subject, prefix + name, "missing", check))
        elif name not in base:
            found.add((subject, prefix + name, "extra", check))
        elif base[name] != other[name]:
            found.add((subject, prefix + name, "changed", check))
    return found


def repo_findings(subject: str, base: Path, other: Path, other_is_production: bool = True) -> set[tuple]:
    """(subject, key, kind, check) of everything git shows between a baseline checkout and another."""
    found = set()
    where = placement(base, other)
    if where:
        found.add((subject, "head", "changed", where))
    if branch(base) != branch(other):
        found.add((subject, "branch", "changed", "git.branch_changed"))
    if program_keys(base) or program_keys(other):
        found.add((subject, "@programs", "policy", "git.runs_programs"))
    trees = {"base": worktree(base), "other": worktree(other)}
    production = trees["other"] if other_is_production else None
    if production and (production["staged"] or production["modified"]):
        found.add((subject, "worktree.modified", "policy", "git.uncommitted_production"))
    if production and production["untracked"]:
        found.add((subject, "worktree.untracked", "policy", "git.untracked_production"))
    if any(trees["base"].values()) or (not other_is_production and any(trees["other"].values())):
        found.add((subject, "worktree.dev", "policy", "git.uncommitted_dev"))
    if stash_count(base) != stash_count(other):
        found.add((subject, "stash", "changed", "git.stash"))
    found |= _keyed(subject, "remotes.", remotes(base), remotes(other), "git.remote_changed")
    found |= _keyed(subject, "submodules.", submodules(base), submodules(other), "git.submodule_changed")
    return found


def deploy_dir_findings(subject: str, base: Path, other: Path) -> set[tuple]:
    found = set()
    base_files, other_files = files(base), files(other)
    for path in set(base_files) | set(other_files):
        if path not in other_files:
            found.add((subject, path, "missing", "git.file_missing"))
        elif path not in base_files:
            found.add((subject, path, "extra", "git.file_extra"))
        elif base_files[path][0] != other_files[path][0]:
            found.add((subject, path, "changed", "git.file_changed"))
        elif base_files[path][1] != other_files[path][1]:
            found.add((subject, path, "changed", "git.file_mode"))
    return found


def lab_findings() -> set[tuple]:
    """Every git finding the lab's state calls for: (subject, key, kind, check)."""
    found = set()
    for subject, where in REPOS.items():
        found |= repo_findings(subject, where[BASELINE], where[PRODUCTION])
    for subject, where in DEPLOY_DIRS.items():
        found |= deploy_dir_findings(subject, where[BASELINE], where[PRODUCTION])
    return found
