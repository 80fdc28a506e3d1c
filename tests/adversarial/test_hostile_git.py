"""Hostile git repositories: their own configuration names programs for git to run; the audit runs none.

Each repository is built here with real git.  Every planted program only writes a marker file
named after itself (and, for a filter, passes content through or prints the committed text), so
"nothing ran" is "no marker".  Control steps run ordinary git commands on the same repositories
first, to show that every plant is live: the markers appear.
"""

import http.server
import os
import pathlib
import shutil
import subprocess
import threading

import pytest
import yaml

from ansible_collections.envparity.audit.plugins.module_utils.git_collect import collect_git
from ansible_collections.envparity.audit.plugins.plugin_utils import git_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import build_request

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY = b"k" * 32
IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@invalid",
}
ORIGINAL = 'print("original")\n'
HOTFIX = 'print("hot-fix made on the server")\n'
# A value that must never reach a fact or a finding (programs' values may carry secrets).
SECRET_ARGUMENT = "--token=" + "Zk3" + "q9XvL2mTr8WpB7nYc4Hd"
HOOKS = ("reference-transaction", "post-index-change", "pre-auto-gc", "post-checkout", "fsmonitor-watchman")
# What the main repository declares: the names the policy finding must list.
DECLARED = [
    "alias.st",
    "core.askpass",
    "core.fsmonitor",
    "core.hookspath",
    "core.pager",
    "core.sshcommand",
    "credential.helper",
    "diff.external",
    "diff.tc.textconv",
    "filter.hide.clean",
    "filter.hide.smudge",
    "filter.proc.process",
    "gpg.program",
    "pager.log",
]


@pytest.fixture(autouse=True)
def _isolated_git_config(tmp_path_factory, monkeypatch):
    """No global or system configuration: only what the repositories declare."""
    config = tmp_path_factory.mktemp("gitconfig") / "global"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo, *args, check=True):
    env = dict(os.environ, **IDENTITY)
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-C", str(repo), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if check and proc.returncode:
        raise AssertionError("git %s: %s" % (" ".join(args), proc.stderr))
    return proc


class Plants:
    """A directory of marker-writing programs and the markers they write."""

    def __init__(self, base):
        self.bin = base / "bin"
        self.markers = base / "markers"
        for path in (base, self.bin, self.markers):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
        self.markers.chmod(0o777)  # writable by whoever runs git, the lab's deploy user too
        (base / "original.txt").write_text(ORIGINAL)
        (base / "original.txt").chmod(0o644)
        self.original = base / "original.txt"

    def program(self, name, tail="exit 0"):
        path = self.bin / name
        path.write_text('#!/bin/sh\n: > "%s/%s"\n%s\n' % (self.markers, name, tail))
        path.chmod(0o755)
        return str(path)

    def found(self):
        return sorted(os.listdir(self.markers))

    def clear(self):
        for name in self.found():
            (self.markers / name).unlink()


def plant_config(repo, plants, include_dir):
    """Every config-driven program, the fsmonitor through include.path, filters in info/attributes."""
    included = include_dir / ("included-%s.cfg" % repo.name)
    included.write_text("[core]\n\tfsmonitor = %s\n" % plants.program("fsmonitor", "exit 1"))
    included.chmod(0o644)
    hooks = plants.bin / "hooks"
    hooks.mkdir(exist_ok=True)
    hooks.chmod(0o755)
    for hook in HOOKS:
        for directory in (hooks, repo / ".git" / "hooks"):
            shutil.copy(plants.program("hook-" + hook), directory / hook)
    settings = {
        "include.path": str(included),
        "filter.hide.clean": "%s %s"
        % (plants.program("filter.hide.clean", "cat >/dev/null; cat %s" % plants.original), SECRET_ARGUMENT),
        "filter.hide.smudge": plants.program("filter.hide.smudge", "cat"),
        "filter.proc.process": plants.program("filter.proc.process", "exit 1"),
        "diff.tc.textconv": plants.program("diff.tc.textconv", 'cat "$1"'),
        "diff.external": plants.program("diff.external"),
        "core.pager": plants.program("core.pager", "cat"),
        "pager.log": plants.program("pager.log", "cat"),
        "core.hooksPath": str(hooks),
        "core.sshCommand": plants.program("core.sshCommand", "exit 1"),
        "credential.helper": plants.program("credential.helper"),
        "core.askPass": plants.program("core.askPass"),
        "gpg.program": plants.program("gpg.program", "exit 1"),
        "log.showSignature": "true",
        "alias.st": "!" + plants.program("alias.st"),
        "protocol.ext.allow": "always",
    }
    for key, value in settings.items():
        git(repo, "config", key, value)
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "attributes").write_text("app.py filter=hide\n*.dat filter=proc\nnotes.txt diff=tc\n")


