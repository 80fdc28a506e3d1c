"""Shared plumbing of the envparity lab: paths, the two environments, idempotent file writes,
commands, pids and canaries.

Every area module (ssh_area, project_area, env_area, later docker/postgres/git) uses these
helpers so that `labctl up` converges: a file is rewritten only when its bytes differ, and every
change is recorded in the run context so that the summary (and the idempotency test) can tell
"nothing changed" from "something changed". Standard library only: the lab must build on a
fresh Debian machine before anything is pip-installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import string
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# The inventory (inventory/lab/*) hard-codes these paths: keep them in step.
STATE_DIR = Path("/var/lib/envparity-lab")
MANIFEST = STATE_DIR / "manifest.json"
CANARIES = STATE_DIR / "canaries.json"
# Outside the state dir so that `down --purge` can delete the state dir while holding it.
LOCK_FILE = Path("/run/envparity-lab.lock")

MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Env:
    """One environment of the lab, named like its inventory group."""

    name: str
    project_dir: Path
    owner: str  # the account that owns the project dir (and runs git in it)


DEV = Env("dev", STATE_DIR / "dev" / "personal_assistant", "root")
PROD = Env("prod", Path("/home/deploy/ai_assistant"), "deploy")
ENVS = (DEV, PROD)


class LabError(RuntimeError):
    """A step of the lab failed; the message says which and why."""


class Ctx:
    """State of one labctl run: what changed, and the canary secrets in use.

    replant=True makes every canary fresh; otherwise the values recorded in canaries.json are
    reused, so that re-rendering the planted files yields the same bytes (idempotency).
    """

    def __init__(self, replant: bool = False, verbose: bool = False):
        self.replant = replant
        self.verbose = verbose
        self.changes: list[str] = []
        self.flags: set[str] = set()  # cross-step notes, e.g. "sshd_config changed"
        self._old_canaries = {} if replant else _read_json(CANARIES, default={})
        self._previous = _read_json(CANARIES, default={})
        self.canaries: dict[str, str] = {}
        self.areas: list = []  # the area modules of this run (labctl sets it), in build order

    def changed(self, what: str) -> None:
        self.changes.append(what)
        if self.verbose:
            print("  changed: %s" % what)

    def canary(self, name: str, make: Callable[[], str]) -> str:
        """The canary called `name`: the recorded one, or a fresh one (always fresh on replant)."""
        if name not in self.canaries:
            value = self._old_canaries.get(name)
            if not value:
                value = make()
                # A replant must really change every value, or a leak test could pass on stale data.
                while value == self._previous.get(name):
                    value = make()
            self.canaries[name] = value
        return self.canaries[name]

    def save_canaries(self, prefix: str) -> None:
        """Record an area's canaries (names starting with `prefix`, e.g. "env.") before any file
        holding them is written, so the lab never loses track of a value it planted.

        The area's old names are replaced as a whole (a renamed canary does not linger); other
        areas' names are kept.
        """
        merged = {k: v for k, v in self._previous.items() if not k.startswith(prefix)}
        merged.update({k: v for k, v in self.canaries.items() if k.startswith(prefix)})
        self._previous = merged
        write_file(self, CANARIES, json.dumps(merged, indent=2, sort_keys=True) + "\n", mode=0o600)


# ---------------------------------------------------------------- files


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise LabError("cannot read %s: %s" % (path, exc)) from exc


def ids(owner: str) -> tuple[int, int]:
    pw = pwd.getpwnam(owner)
    return pw.pw_uid, pw.pw_gid


def _fix_meta(ctx: Ctx, path: Path, mode: int, owner: str) -> None:
    """Bring mode and ownership in line, recording a change only when one was needed."""
    uid, gid = ids(owner)
    st = path.lstat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
        ctx.changed("owner %s:%s %s" % (owner, grp.getgrgid(gid).gr_name, path))
    if st.st_mode & 0o7777 != mode:
        path.chmod(mode)
        ctx.changed("mode %o %s" % (mode, path))


def ensure_dir(ctx: Ctx, path: Path, mode: int = 0o755, owner: str = "root") -> None:
    if not path.is_dir():
        path.mkdir(parents=True)
        os.chown(path, *ids(owner))
        path.chmod(mode)  # mkdir's mode is filtered by the umask
        ctx.changed("created %s/" % path)
        return
    _fix_meta(ctx, path, mode, owner)


def write_file(ctx: Ctx, path: Path, content: str | bytes, mode: int = 0o644, owner: str = "root") -> bool:
    """Write `content` only if the file's bytes differ (keeps mtimes stable); returns True if written.

    The write goes through a temporary file and a rename, so a reader (an audit running at the same
    time) sees the old or the new file, never half of one.
    """
    data = content.encode() if isinstance(content, str) else content
    try:
        same = path.read_bytes() == data
    except FileNotFoundError:
        same = False
    if same:
        _fix_meta(ctx, path, mode, owner)
        return False
    uid, gid = ids(owner)
    tmp = path.with_name(".%s.labctl-tmp" % path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chown(tmp, uid, gid)
        tmp.chmod(mode)  # os.open's mode is filtered by the umask
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    ctx.changed("wrote %s" % path)
    return True


def remove_tree(path: Path, allowed: tuple[Path, ...]) -> bool:
    """rm -rf, but only for the lab's own directories (a typo must never reach `/`)."""
    if path not in allowed:
        raise LabError("refusing to delete %s: not a lab directory" % path)
    if path.exists():
        shutil.rmtree(path)
        return True
    return False


