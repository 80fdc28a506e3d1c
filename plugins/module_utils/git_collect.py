"""Collect git repositories and deployed directories on a host, read-only.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Repositories are only queried.  Every git call is
``git --no-optional-locks --no-pager -c ... <command> ...`` from an argv list,
with stdin from /dev/null (or the paths or diffs it reads), a timeout,
LC_ALL=C (the error texts are matched), no prompt of any kind
(GIT_TERMINAL_PROMPT=0, an askpass that answers nothing), and an environment
cleared of the GIT_* variables that would point git at another repository,
index or configuration.  Nothing changes git's configuration, and nothing gets
around git's own checks: a repository git refuses for "dubious ownership" is
reported as such, never opened with ``safe.directory``.
GIT_CEILING_DIRECTORIES stops git at the configured directory, so a directory
inside some other repository (a dotfiles repository in $HOME) is reported as
"not a repository" instead of showing that other repository.

No program a configuration names runs (the audited host chooses those): the
configuration is read first (``git config --list``, which runs nothing), then
every call gets ``-c`` overrides (neutral_overrides) for the fsmonitor, hooks,
pagers, credential helpers, filter drivers, upload-pack and transports, and
the environment fixes the ssh command, askpass and editor; diffs are made with
--no-ext-diff --no-textconv; submodules are not asked for their own status
(--ignore-submodules=dirty), which would run under their own configuration.
Content therefore never goes through a filter, and the files whose change
git's status could miss (a filter attribute, assume-unchanged, skip-worktree)
are hashed from disk and compared with the index's blob.  The names (never the
values) of the repository's own settings that name programs are reported.

A repository costs at most thirteen git calls: the configuration (two before
git 2.26), status (branch, upstream, ahead/behind, staged, modified and
untracked files, stash count), the index (submodules, marks), the filter
attributes (only when a filter driver is configured), two cat-file reads (only
when a filtered file differs from its blob: is the blob a Git LFS pointer to
the bytes on disk?), describe, log (history and the last
commit, with the files of each commit), the shallow file's path, diff-tree and
patch-id (patch ids of the recent commits), with git older than 2.35 the stash
list, and the opt-in fetch; plus ``git --version`` once per run.

Untracked and deployed file names that look like tokens leave the host as a
marker with a keyed fingerprint (mask_secret_name).

``git fetch`` runs only when the request says ``fetch: true``: then
``git fetch --quiet --no-write-fetch-head --no-recurse-submodules`` (no
auto-gc) updates the remote-tracking refs before the status, so that ahead
and behind compare with the remote.  That is the one write an audit can make,
and only on the user's request; a failed fetch is noted in the repository's
reason (status stays "ok"; a repository without remotes gets no note), and
everything else is still read from the local refs.

Deployed directories (plain copies of files, as rsync deploys leave them) get
a manifest: relative path, size, mode and a keyed fingerprint of the content,
read in chunks.  Symbolic links are recorded with the fingerprint of their
target, never followed; FIFOs, sockets and devices are counted and never
opened; ``.git`` is always skipped.

Reasons are fixed sentences: no file content, no git output, no URL.
"""

import errno
import fnmatch
import hashlib
import os
import posixpath
import re
import shlex
import shutil
import stat

from ansible_collections.envparity.audit.plugins.module_utils.bounded_run import (
    CollectError,
    CommandTimeout,
    find_executable,
    run_bounded,
    seconds,
)
from ansible_collections.envparity.audit.plugins.module_utils.git_introduces import parse_diffs
from ansible_collections.envparity.audit.plugins.module_utils.redact import (
    fingerprint,
    fingerprint_bytes,
    looks_like_token,
    redact_text,
)

DEFAULTS = {
    "history_limit": 200,
    "file_limit": 200,
    "manifest_limit": 20000,
    "fetch": False,
    "timeout": 20,
}
# Files listed per commit in the history.
COMMIT_FILE_LIMIT = 50
# Paths listed in a deploy dir's "unreadable".
UNREADABLE_LIMIT = 50
READ_CHUNK = 1024 * 1024
# Where git is looked for when PATH (often minimal over SSH) has none.
GIT_FALLBACKS = ("/usr/bin/git", "/usr/local/bin/git", "/opt/homebrew/bin/git")
# git 2.15: --no-optional-locks.  git 2.26: config --show-scope.  git 2.35: "# stash N" in porcelain v2.
MIN_GIT = (2, 15)
SHOW_SCOPE_GIT = (2, 26)
SHOW_STASH_GIT = (2, 35)
# The most recent commits get a patch id (cherry-picks are recent; a diff of old history costs memory).
PATCH_ID_COMMITS = 50
# .git/shallow holds one commit id per line; anything larger is not a shallow file.
SHALLOW_FILE_LIMIT = 1024 * 1024
# A Git LFS pointer is a small text blob naming the real content by sha256 and size.
LFS_POINTER_MAX = 1024
# Committed versions of deployed files, fingerprinted so that the controller can tell a deploy
# from an older commit from an edit made by hand: at most this many blobs per deploy dir, each
# at most VERSION_BLOB_MAX bytes, VERSION_BYTES in all.
VERSION_BLOBS = 200
VERSION_BLOB_MAX = 1024 * 1024
VERSION_BYTES = 8 * 1024 * 1024
_LFS_POINTER = re.compile(
    rb"version https://git-lfs\.github\.com/spec/v1\n(?:.*\n)*?oid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n"
)
SECRET_NAME_MARK = "\u2039secret-looking name %s\u203a"
# Given to every git call: -c beats every configuration file, so no program named by the
# repository's configuration (or the user's, or the system's) runs.  Environment variables
# (_git_env) cover the askpass, the editor and the ssh command, which they override.
_NEUTRAL_CONFIG = (
    "core.fsmonitor=",  # empty is "off" both as a hook path (git < 2.36) and as a boolean
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "core.gitProxy=none",
    "credential.helper=",  # an empty helper resets the list
    "status.submoduleSummary=false",
    "log.showSignature=false",
    "gc.auto=0",
    "maintenance.auto=false",
    # Only the transports git itself implements: no remote helper, no ext:: command.
    "protocol.allow=never",
    "protocol.ext.allow=never",
)
# Diffs made for patch ids: no external diff, no textconv, and options fixed so that a
# configuration (context lines, prefixes, algorithm) cannot change the id.
_PATCH_DIFF_OPTIONS = (
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--no-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--unified=3",
    "--diff-algorithm=myers",
    "--submodule=short",
)
# Configuration keys whose value is a program git runs (names as `git config --list` prints them:
# section and key in lower case).  Aliases and pagers only when they name a command.
_PROGRAM_KEY = re.compile(
    r"""^(?:core\.(?:fsmonitor|hookspath|sshcommand|pager|askpass|editor|gitproxy|alternaterefscommand)
    | filter\..+\.(?:clean|smudge|process)
    | diff\..+\.(?:textconv|command) | diff\.external
    | merge\..+\.driver | (?:diff|merge)tool\..+\.cmd
    | credential\.(?:.+\.)?helper
    | gpg\.(?:.+\.)?program
    | sequence\.editor | interactive\.difffilter
    | remote\..+\.(?:uploadpack|receivepack|vcs)
    | pager\..+ | alias\..+
    )$""",
    re.VERBOSE | re.DOTALL,
)
_FILTER_KEY = re.compile(r"^filter\.(.+)\.(?:clean|smudge|process|required)$", re.DOTALL)
_REMOTE_KEY = re.compile(r"^remote\.(.+)\.url$", re.DOTALL)
_PROTOCOL_KEY = re.compile(r"^protocol\.(.+)\.allow$", re.DOTALL)
# The transports git implements itself; any other (ext::, a remote helper) is refused.
_SAFE_PROTOCOLS = {"file": "user", "git": "always", "ssh": "always", "http": "always", "https": "always"}
_BOOLEAN_FALSE = frozenset({"", "false", "no", "off", "0"})
_BOOLEAN = _BOOLEAN_FALSE | {"true", "yes", "on", "1"}
# Inherited variables kept: how to reach remotes (used by fetch only).
_KEPT_GIT_VARIABLES = frozenset(
    {
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSH_VARIANT",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_EXEC_PATH",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_NOSYSTEM",
    }
)

