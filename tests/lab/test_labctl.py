"""Tests of the lab itself (lab/labctl), run as root against the real lab on this machine.

The module brings the lab up and leaves it as it found it: if the lab was running before, it is
still running after (with fresh canaries: replant is tested); if not, it is stopped again.
The down/up cycle stops sshd for a moment, which would disturb anyone else auditing the lab at
the same time, so it only runs when the lab was not up before, or with ENVPARITY_LAB_DISRUPTIVE=1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from tests.lab.labtest import (  # noqa: E402
    CANARIES,
    MANIFEST,
    STATE,
    labctl,
)

SSH_DIR = STATE / "ssh"
CLIENT_KEY = SSH_DIR / "id_ed25519"
KNOWN_HOSTS = SSH_DIR / "known_hosts"
DEV_DIR = STATE / "dev" / "personal_assistant"
PROD_DIR = Path("/home/deploy/ai_assistant")
DEV_ENV = DEV_DIR / "config" / "development.env"
PROD_ENV = PROD_DIR / "config" / "production.env"
TEMPLATE = PROD_DIR / "docker" / "env.prod.example"
# The system interpreter, isolated (-I) and without site-packages (-S): proves labctl needs
# nothing but the standard library.


# The planted env findings of the lab brief: (key, kind, check, expected).
def ssh(*remote: str, user: str = "deploy", options: tuple[str, ...] = (), known_hosts: Path = KNOWN_HOSTS):
    """ssh to the lab's prod the way the inventory does: lab key only, strict host key checking."""
    cmd = [
        "ssh",
        "-i",
        str(CLIENT_KEY),
        "-o",
        "UserKnownHostsFile=%s" % known_hosts,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        *options,
        "-p",
        "2222",
        "%s@127.0.0.1" % user,
        *remote,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def git(repo: Path, owner: str, *args: str) -> subprocess.CompletedProcess:
    """Read-only git, as the checkout's owner (root must not leave files in deploy's .git)."""
    cmd = ["git", "-C", str(repo), *args]
    if owner != "root":
        cmd = ["runuser", "-u", owner, "--", *cmd]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HOME": str(Path("~" + owner).expanduser())},
    )


def sshd_pid() -> int:
    return int((SSH_DIR / "sshd.pid").read_text().split()[0])


def snapshot() -> dict[str, tuple]:
    """Mode, owner, mtime and content hash of every file and dir the lab manages.

    sshd.log is left out: sshd appends to it on every login, which is not the lab changing; so are
    dockerd's data root, which dockerd rewrites on every health probe, and the PostgreSQL data
    dirs, which the servers write to (checkpoints, hint bits) whenever they like, and Prometheus's
    data dir (its write-ahead log grows with every scrape).
    """
    state = {}
    live = (STATE / "docker", STATE / "pg-dev", STATE / "pg-prod", STATE / "prometheus" / "data")
    for root in (STATE, PROD_DIR, Path("/home/deploy/.ssh")):
        for path in (root, *sorted(root.rglob("*"))):
            if path.name == "sshd.log" or path in live or any(top in path.parents for top in live):
                continue
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            state[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, digest)
    return state


def canaries() -> dict[str, str]:
    return json.loads(CANARIES.read_text())


def env_canaries() -> dict[str, str]:
    # Other areas (postgres, docker…) may record canaries that live elsewhere than the env files.
    return {name: value for name, value in canaries().items() if name.startswith("env.")}


# ---------------------------------------------------------------- prod over ssh


def test_status_exits_zero():
    proc = labctl("status")
    assert proc.returncode == 0, proc.stdout
    assert "lab is up" in proc.stdout


def test_ssh_as_deploy_with_lab_key_and_strict_host_key_checking():
    proc = ssh("/usr/bin/python3", "-c", "'import getpass; print(1, getpass.getuser())'")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "deploy"]


def test_known_hosts_pins_the_lab_host_key():
    host_pub = (SSH_DIR / "ssh_host_ed25519_key.pub").read_text().split()
    assert KNOWN_HOSTS.read_text() == "[127.0.0.1]:2222 %s %s\n" % (host_pub[0], host_pub[1])