# ---------------------------------------------------------------- commands


def run(
    cmd: list[str],
    user: str | None = None,
    env: dict | None = None,
    check: bool = True,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run a command (as `user` through runuser when given), capturing its output."""
    if user and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        cmd,
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and proc.returncode != 0:
        raise LabError(
            "%s failed (exit %d): %s"
            % (" ".join(map(str, cmd)), proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:])
        )
    return proc


# Binary the lab needs -> the Debian package that provides it.
REQUIRED_BINARIES = {
    "/usr/sbin/sshd": "openssh-server",
    "/usr/bin/ssh": "openssh-client",
    "/usr/bin/ssh-keygen": "openssh-client",
    "/usr/bin/git": "git",
    "/usr/bin/python3": "python3",  # the prod interpreter named in inventory/lab/hosts.yml
}


def ensure_packages(ctx: Ctx) -> None:
    """The packages of the binaries every area needs (REQUIRED_BINARIES)."""
    install_packages(ctx, {pkg for path, pkg in REQUIRED_BINARIES.items() if not os.access(path, os.X_OK)})


def uninstalled(packages) -> set:
    """The packages dpkg does not list as installed (by package state, not by a file they ship)."""
    query = run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages], check=False)
    installed = {line.split()[0] for line in query.stdout.splitlines() if line.endswith(" installed")}
    return set(packages) - installed


def install_packages(ctx: Ctx, packages) -> None:
    """apt-get install these; `apt-get update` only when the first install fails (a fresh image has
    empty package lists, a provisioned one needs no network round-trip)."""
    missing = sorted(packages)
    if not missing:
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", *missing]
    if run(cmd, env=env, check=False, timeout=900).returncode != 0:
        run(["apt-get", "update"], env=env, timeout=900)
        run(cmd, env=env, timeout=900)
    ctx.changed("apt-get installed %s" % " ".join(missing))


# ---------------------------------------------------------------- processes


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else (status run as non-root)
    # A zombie is not "running": it only waits for its parent to reap it.
    with contextlib.suppress(OSError):
        if Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def cmdline(pid: int) -> str:
    try:
        return Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc, so they can be stopped by pid too)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
    return kids


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: a stopped lab must really be stopped."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_for_banner(host: str, port: int, prefix: bytes, timeout: float = 10.0) -> bool:
    """True once something on host:port greets with `prefix` (e.g. b"SSH-2.0")."""
    deadline = time.monotonic() + timeout
    while True:
        if read_banner(host, port).startswith(prefix):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def read_banner(host: str, port: int, timeout: float = 2.0) -> bytes:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return sock.recv(64)
    except OSError:
        return b""


# ---------------------------------------------------------------- canaries

_ALNUM = string.ascii_letters + string.digits


def random_chars(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def canary_maker(prefix: str = "", length: int = 24, marker: str = "CANARY") -> Callable[[], str]:
    """A factory of canary secrets such as `sk-lab-CANARY<24 random>`: the marker makes a leak
    easy to spot by eye, the random part makes it unique to one plant."""
    return lambda: prefix + marker + random_chars(length)