# Error texts (LC_ALL=C) and what they mean.
_DUBIOUS = ("dubious ownership", "unsafe repository")
_NOT_A_REPO = ("not a git repository",)
_CORRUPT = (
    "bad object",
    "corrupt",
    "loose object",
    "unable to read",
    "invalid object",
    "bad config",
    "bad index",
    "index file",
    "broken",
    "missing blob",
    "missing tree",
    "missing commit",
    "is empty",
    "invalid sha1 pointer",
    "unknown index entry",
    "bad signature",
    "could not read",
    "cannot read",
    "invalid gitfile",
    "packfile",
    "bad tree object",
    "not a valid object name",
)

_BRANCH_AB = re.compile(r"^\+(\d+) -(\d+)$")
_DESCRIBE_LONG = re.compile(r"^(.*)-(\d+)-g([0-9a-f]+)$")
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


class GitError(CollectError):
    """A git call failed; carries the repository status and a reason sentence."""


# ---------------------------------------------------------------- running git


def _true_command():
    return shutil.which("true") or "/bin/true"


def _git_env(repo_path=None):
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_") or key in _KEPT_GIT_VARIABLES}
    env.update(
        {
            "LC_ALL": "C",
            "LANGUAGE": "C",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": _true_command(),
            "SSH_ASKPASS": _true_command(),
            "SSH_ASKPASS_REQUIRE": "never",
            "GCM_INTERACTIVE": "never",
            "GIT_PAGER": "cat",
            "PAGER": "cat",
            "GIT_EDITOR": _true_command(),
        }
    )
    # GIT_SSH_COMMAND beats core.sshCommand (GIT_SSH does not): always set it.
    if "GIT_SSH_COMMAND" not in env:
        env["GIT_SSH_COMMAND"] = shlex.quote(env["GIT_SSH"]) if env.get("GIT_SSH") else "ssh -o BatchMode=yes"
    if repo_path:
        env["GIT_CEILING_DIRECTORIES"] = os.path.dirname(os.path.abspath(repo_path))
    return env


class Git:
    """Runs read-only git commands with one timeout per call."""

    def __init__(self, binary, timeout):
        self.binary = binary
        self.timeout = timeout
        self.calls = 0
        self.version = None
        self.overrides = ()

    def run(self, args, cwd=None, what="reading the repository", stdin=None):
        """Return (returncode, stdout bytes, stderr text); raise GitError on a timeout."""
        self.calls += 1
        argv = [self.binary, "--no-optional-locks", "--no-pager", *self.overrides, *args]
        try:
            return run_bounded(argv, _git_env(cwd), self.timeout, stdin_bytes=stdin, cwd=cwd)
        except CommandTimeout:
            raise GitError(
                "timeout", "git did not answer within %s seconds while %s." % (seconds(self.timeout), what)
            ) from None
        except FileNotFoundError:
            raise GitError("git_missing", "git is not installed on this host (no git executable found).") from None
        except PermissionError:
            raise GitError(
                "git_missing", "The git executable on this host cannot be run (permission denied)."
            ) from None
        except OSError as exc:
            detail = os.strerror(exc.errno) if exc.errno else "operating system error"
            raise GitError("failed", "Starting git failed: %s." % detail) from None

    def check(self, args, cwd, what, ok_codes=(0,), stdin=None):
        """Run and return (returncode, stdout); a failure becomes a GitError with a status."""
        code, out, err = self.run(args, cwd=cwd, what=what, stdin=stdin)
        if code not in ok_codes:
            raise _classify(err, cwd, code, what)
        return code, out