def test_unknown_host_key_is_refused(tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    proc = ssh("true", known_hosts=empty)
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr


def test_password_auth_is_refused():
    proc = ssh(
        "true",
        options=("-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no"),
    )
    assert proc.returncode == 255
    assert "Permission denied (publickey)" in proc.stderr  # the server offers nothing else


def test_root_login_is_refused():
    proc = ssh("true", user="root")
    assert proc.returncode == 255
    assert "Permission denied" in proc.stderr


# ---------------------------------------------------------------- idempotency and replant


def test_second_up_changes_nothing():
    before, pid = snapshot(), sshd_pid()
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "labctl up: no changes" in proc.stdout
    assert sshd_pid() == pid  # not restarted
    after = snapshot()
    assert sorted(set(before) ^ set(after)) == []
    assert [path for path in before if before[path] != after[path]] == []


def test_replant_changes_canaries_but_not_the_manifest():
    old_canaries, old_manifest = canaries(), MANIFEST.read_bytes()
    old_files = {path: path.read_bytes() for path in (DEV_ENV, PROD_ENV, TEMPLATE)}
    heads = {
        repo: git(repo, owner, "rev-parse", "HEAD").stdout for repo, owner in ((DEV_DIR, "root"), (PROD_DIR, "deploy"))
    }

    proc = labctl("replant")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    new_canaries = canaries()
    assert set(new_canaries) == set(old_canaries)
    assert [name for name in env_canaries() if new_canaries[name] == old_canaries[name]] == []
    assert DEV_ENV.read_bytes() != old_files[DEV_ENV]
    assert PROD_ENV.read_bytes() != old_files[PROD_ENV]
    assert TEMPLATE.read_bytes() == old_files[TEMPLATE]  # committed, holds no secret
    assert MANIFEST.read_bytes() == old_manifest
    for repo, owner in ((DEV_DIR, "root"), (PROD_DIR, "deploy")):
        assert git(repo, owner, "rev-parse", "HEAD").stdout == heads[repo]  # nothing re-committed
    # A replanted lab is converged: `up` has nothing left to do.
    assert "labctl up: no changes" in labctl("up").stdout


# ---------------------------------------------------------------- manifest and canaries


def test_manifest_is_well_formed():
    manifest = json.loads(MANIFEST.read_text())
    assert set(manifest) == {"version", "planted", "stale_rules"}
    assert manifest["version"] == 1
    assert manifest["stale_rules"] == ["env/app/LEGACY_*"]
    fields = {"area", "subject", "key", "kind", "check", "expected"}
    seen = set()
    for entry in manifest["planted"]:
        # with_areas: the other areas an audit must run for the check to be made
        assert set(entry) - {"with_areas"} == fields, entry
        assert all(isinstance(a, str) and a for a in entry.get("with_areas", ["-"])), entry
        assert entry["kind"] in {"missing", "extra", "changed", "unknown", "policy"}, entry
        assert isinstance(entry["expected"], bool), entry
        assert all(isinstance(entry[f], str) and entry[f] for f in fields - {"expected"}), entry
        assert entry["check"].startswith(entry["area"] + "."), entry
        identity = (entry["area"], entry["subject"], entry["key"], entry["check"])
        assert identity not in seen, "duplicate %s" % (identity,)
        seen.add(identity)


def _env_values(path: Path) -> dict:
    """The env file as python-dotenv (the reference parser) reads it."""
    import dotenv

    return dict(dotenv.dotenv_values(str(path)))


# How each planted env drift shows in the files themselves, read with python-dotenv, not with
# envparity: a planted entry the files do not bear out (or a difference the files show that is
# not planted) is a lab that no longer tests what its manifest says.
ENV_FILE_CHECKS = {
    "env.key_missing": lambda key, dev, prod, raw: key in dev and key not in prod,
    "env.key_extra": lambda key, dev, prod, raw: key in prod and key not in dev,
    "env.value_changed": lambda key, dev, prod, raw: key in dev and key in prod and dev[key] != prod[key],
    "env.secret_changed": lambda key, dev, prod, raw: key in dev and key in prod and dev[key] != prod[key],
    "env.secret_reused": lambda key, dev, prod, raw: bool(dev.get(key)) and dev.get(key) == prod.get(key),
    "env.debug_enabled": lambda key, dev, prod, raw: (prod.get(key) or "").lower() in ("true", "1", "yes", "on"),
    "env.debug_log_level": lambda key, dev, prod, raw: (prod.get(key) or "").lower() in ("debug", "trace"),
    "env.localhost_url": lambda key, dev, prod, raw: (
        "localhost" in (prod.get(key) or "") or "127.0.0.1" in (prod.get(key) or "")
    ),
    "env.insecure_url": lambda key, dev, prod, raw: (prod.get(key) or "").startswith("http://"),
    "env.empty_secret": lambda key, dev, prod, raw: prod.get(key) == "",
    "env.short_secret": lambda key, dev, prod, raw: 0 < len(prod.get(key) or "") < 16,
    "env.template_missing": lambda key, dev, prod, raw: key in _env_values(TEMPLATE) and key not in prod,
    "env.duplicate_key": lambda key, dev, prod, raw: sum(line.startswith(key + "=") for line in raw) > 1,
    "env.unparseable_line": lambda key, dev, prod, raw: any(
        line.strip() and "=" not in line and not line.lstrip().startswith("#") for line in raw
    ),
    "env.file_permissions": lambda key, dev, prod, raw: PROD_ENV.stat().st_mode & 0o077 != 0,
}


def test_the_planted_env_drift_is_in_the_files():
    planted = [e for e in json.loads(MANIFEST.read_text())["planted"] if e["area"] == "env"]
    assert {e["subject"] for e in planted} == {"app"}
    dev, prod = _env_values(DEV_ENV), _env_values(PROD_ENV)
    raw = PROD_ENV.read_text().splitlines()
    for entry in planted:
        assert entry["check"] in ENV_FILE_CHECKS, entry
        assert ENV_FILE_CHECKS[entry["check"]](entry["key"], dev, prod, raw), entry


def test_every_difference_of_the_env_files_is_planted():
    """The other way: each key one file lacks, or whose values differ, is in the manifest."""
    planted = {(e["key"], e["check"]) for e in json.loads(MANIFEST.read_text())["planted"] if e["area"] == "env"}
    dev, prod = _env_values(DEV_ENV), _env_values(PROD_ENV)
    for key in sorted(set(dev) | set(prod)):
        if key.startswith("LEGACY_"):
            continue  # marked expected by a rule that the lab keeps stale on purpose
        if key not in prod:
            assert (key, "env.key_missing") in planted, key
        elif key not in dev:
            assert (key, "env.key_extra") in planted, key
        elif dev[key] != prod[key]:
            assert (key, "env.value_changed") in planted or (key, "env.secret_changed") in planted, key


def test_no_canary_in_the_manifest():
    text = MANIFEST.read_text()
    assert [name for name, value in canaries().items() if value in text] == []


def test_canaries_file_is_private():
    st = CANARIES.stat()
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)