def build_clean(path):
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text(ORIGINAL)
    (path / "notes.txt").write_text("one\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    (path / "notes.txt").write_text("one\ntwo\n")
    git(path, "commit", "-q", "-am", "second: notes")
    return path


def sign_head_commit(repo):
    """Give HEAD a (fake) signature, so that verifying it would call gpg.program."""
    body = git(repo, "cat-file", "commit", "HEAD").stdout
    header, _, message = body.partition("\n\n")
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----"
    signed = "%s\n%s\n\n%s" % (header, signature, message)
    proc = subprocess.run(
        ["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"],
        input=signed,
        capture_output=True,
        text=True,
        check=True,
    )
    git(repo, "update-ref", "HEAD", proc.stdout.strip())


def hide_hotfix(repo):
    """Edit app.py, then `git add` it: the clean filter prints the committed text, so the index
    records the committed blob with the edited file's stat, and git itself no longer sees the hot-fix."""
    (repo / "app.py").write_text(HOTFIX)
    git(repo, "add", "app.py")
    assert git(repo, "status", "--porcelain").stdout == ""
    assert git(repo, "diff", "--no-ext-diff", "--stat").stdout == ""


@pytest.fixture
def refusing_http_server():
    """A loopback HTTP server that answers every request with 401: git would ask for credentials."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the handler's name is fixed by http.server)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/x.git" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def hostile(tmp_path, refusing_http_server):
    """The main hostile repository (hot-fix hidden behind a clean filter) and three whose fetch
    would reach a program: ssh (core.sshCommand), http (credential helper, askpass), ext::."""
    plants = Plants(tmp_path / "plants")
    main = build_clean(tmp_path / "main")
    plant_config(main, plants, tmp_path)
    sign_head_commit(main)
    fetchers = {}
    for name, url in (
        ("ssh", "ssh://git@127.0.0.1:9/x.git"),
        ("http", refusing_http_server),
        ("ext", "ext::%s" % plants.program("ext-remote", "exit 1")),
    ):
        repo = build_clean(tmp_path / name)
        plant_config(repo, plants, tmp_path)
        git(repo, "remote", "add", "origin", url)
        fetchers[name] = repo
    return main, fetchers, plants


def test_the_plants_are_live_for_ordinary_git(hostile):
    """Control: plain git commands on these repositories do run the planted programs."""
    main, fetchers, plants = hostile
    os.utime(main / "app.py", (1, 1))  # stat no longer matches the index: status runs the clean filter
    git(main, "status")
    git(main, "diff", "HEAD~1", "HEAD")
    git(main, "diff", "--no-ext-diff", "HEAD~1", "HEAD", "--", "notes.txt")
    git(main, "log", "-1")
    (main / "x.dat").write_text("x\n")
    git(main, "add", "x.dat", check=False)  # the process filter fails its handshake: git gives up
    for repo in fetchers.values():
        git(repo, "fetch", "origin", check=False)
    found = plants.found()
    for name in (
        "fsmonitor",
        "filter.hide.clean",
        "filter.proc.process",
        "diff.external",
        "diff.tc.textconv",
        "gpg.program",
        "core.sshCommand",
        "credential.helper",
        "core.askPass",
        "ext-remote",
    ):
        assert name in found


def test_collecting_hostile_repositories_runs_none_of_their_programs(hostile):
    main, fetchers, plants = hostile
    hide_hotfix(main)
    plants.clear()
    repos = [{"name": "app", "path": str(main)}] + [
        {"name": name, "path": str(path)} for name, path in fetchers.items()
    ]
    request = build_request("git", {"drift_git_repos": repos, "drift_git_fetch": True, "drift_git_timeout": 20})
    facts = collect_git(request, KEY)
    assert plants.found() == []  # nothing the repositories named ran
    app = facts["repos"]["app"]
    assert app["status"] == "ok"
    # The hot-fix git itself no longer sees is reported from the bytes on disk.
    assert [item["path"] for item in app["modified"]["files"]] == ["app.py"]
    assert app["declared_programs"] == DECLARED
    for name in fetchers:
        assert facts["repos"][name]["status"] == "ok"
        assert "fetch" in facts["repos"][name]["reason"]  # the fetch failed, as it must
    assert SECRET_ARGUMENT not in str(facts)

    # Control for the hidden hot-fix: a diff of the same facts, prod being the hostile repository.
    dev = build_clean(main.parent / "dev-clone")
    dev_facts = collect_git(build_request("git", {"drift_git_repos": [{"name": "app", "path": str(dev)}]}), KEY)
    findings = git_diff.diff(
        ["dev", "prod"], {"dev": dev_facts, "prod": facts}, {"baseline": "dev", "production": {"prod"}}
    )
    by_check = {f["check"]: f for f in findings if f["subject"] == "app"}
    programs = by_check["git.runs_programs"]
    assert (programs["severity"], programs["environments"]) == ("high", ["prod"])
    assert programs["values"]["prod"] == ", ".join(DECLARED)
    assert "declares programs that git would run on status" in programs["message"]
    assert "app.py" in by_check["git.uncommitted_production"]["message"]
    assert SECRET_ARGUMENT not in str(findings) and str(plants.bin) not in str(findings)


def _chown(path, user):
    subprocess.run(["chown", "-R", "%s:%s" % (user, user), str(path)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the prod side's repository is handed to the lab's deploy user")
def test_audit_of_a_hostile_production_repository(audit, tmp_path):
    """End to end: dev local (a clean clone), prod the lab's sshd as deploy (the hostile repository)."""
    base = pathlib.Path("/tmp") / ("envparity-hostile-git-" + tmp_path.name)
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    plants = Plants(base / "plants")
    dev = build_clean(tmp_path / "dev")
    prod = base / "prod"
    git(base, "clone", "-q", str(dev), str(prod))
    plant_config(prod, plants, base)
    hide_hotfix(prod)
    _chown(prod, "deploy")
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    plants.clear()

    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text((ROOT / "inventory" / "lab" / "hosts.yml").read_text())
    (inventory / "group_vars" / "all.yml").write_text(
        "drift_environments: [dev, prod]\ndrift_production_environments: [prod]\n"
    )
    # Every area runs (the lab's own env files, stacks and databases), the repository the hostile one.
    for name, repo in (("dev", dev), ("prod", prod)):
        variables = yaml.safe_load((ROOT / "inventory" / "lab" / "group_vars" / ("%s.yml" % name)).read_text())
        variables.update(drift_git_repos=[{"name": "app", "path": str(repo)}], drift_deploy_dirs=[])
        (inventory / "group_vars" / ("%s.yml" % name)).write_text(yaml.safe_dump(variables))
    try:
        result = audit(cmdline="-i %s" % inventory)
        assert result.rc == 0, result.stdout
        assert result.report["areas"] == ["deps", "docker", "endpoints", "env", "git", "health", "postgres"]
        assert plants.found() == []
        findings = {f["check"]: f for f in result.report["findings"] if (f["area"], f["subject"]) == ("git", "app")}
        programs = findings["git.runs_programs"]
        assert (programs["severity"], programs["environments"]) == ("high", ["prod"])
        assert programs["values"]["prod"] == ", ".join(DECLARED)
        assert "app.py" in findings["git.uncommitted_production"]["message"]
        assert "git.runs_programs" in result.markdown and "filter.hide.clean" in result.markdown
        for text in (result.markdown, (result.report_dir / "latest.json").read_text(), result.stdout):
            assert SECRET_ARGUMENT not in text and str(plants.bin) not in text
    finally:
        shutil.rmtree(base, ignore_errors=True)