def _classify(stderr, path, code, what):
    """Map git's error text to a status; the reason never quotes git's output."""
    text = stderr.lower()
    if any(marker in text for marker in _DUBIOUS):
        return GitError(
            "dubious_ownership",
            "git refuses to read this repository because it is owned by another user (dubious ownership), "
            "and envparity will not override safe.directory; run the audit as the repository's owner, "
            "or have its owner add the directory to safe.directory.",
        )
    if any(marker in text for marker in _NOT_A_REPO):
        dot_git = os.path.join(path, ".git") if path else None
        if dot_git and os.path.isdir(dot_git) and not os.access(dot_git, os.R_OK | os.X_OK):
            return GitError("failed", "Permission denied when reading the repository's .git directory.")
        if dot_git and os.path.lexists(dot_git):
            return GitError(
                "corrupt",
                "The directory has a .git, but git cannot read it as a repository (a damaged HEAD, "
                "or a .git file that points nowhere).",
            )
        return GitError(
            "not_a_repository",
            "The directory is not a git repository (it has no .git; envparity does not look in parent directories).",
        )
    if "must be run in a work tree" in text:
        return GitError("failed", "The path is a bare repository (no working tree); envparity audits checkouts.")
    if any(marker in text for marker in _CORRUPT):
        return GitError(
            "corrupt", "git reports the repository as damaged (missing or corrupt objects) while %s." % what
        )
    return GitError("failed", "git exited with status %d while %s." % (code, what))


def _parse_version(text):
    match = _VERSION.search(text)
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def _prepare_git(timeout):
    """A Git runner with its version known, or raise GitError for every repository."""
    binary = find_executable("git", GIT_FALLBACKS)
    if binary is None:
        raise GitError("git_missing", "git is not installed on this host (no git executable found).")
    git = Git(binary, timeout)
    code, out, _ = git.run(["--version"], what="asking for git's version")
    version = _parse_version(out.decode("ascii", "replace")) if code == 0 else None
    if version is None:
        raise GitError(
            "failed",
            "git on this host does not work or is too old (git --no-optional-locks --version failed); "
            "envparity needs git %d.%d or later." % MIN_GIT,
        )
    if version[:2] < MIN_GIT:
        raise GitError(
            "failed", "git %s is too old: envparity needs git %d.%d or later." % (".".join(map(str, version)), *MIN_GIT)
        )
    git.version = version
    return git


# ---------------------------------------------------------------- paths


def _resolve(path, project_dir):
    """Absolute path; relative paths are taken from project_dir, "~" expanded.

    Normalised unless it has a ".." part: "current/../shared" must follow a
    symlink like the application does.
    """
    path = os.path.expanduser(path or "")
    if not os.path.isabs(path) and project_dir:
        path = os.path.join(os.path.expanduser(project_dir), path)
    if not os.path.isabs(path):
        path = os.path.join(os.getcwd(), path)
    if ".." not in path.split(os.sep):
        path = os.path.normpath(path)
    return path


def _text(data):
    return data.decode("utf-8", "backslashreplace")


# ---------------------------------------------------------------- repositories


def _empty_repo(path, status="ok", reason=None):
    return {
        "path": path,
        "status": status,
        "reason": reason,
        "head": None,
        "branch": None,
        "detached": False,
        "tag": None,
        "describe": None,
        "upstream": None,
        "ahead": None,
        "behind": None,
        "staged": _capped([], 0),
        "modified": _capped([], 0),
        "untracked": _capped([], 0),
        "stash_count": 0,
        "last_commit": None,
        "remotes": {},
        "submodules": {},
        "history": [],
        "history_truncated": False,
        "shallow": [],
        "declared_programs": [],
    }


def _capped(files, limit):
    return {"files": files[:limit], "count": len(files), "truncated": len(files) > limit}


def parse_status(data):
    """Parse `git status --porcelain=v2 -b -z --show-stash --untracked-files=all`.

    Returns a dict: head, branch, detached, upstream, ahead, behind,
    stash_count (None when git printed no stash line), staged, modified,
    untracked (lists of {"path", "status"}).  Unmerged paths are listed as
    modified with status "U".
    """
    result = {
        "head": None,
        "branch": None,
        "detached": False,
        "upstream": None,
        "ahead": None,
        "behind": None,
        "stash_count": None,
        "staged": [],
        "modified": [],
        "untracked": [],
    }
    records = data.split(b"\0")
    index = 0
    while index < len(records):
        record = records[index]
        index += 1
        if not record:
            continue
        kind = record[:2]
        if kind == b"# ":
            _parse_header(_text(record[2:]), result)
        elif kind == b"1 ":
            fields = record.split(b" ", 8)
            _add_change(result, fields[1], _text(fields[8]))
        elif kind == b"2 ":
            fields = record.split(b" ", 9)
            _add_change(result, fields[1], _text(fields[9]))
            index += 1  # the original path follows in its own record
        elif kind == b"u ":
            fields = record.split(b" ", 10)
            result["modified"].append({"path": _text(fields[10]), "status": "U"})
        elif kind == b"? ":
            result["untracked"].append({"path": _text(record[2:]), "status": "?"})
    return result


def _parse_header(line, result):
    name, _, value = line.partition(" ")
    if name == "branch.oid":
        result["head"] = None if value == "(initial)" else value
    elif name == "branch.head":
        if value == "(detached)":
            result["detached"] = True
        else:
            result["branch"] = value
    elif name == "branch.upstream":
        result["upstream"] = value
    elif name == "branch.ab":
        match = _BRANCH_AB.match(value)
        if match:
            result["ahead"], result["behind"] = int(match.group(1)), int(match.group(2))
    elif name == "stash" and value.isdigit():
        result["stash_count"] = int(value)


def _add_change(result, xy, path):
    staged, worktree = chr(xy[0]), chr(xy[1])
    if staged != ".":
        result["staged"].append({"path": path, "status": staged})
    if worktree != ".":
        result["modified"].append({"path": path, "status": worktree})