def test_every_canary_is_planted_in_an_env_file():
    planted = env_canaries()
    assert len(planted) >= 9
    text = DEV_ENV.read_text() + PROD_ENV.read_text()
    assert [name for name, value in planted.items() if value not in text] == []
    # Every secret-looking value of both files is a canary (the leak tests look for them).
    assert "CANARY" in DEV_ENV.read_text()
    assert "CANARY" in PROD_ENV.read_text()


# ---------------------------------------------------------------- project dirs


@pytest.mark.parametrize(
    ("path", "owner", "mode"),
    [
        (DEV_ENV, "root", 0o644),
        (PROD_ENV, "deploy", 0o644),  # world-readable: planted (env.file_permissions)
        (TEMPLATE, "deploy", 0o644),
        (PROD_DIR / "docker" / "deploy.sh", "deploy", 0o755),
        (DEV_DIR / "docker" / "deploy.sh", "root", 0o755),
    ],
)
def test_project_files_owner_and_mode(path, owner, mode):
    st = path.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (pwd.getpwnam(owner).pw_uid, mode)


@pytest.mark.parametrize(
    ("repo", "owner", "env_file"),
    [
        (DEV_DIR, "root", "config/development.env"),
        (PROD_DIR, "deploy", "config/production.env"),
    ],
)
def test_checkout_is_a_repo_with_the_initial_commit_and_no_env_file(repo, owner, env_file):
    roots = git(repo, owner, "rev-list", "--max-parents=0", "HEAD").stdout.split()
    assert len(roots) == 1
    assert git(repo, owner, "log", "-1", "--format=%s", roots[0]).stdout.strip() == "Initial commit"
    tracked = set(git(repo, owner, "ls-files").stdout.split())
    assert {
        "README.md",
        ".gitignore",
        "docker/deploy.sh",
        "docker/docker-compose.dev.yml",
        "docker/docker-compose.prod.yml",
        "docker/env.prod.example",
    } <= tracked
    assert env_file not in tracked
    assert git(repo, owner, "check-ignore", "-q", env_file).returncode == 0