def parse_history(data, limit):
    """Parse `git log -z --name-only --format=%x00%H%x00%P%x00%cI%x00%s`.

    Each commit starts with an empty record (a path is never empty), then
    sha, parents, date and subject; its files follow, the first one after a
    newline.  Returns (commits, truncated).
    """
    records = data.split(b"\0")
    commits = []
    index = 0
    count = len(records)
    while index < count:
        if records[index]:
            index += 1  # not at a commit start: cannot happen with git's output
            continue
        if index + 4 >= count:
            break
        sha, parents, date, subject = (_text(part) for part in records[index + 1 : index + 5])
        index += 5
        files = []
        first = True
        while index < count and records[index]:
            path = records[index]
            if first and path.startswith(b"\n"):
                path = path[1:]
            first = False
            if path:
                files.append(_text(path))
            index += 1
        commits.append(
            {
                "sha": sha,
                "parents": parents.split(),
                "subject": redact_text(subject),
                "date": date,
                "files": files[:COMMIT_FILE_LIMIT],
                "files_truncated": len(files) > COMMIT_FILE_LIMIT,
            }
        )
    return commits[:limit], len(commits) > limit


def parse_describe(text):
    """(tag, describe) from `git describe --tags --always --long` output."""
    text = text.strip()
    if not text:
        return None, None
    match = _DESCRIBE_LONG.match(text)
    if not match:
        return None, text  # no tag: --always gave an abbreviated commit id
    tag, distance = match.group(1), int(match.group(2))
    return tag, tag if distance == 0 else text


def parse_config_list(data, scoped):
    """[(scope, key, value)] from `git config --list -z` (scope None unless `scoped`: --show-scope).

    A record is "[scope NUL]key NEWLINE value"; a key written without "=" has no newline and the
    value None.  Keys are as git prints them: section and name in lower case.
    """
    records = data.split(b"\0")
    entries = []
    index = 0
    while index < len(records):
        scope = None
        if scoped:
            scope = _text(records[index])
            index += 1
            if index >= len(records):
                break
        record = records[index]
        index += 1
        if not record:
            continue
        key, newline, value = _text(record).partition("\n")
        entries.append((scope, key, value if newline else None))
    return entries


def _names_program(key, value):
    """True when a configuration entry names a program git would run."""
    if not _PROGRAM_KEY.match(key):
        return False
    text = (value or "").strip()
    if key.startswith("alias."):
        return text.startswith("!")
    if key.startswith("pager."):
        return text.lower() not in _BOOLEAN
    if key == "core.fsmonitor":
        return value is None or text.lower() not in _BOOLEAN_FALSE
    return bool(text)


def declared_programs(entries):
    """Sorted names (never values) of the configuration keys that name a program.

    Names are shown as they are unless they look like a token (a driver or remote named with one).
    """
    return sorted({redact_text(key) for _, key, value in entries if _names_program(key, value)})


def repository_entries(entries):
    """The entries of the repository's own configuration (and the files it includes)."""
    return [entry for entry in entries if entry[0] in ("local", "worktree")]


def neutral_overrides(entries):
    """The "-c" arguments that keep every configured program from running.

    Beyond _NEUTRAL_CONFIG: each filter driver declared anywhere gets empty clean, smudge and
    process commands and is not required (so content is compared as it is on disk); each
    remote's upload-pack is git's own; only git's own transports are allowed (no ext::, no
    remote helper), whatever protocol.<name>.allow the configuration sets.  A driver or remote name
    with "=" cannot be given to -c: the repository is then not read.
    """
    filters = set()
    remotes = set()
    protocols = set()
    for _, key, _ in entries:
        for pattern, names in ((_FILTER_KEY, filters), (_REMOTE_KEY, remotes), (_PROTOCOL_KEY, protocols)):
            match = pattern.match(key)
            if match:
                names.add(match.group(1))
    if any("=" in name for name in filters | remotes | protocols):
        raise GitError(
            "failed",
            "The repository's configuration names a filter driver or a remote with '=' in its name, "
            "which cannot be neutralised on git's command line; it was not read.",
        )
    settings = list(_NEUTRAL_CONFIG)
    # A protocol.<name>.allow of the configuration beats protocol.allow: each one is set again.
    settings += ["protocol.%s.allow=%s" % item for item in sorted(_SAFE_PROTOCOLS.items())]
    settings += ["protocol.%s.allow=never" % name for name in sorted(protocols - set(_SAFE_PROTOCOLS))]
    for name in sorted(filters):
        settings += ["filter.%s.%s=" % (name, part) for part in ("clean", "smudge", "process")]
        settings.append("filter.%s.required=false" % name)
    for name in sorted(remotes):
        settings.append("remote.%s.uploadpack=git-upload-pack" % name)
    return tuple(arg for setting in settings for arg in ("-c", setting))


def parse_remotes(entries):
    """{name: redacted url} from the remote.<name>.url entries of the configuration."""
    remotes = {}
    for _, key, value in entries:
        match = _REMOTE_KEY.match(key)
        if match and value is not None:
            # The first url of a remote is the one fetch uses.
            remotes.setdefault(match.group(1), redact_text(value))
    return remotes


def parse_index(data):
    """[{tag, mode, sha, stage, path (bytes)}] from `git ls-files --stage -v -z`.

    The tag is git's: "H" cached, "S" skip-worktree, lower case when marked assume-unchanged.
    """
    entries = []
    for record in data.split(b"\0"):
        meta, tab, path = record.partition(b"\t")
        parts = meta.split(b" ")
        if not tab or len(parts) != 4:
            continue
        tag, mode, sha, stage = (_text(part) for part in parts)
        entries.append({"tag": tag, "mode": mode, "sha": sha, "stage": stage, "path": path})
    return entries


def parse_submodules(index):
    """{path: recorded commit} from the gitlinks (mode 160000) of the index entries."""
    found = {}
    for entry in index:
        if entry["mode"] != "160000":
            continue
        name = _text(entry["path"])
        if entry["stage"] == "0" or name not in found:
            found[name] = entry["sha"]
    return found


def parse_check_attr(data):
    """{path (bytes): value} from `git check-attr -z` output (path NUL attribute NUL value NUL)."""
    records = data.split(b"\0")
    return {records[i]: _text(records[i + 2]) for i in range(0, len(records) - 2, 3)}


def _file_digest(path, algorithm, as_blob):
    """The hex digest of a regular file's bytes as they are (no filter, no conversion), or None.

    as_blob: git's object id of those bytes ("blob <size>" NUL, then the bytes).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        digest = hashlib.new(algorithm)
        if as_blob:
            digest.update(b"blob %d\0" % st.st_size)
        for chunk in _read_chunks(fd):
            digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def disk_mismatches(repo_path, index, filtered, algorithm):
    """Index entries whose bytes on disk differ from their blob although git's status may not say so.

    Checked: files with a filter attribute (a clean filter can print the committed blob), and
    files marked assume-unchanged or skip-worktree (status trusts the mark).  A file that is
    gone counts only when marked assume-unchanged (skip-worktree files of a sparse checkout
    are absent by design).  Returns [(entry, "M" or "D")].
    """
    found = []
    for entry in index:
        hidden = entry["tag"].islower() or entry["tag"] == "S"
        if entry["stage"] != "0" or entry["mode"] not in ("100644", "100755"):
            continue
        if not (hidden or entry["path"] in filtered):
            continue
        full = os.path.join(os.fsencode(repo_path), entry["path"])
        if not os.path.lexists(full):
            if entry["tag"].islower():
                found.append((entry, "D"))
            continue
        blob = _file_digest(full, algorithm, as_blob=True)
        if blob is not None and blob != entry["sha"]:
            found.append((entry, "M"))
    return found


def parse_cat_file_batch(data):
    """{object id: content} from `git cat-file --batch` output; missing objects are left out."""
    found = {}
    position = 0
    while position < len(data):
        end = data.find(b"\n", position)
        if end == -1:
            break
        header = data[position:end].split()
        position = end + 1
        if len(header) != 3 or not header[2].isdigit():
            continue  # "<id> missing"
        size = int(header[2])
        found[_text(header[0])] = data[position : position + size]
        position += size + 1
    return found


def parse_lfs_pointer(content):
    """(sha256, size) of a Git LFS pointer blob, else None."""
    match = _LFS_POINTER.match(content or b"")
    return (_text(match.group(1)), int(match.group(2))) if match else None


def _lfs_verified(git, path, entries):
    """Paths of the entries whose blob is a Git LFS pointer to exactly the bytes on disk.

    Verified by hashing the file (sha256, as LFS does), never by running git-lfs: an LFS file
    is modified only when its bytes differ from the object its pointer names.
    """
    shas = sorted({entry["sha"] for entry in entries})
    if not shas:
        return set()
    ids = ("\n".join(shas) + "\n").encode("ascii")
    _, out = git.check(["cat-file", "--batch-check"], path, "reading blob sizes", stdin=ids)
    small = [
        parts[0]
        for parts in (line.split() for line in _text(out).splitlines())
        if len(parts) == 3 and parts[1] == "blob" and parts[2].isdigit() and int(parts[2]) <= LFS_POINTER_MAX
    ]
    if not small:
        return set()
    _, out = git.check(["cat-file", "--batch"], path, "reading blobs", stdin=("\n".join(small) + "\n").encode("ascii"))
    blobs = parse_cat_file_batch(out)
    verified = set()
    for entry in entries:
        pointer = parse_lfs_pointer(blobs.get(entry["sha"]))
        full = os.path.join(os.fsencode(path), entry["path"])
        if pointer and os.path.getsize(full) == pointer[1] and _file_digest(full, "sha256", False) == pointer[0]:
            verified.add(entry["path"])
    return verified


def parse_patch_ids(data):
    """{commit: patch id} from `git patch-id --stable` output ("patch-id commit" lines)."""
    found = {}
    for line in _text(data).splitlines():
        parts = line.split()
        if len(parts) == 2:
            found[parts[1]] = parts[0]
    return found


def parse_shallow(data):
    """The commit ids of a shallow file (one per line); anything else is ignored."""
    return sorted({line for line in _text(data).split() if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", line)})


def mask_secret_name(path, hmac_key):
    """The path with each token-looking component shown as a keyed-fingerprint marker.

    A path that looks like a token only as a whole (base64 with "/") is masked whole.  Equal
    names give equal markers within a run, so they still align across hosts.
    """

    def marker(text):
        return SECRET_NAME_MARK % fingerprint(hmac_key, text).split(":", 1)[1][:8]

    parts = path.split("/")
    masked = [marker(part) if looks_like_token(part) else part for part in parts]
    if masked != parts:
        return "/".join(masked)
    return marker(path) if looks_like_token(path) else path


def _collect_repo(git, path, request, hmac_key):
    if not os.path.lexists(path):
        return _empty_repo(path, "missing", "The path does not exist.")
    if not os.path.isdir(path):
        return _empty_repo(path, "not_a_repository", "The path is not a directory.")
    if isinstance(git, GitError):  # git itself is missing or unusable on this host
        return _empty_repo(path, git.status, git.reason)
    result = _empty_repo(path)
    git.overrides = neutral_overrides(())
    entries, own = _read_config(git, path)
    git.overrides = neutral_overrides(entries)
    result["declared_programs"] = declared_programs(own)
    fetch_note = None
    if request["fetch"]:
        fetch_note = _fetch(git, path)

    state, index = _read_worktree(git, path, entries, hmac_key)
    show_stash = git.version >= SHOW_STASH_GIT
    limit = request["file_limit"]
    for name in ("head", "branch", "detached", "upstream", "ahead", "behind"):
        result[name] = state[name]
    for name in ("staged", "modified", "untracked"):
        result[name] = _capped(state[name], limit)
    if state["stash_count"] is not None:
        result["stash_count"] = state["stash_count"]
    elif not show_stash:
        _, out = git.check(["stash", "list", "--format=%H"], path, "listing the stash")
        result["stash_count"] = len(out.split())

    if result["head"] is not None:
        _, out = git.check(["describe", "--tags", "--always", "--long"], path, "describing HEAD")
        result["tag"], result["describe"] = parse_describe(_text(out))
        history_limit = request["history_limit"]
        _, out = git.check(
            [
                "log",
                "--topo-order",
                "--no-color",
                "--no-show-signature",
                "--no-renames",
                "--no-abbrev",
                "-z",
                "--name-only",
                "--format=%x00%H%x00%P%x00%cI%x00%s",
                "-n",
                str(max(history_limit, 1) + 1),
                "HEAD",
                "--",
            ],
            path,
            "reading the history",
        )
        commits, _ = parse_history(out, max(history_limit, 1) + 1)
        result["history"] = commits[:history_limit]
        result["history_truncated"] = len(commits) > history_limit
        if commits:
            first = commits[0]
            result["last_commit"] = {"sha": first["sha"], "date": first["date"], "subject": first["subject"]}
        result["shallow"] = _shallow(git, path)
        _add_patch_ids(git, path, result["history"], set(result["shallow"]), hmac_key)

    result["remotes"] = parse_remotes(entries)
    if not result["remotes"]:
        fetch_note = None  # nothing to fetch from: not worth a note
    result["submodules"] = parse_submodules(index)
    result["reason"] = fetch_note
    return result


def _read_worktree(git, path, entries, hmac_key):
    """(status as parse_status gives it, index entries); modified files include those whose
    change git's status could miss, and untracked names that look like tokens are masked."""
    # --ignore-submodules=dirty: a submodule's own status would run under its own configuration.
    status_args = ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--ignore-submodules=dirty"]
    show_stash = git.version >= SHOW_STASH_GIT
    if show_stash:
        status_args.append("--show-stash")
    _, out = git.check(status_args, path, "reading the status")
    state = parse_status(out)
    _, out = git.check(["ls-files", "--stage", "-v", "-z"], path, "reading the index")
    index = parse_index(out)
    filtered = _filtered_paths(git, path, entries, index)
    mismatches = disk_mismatches(path, index, filtered, _object_format(entries))
    # An LFS file differs from its pointer blob by design: unchanged when its bytes are the pointer's.
    lfs = {_text(name) for name in _lfs_verified(git, path, [e for e, _ in mismatches if e["path"] in filtered])}
    state["modified"] = [item for item in state["modified"] if not (item["path"] in lfs and item["status"] == "M")]
    known = {item["path"] for item in state["modified"]}
    state["modified"] += [
        {"path": _text(entry["path"]), "status": status}
        for entry, status in mismatches
        if _text(entry["path"]) not in lfs | known
    ]
    state["untracked"] = [dict(item, path=mask_secret_name(item["path"], hmac_key)) for item in state["untracked"]]
    return state, index