def test_dev_and_prod_start_from_the_same_root_commit():
    # The git area plants commits on top (lab/git_area.py); the shared root is what ties them.
    dev_root = git(DEV_DIR, "root", "rev-list", "--max-parents=0", "HEAD").stdout
    assert dev_root == git(PROD_DIR, "deploy", "rev-list", "--max-parents=0", "HEAD").stdout


def test_env_files_parse_as_planted(caplog):
    """The drift in the files is the drift in the manifest, as python-dotenv reads them."""
    dotenv = pytest.importorskip("dotenv")
    with caplog.at_level(logging.WARNING, logger="dotenv.main"):
        dev = dotenv.dotenv_values(DEV_ENV, interpolate=False)
        dev_warnings = len(caplog.records)
        prod = dotenv.dotenv_values(PROD_ENV, interpolate=False)
    prod_warnings = [r.getMessage() for r in caplog.records[dev_warnings:]]
    assert dev_warnings == 0
    assert len(prod_warnings) == 1 and "could not parse statement" in prod_warnings[0]
    template = dotenv.dotenv_values(TEMPLATE, interpolate=False)

    assert set(dev) - set(prod) == {"FEATURE_NEW_UI"}
    assert set(prod) - set(dev) == {"CDN_BASE_URL"}
    assert {k for k in set(dev) & set(prod) if dev[k] != prod[k]} == {
        "LOG_LEVEL",
        "SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "SESSION_SECRET",
        "DATABASE_URL",
        "APP_ENV",
    }
    assert set(template) - set(prod) == {"SMTP_PASSWORD"}
    assert set(prod) - set(template) == set()
    assert prod["STRIPE_WEBHOOK_SECRET"] == ""
    assert len(prod["SESSION_SECRET"]) == 8
    assert dev["OPENAI_API_KEY"] == prod["OPENAI_API_KEY"]
    assert prod["WORKERS"] == dev["WORKERS"] == "4"
    assert [line.split("=")[0] for line in PROD_ENV.read_text().splitlines()].count("WORKERS") == 2
    assert not any(key.startswith("LEGACY_") for key in (*dev, *prod, *template))
    # The syntax the parser must cope with is all there, and identical in both files.
    assert dev["LOG_DIR"] == prod["LOG_DIR"] == "${APP_HOME}/logs"
    assert "\n" in dev["EMAIL_FOOTER"] and dev["EMAIL_FOOTER"] == prod["EMAIL_FOOTER"]
    assert dev["APP_NAME"] == prod["APP_NAME"] == "Personal Assistant"
    for text in (DEV_ENV.read_text(), PROD_ENV.read_text()):
        assert "\nexport " in text and "='" in text and '="' in text and "  # " in text


# ---------------------------------------------------------------- down / up


def test_down_then_up(lab):
    if lab["was_up"] and os.environ.get("ENVPARITY_LAB_DISRUPTIVE") != "1":
        pytest.skip("the lab was already up (maybe in use); set ENVPARITY_LAB_DISRUPTIVE=1 to cycle it")
    pid = sshd_pid()
    assert labctl("down").returncode == 0
    assert (
        not Path("/proc/%d/cmdline" % pid).exists() or b"sshd_config" not in Path("/proc/%d/cmdline" % pid).read_bytes()
    )
    assert not (SSH_DIR / "sshd.pid").exists()
    assert labctl("status").returncode == 1
    assert ssh("true").returncode == 255
    second = labctl("down")
    assert second.returncode == 0 and "no changes" in second.stdout  # idempotent
    assert MANIFEST.exists()  # down keeps the state dir
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ssh("true").returncode == 0