def _read_config(git, path):
    """(every configuration entry, the repository's own entries), includes followed.

    Only reads files: `git config --list` runs no program.  Before git 2.26 (no --show-scope)
    a second call reads the repository's own file.
    """
    if git.version >= SHOW_SCOPE_GIT:
        _, out = git.check(["config", "--list", "--includes", "--show-scope", "-z"], path, "reading the configuration")
        entries = parse_config_list(out, scoped=True)
        return entries, repository_entries(entries)
    _, out = git.check(["config", "--list", "--includes", "-z"], path, "reading the configuration")
    entries = parse_config_list(out, scoped=False)
    # Outside a repository --local fails: the status call then says why.
    code, out, _ = git.run(
        ["config", "--local", "--list", "--includes", "-z"], cwd=path, what="reading the configuration"
    )
    return entries, parse_config_list(out, scoped=False) if code == 0 else []


def _object_format(entries):
    formats = [value for _, key, value in entries if key == "extensions.objectformat" and value]
    return formats[-1].lower() if formats else "sha1"


def _filtered_paths(git, path, entries, index):
    """Tracked paths with a filter attribute, asked only when some filter driver is configured."""
    if not any(_FILTER_KEY.match(key) for _, key, _ in entries):
        return set()
    files = [entry["path"] for entry in index if entry["stage"] == "0"]
    if not files:
        return set()
    _, out = git.check(
        ["check-attr", "-z", "--stdin", "filter"], path, "reading the attributes", stdin=b"\0".join(files) + b"\0"
    )
    return {name for name, value in parse_check_attr(out).items() if value not in ("unspecified", "unset", "set")}


def _shallow(git, path):
    """The shallow boundary of the repository (.git/shallow), [] for a full clone."""
    _, out = git.check(["rev-parse", "--git-path", "shallow"], path, "reading the shallow boundary")
    name = os.path.join(path, _text(out).strip("\n"))
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except OSError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        return parse_shallow(os.read(fd, SHALLOW_FILE_LIMIT))
    finally:
        os.close(fd)


def _add_patch_ids(git, path, history, shallow, hmac_key):
    """Give the recent commits a keyed patch id ("patch_id"; None for merges and shallow ends).

    diff-tree with fixed options (no external diff, no textconv), fed to `git patch-id
    --stable`: no configured program runs.  Keyed, because a patch id is an unkeyed hash of
    the change's content.
    """
    wanted = [c["sha"] for c in history[:PATCH_ID_COMMITS] if len(c["parents"]) == 1 and c["sha"] not in shallow]
    for commit in history:
        commit["patch_id"] = None
        commit["introduces"] = None
    if not wanted:
        return
    _, diffs = git.check(
        ["diff-tree", "--stdin", "-p", *_PATCH_DIFF_OPTIONS],
        path,
        "reading recent changes",
        stdin="\n".join(wanted).encode("ascii") + b"\n",
    )
    _, out = git.check(["patch-id", "--stable"], path, "computing patch ids", stdin=diffs)
    ids = parse_patch_ids(out)
    introduced = parse_diffs(diffs, wanted)
    for commit in history:
        if commit["sha"] in ids:
            commit["patch_id"] = fingerprint(hmac_key, ids[commit["sha"]])
        commit["introduces"] = introduced.get(commit["sha"])


def _fetch(git, path):
    """Opt-in fetch; returns a note for the reason when it failed, else None."""
    args = ["fetch", "--quiet", "--no-recurse-submodules"]
    if git.version >= (2, 23):
        args.append("--no-auto-gc")
    if git.version >= (2, 29):
        args.append("--no-write-fetch-head")
    try:
        code, _, _ = git.run(args, cwd=path, what="fetching")
    except GitError as problem:
        if problem.status == "git_missing":
            raise
        return "git fetch did not finish; upstream, ahead and behind come from the local refs."
    if code != 0:
        return "git fetch failed; upstream, ahead and behind come from the local refs."
    return None


# ---------------------------------------------------------------- deploy dirs


def _matches(patterns, rel, name, is_dir):
    for raw in patterns:
        pattern = raw.rstrip("/")
        if not pattern or (raw.endswith("/") and not is_dir):
            continue
        if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _ignored(patterns, rel, is_dir):
    """fnmatch on the relative path and on each of its components."""
    parts = rel.split("/")
    if _matches(patterns, rel, parts[-1], is_dir):
        return True
    # A parent component matching (e.g. "node_modules") ignores everything below it.
    return any(_matches(patterns, "/".join(parts[: i + 1]), parts[i], True) for i in range(len(parts) - 1))


def _mode(st):
    return format(stat.S_IMODE(st.st_mode), "04o")


def _read_chunks(fd):
    while True:
        chunk = os.read(fd, READ_CHUNK)
        if not chunk:
            return
        yield chunk


def _file_entry(path, st, hmac_key):
    """{size, mode, fp} of a regular file, hashed as a stream; fp None when unreadable."""
    entry = {"size": st.st_size, "mode": _mode(st), "fp": None}
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        entry["unreadable"] = True
        return entry
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode):  # swapped after the lstat
            entry["unreadable"] = True
            return entry
        entry["size"], entry["mode"] = now.st_size, _mode(now)
        entry["fp"] = fingerprint_bytes(hmac_key, _read_chunks(fd))
    except OSError:
        entry["fp"] = None
        entry["unreadable"] = True
    finally:
        os.close(fd)
    return entry


def _link_entry(path, st, hmac_key):
    entry = {"size": st.st_size, "mode": _mode(st), "fp": None, "link": True}
    try:
        entry["fp"] = fingerprint_bytes(hmac_key, os.readlink(os.fsencode(path)))
    except OSError:
        entry["unreadable"] = True
    return entry


def _collect_deploy_dir(path, ignore, hmac_key, limit):
    result = {
        "path": path,
        "status": "ok",
        "reason": None,
        "files": {},
        "count": 0,
        "truncated": False,
        "skipped": 0,
        "unreadable": [],
    }
    top = _open_top(path, result)
    if top is None:
        return result
    # Depth first, in sorted order, so that a truncated manifest is the same on every host.
    stack = [("", top)]
    while stack:
        prefix, entries = stack.pop()
        subdirs = []
        for entry in entries:
            rel = prefix + entry.name
            if entry.name == ".git":
                continue
            try:
                est = entry.stat(follow_symlinks=False)
            except OSError:
                _note_unreadable(result, mask_secret_name(rel, hmac_key))
                continue
            is_dir = stat.S_ISDIR(est.st_mode)
            if _ignored(ignore, rel, is_dir):
                continue
            if is_dir:
                subdirs.append((rel, entry.path))
                continue
            if not (stat.S_ISREG(est.st_mode) or stat.S_ISLNK(est.st_mode)):
                result["skipped"] += 1  # FIFO, socket, device: never opened
                continue
            result["count"] += 1
            if result["count"] > limit:
                result["truncated"] = True
                continue
            make = _link_entry if stat.S_ISLNK(est.st_mode) else _file_entry
            shown = mask_secret_name(rel, hmac_key)
            result["files"][shown] = make(entry.path, est, hmac_key)
            if result["files"][shown].get("unreadable"):
                _note_unreadable(result, shown)
        for rel, full in reversed(subdirs):
            try:
                stack.append((rel + "/", _list_dir(full)))
            except OSError:
                _note_unreadable(result, mask_secret_name(rel, hmac_key) + "/")
    return result


def _open_top(path, result):
    """The sorted entries of the top directory, or None with status and reason set in result."""
    try:
        st = os.stat(path)  # the top may be a symlink (releases/current): followed
        if not stat.S_ISDIR(st.st_mode):
            result.update(status="not_a_directory", reason="The path is not a directory.")
            return None
        return _list_dir(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            result.update(status="missing", reason="The directory does not exist.")
        elif exc.errno in (errno.EACCES, errno.EPERM):
            result.update(status="unreadable", reason="Permission denied when reading the directory.")
        else:
            result.update(status="failed", reason="Reading the directory failed: %s." % _strerror(exc))
        return None


def _list_dir(path):
    with os.scandir(path) as it:
        return sorted(it, key=lambda entry: entry.name)


def _note_unreadable(result, rel):
    if len(result["unreadable"]) < UNREADABLE_LIMIT:
        result["unreadable"].append(rel)


def _strerror(exc):
    return os.strerror(exc.errno) if exc.errno else "unknown error"


# ---------------------------------------------------------------- entry point


def _settings(request):
    settings = dict(DEFAULTS)
    for name in DEFAULTS:
        if request.get(name) is not None:
            settings[name] = request[name]
    return settings


def collect_git(request, hmac_key):
    """Collect the repositories and deploy dirs of a request; see the module docstring.

    request: project_dir (base of relative paths, "~" expanded), repos
    [{name, path}], deploy_dirs [{name, path, ignore: [globs]}], and the
    settings history_limit, file_limit, manifest_limit, fetch, timeout
    (seconds per git call); missing settings take DEFAULTS.

    Returns {"repos": {name: repo}, "deploy_dirs": {name: dir}}.  A repo has
    path, status (ok, missing, not_a_repository, dubious_ownership, corrupt,
    git_missing, timeout, failed), reason, head, branch, detached, tag,
    describe, upstream, ahead, behind, staged/modified/untracked ({files:
    [{path, status}], count, truncated}; unmerged paths are "modified" with
    status "U"), stash_count, last_commit {sha, date, subject}, remotes {name:
    url without credentials}, submodules {path: commit recorded in the index},
    history [{sha, parents, subject, date, files, files_truncated, patch_id
    (keyed; None for merges, shallow ends and older commits), introduces
    ({tables, columns, indexes, keys}: names the commit's added lines create or
    read, see git_introduces; None where patch_id is)}] (most recent
    first, --topo-order), history_truncated, shallow (the boundary commits of
    a shallow clone) and declared_programs (names of the repository's own
    settings that name a program; never their values).  Subjects and URLs are
    redacted.  A dir has path, status (ok, missing, unreadable,
    not_a_directory, failed), reason, files {relative path: {size, mode, fp}
    (+ "link": true for a symlink, fp of its target; + "unreadable": true and
    fp None for a file that could not be read)}, count (files seen), truncated
    (count > manifest_limit), skipped (FIFOs, sockets, devices) and unreadable
    (relative paths that could not be read, at most 50; directories end in
    "/") and, when the dir lies inside one of the repositories, versions
    ({repo, prefix (the dir's path inside it), complete, files {relative
    path: [{commit, fp}]}, + reason when
    they could not be read}: the fingerprints of each file's committed
    versions in the collected history, newest first; complete is false when
    the history, a commit's file list or the blob budget was cut).  Each
    repository and directory is collected on its own: one that fails never
    hides the others.
    """
    settings = _settings(request)
    project_dir = request.get("project_dir")
    repos = {}
    git = None
    if request.get("repos"):
        try:
            git = _prepare_git(settings["timeout"])
        except GitError as problem:
            git = problem
    for item in request.get("repos") or []:
        path = _resolve(item["path"], project_dir)
        try:
            repos[item["name"]] = _collect_repo(git, path, settings, hmac_key)
        except GitError as problem:
            repos[item["name"]] = _empty_repo(path, problem.status, problem.reason)
        except OSError as exc:
            repos[item["name"]] = _empty_repo(path, "failed", "Reading the repository failed: %s." % _strerror(exc))
    deploy_dirs = {}
    for item in request.get("deploy_dirs") or []:
        path = _resolve(item["path"], project_dir)
        deploy_dirs[item["name"]] = _collect_deploy_dir(
            path, list(item.get("ignore") or []), hmac_key, settings["manifest_limit"]
        )
    add_deploy_versions(git, repos, deploy_dirs, hmac_key)
    return {"repos": repos, "deploy_dirs": deploy_dirs}


def relative_inside(path, root):
    """path relative to root ("" for root itself), or None when path is not inside root."""
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    if path == root:
        return ""
    base = root.rstrip("/") + "/"
    return path[len(base) :] if path.startswith(base) else None


def version_objects(history, prefix, names, limit):
    """[(object name, file)]: the blob of each file of `names` (paths relative to a deploy dir
    that is `prefix` inside the repository) at each commit of `history` (most recent first) that
    touched it, then at the parent of the oldest such commit; at most `limit`, newest first."""
    found = []
    oldest = {}
    for commit in history:
        for path in commit.get("files") or []:
            name = relative_inside(path, prefix) if prefix else path
            if name and name in names and "\n" not in path:
                found.append((commit["sha"], path, name))
                oldest[name] = (commit, path)
    for name, (commit, path) in sorted(oldest.items()):
        if commit.get("parents"):
            found.append((commit["parents"][0], path, name))
    return [("%s:%s" % (sha, path), sha, name) for sha, path, name in found[:limit]]


def parse_batch_check(data, count):
    """[(object id, size) or None] per requested object, in order, from `cat-file --batch-check`."""
    found = []
    for line in _text(data).splitlines()[:count]:
        parts = line.split()
        ok = len(parts) == 3 and parts[1] == "blob" and parts[2].isdigit()
        found.append((parts[0], int(parts[2])) if ok else None)
    return found


def _deploy_versions(git, repo, prefix, deploy, hmac_key):
    """{complete, files {relative path: [{commit, fp}]}}: the fingerprints of the committed
    versions of a deploy dir's files (git cat-file only: no filter, no textconv runs)."""
    wanted = version_objects(repo["history"], prefix, set(deploy["files"]), VERSION_BLOBS)
    complete = not (repo["history_truncated"] or repo["shallow"]) and len(wanted) < VERSION_BLOBS
    complete = complete and not any(commit.get("files_truncated") for commit in repo["history"])
    files = {}
    if wanted:
        names = ("\n".join(name for name, _, _ in wanted) + "\n").encode("utf-8", "surrogateescape")
        _, out = git.check(["cat-file", "--batch-check"], repo["path"], "listing file versions", stdin=names)
        sizes = parse_batch_check(out, len(wanted))
        budget = VERSION_BYTES
        chosen = []
        for (_, sha, name), found in zip(wanted, sizes):
            if found is None:
                continue  # the file did not exist in that commit
            if found[1] > VERSION_BLOB_MAX or found[1] > budget:
                complete = False
                continue
            budget -= found[1]
            chosen.append((found[0], sha, name))
        blobs = {}
        if chosen:
            ids = ("\n".join(sorted({oid for oid, _, _ in chosen})) + "\n").encode("ascii")
            _, out = git.check(["cat-file", "--batch"], repo["path"], "reading file versions", stdin=ids)
            blobs = parse_cat_file_batch(out)
        for oid, sha, name in chosen:
            if oid in blobs:
                files.setdefault(name, []).append({"commit": sha, "fp": fingerprint_bytes(hmac_key, [blobs[oid]])})
    return {"complete": complete, "files": files}


def add_deploy_versions(git, repos, deploy_dirs, hmac_key):
    """Give each deploy dir that lies inside a readable repository the committed versions of its
    files, with the repository's name; a failure is noted, never raised."""
    for deploy in deploy_dirs.values():
        if deploy["status"] != "ok" or isinstance(git, GitError):
            continue
        for name, repo in sorted(repos.items()):
            prefix = relative_inside(deploy["path"], repo["path"]) if repo["status"] == "ok" else None
            if prefix is None or not repo["history"]:
                continue
            try:
                deploy["versions"] = dict(
                    _deploy_versions(git, repo, prefix, deploy, hmac_key), repo=name, prefix=prefix
                )
            except GitError as problem:
                deploy["versions"] = {
                    "repo": name,
                    "prefix": prefix,
                    "complete": False,
                    "files": {},
                    "reason": problem.reason,
                }
            break


def collect_area(request, hmac_key, secrets=None):
    """The registry's entry: the git area needs no secret."""
    return collect_git(request, hmac_key)
