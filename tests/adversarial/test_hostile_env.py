"""Hostile env files: a symlink out of the project, a password pasted alone, "DB_PASSWORD:pw",
a token as a key name. Through the real collector, then through one audit (compare.yml, ansible-runner)
with its own inventory: two local hosts, nothing but files in tmp_path."""

import json
import random
import string

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.env_collect import collect_env_files
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint, looks_like_token
from tests.adversarial.conftest import two_local_hosts

_RNG = random.SystemRandom()


def _random(alphabet, size):
    return "".join(_RNG.choice(alphabet) for _ in range(size))


# Fresh per run, so that a hit can only come from this run's files.
SHADOW_HASH = "$6$" + _random(string.ascii_letters + string.digits, 40)
SHADOW_LINE = "root:%s:19700:0:99999:7:::" % SHADOW_HASH
SHADOW_TEXT = "%s\nDAEMON_NOTE=%s\n" % (SHADOW_LINE, SHADOW_HASH[::-1])
# Not token-shaped, not random-looking: nothing but the missing "=" protects it.
PASTED_PASSWORD = "Pasted" + _random(string.ascii_lowercase, 8)
COLON_PASSWORD = "Colon" + _random(string.ascii_lowercase, 8)
TOKEN_KEY = "ghp_" + _random(string.ascii_letters + string.digits, 36)
CANARIES = {
    "shadow line": SHADOW_LINE,
    "shadow hash": SHADOW_HASH,
    "shadow value": SHADOW_HASH[::-1],
    "pasted password": PASTED_PASSWORD,
    "DB_PASSWORD:pw": COLON_PASSWORD,
    "token key name": TOKEN_KEY,
}
HOSTILE_LINES = "APP_NAME=shop\n%s\nDB_PASSWORD:%s\n%s=%%s\n" % (PASTED_PASSWORD, COLON_PASSWORD, TOKEN_KEY)
RUN_KEY = b"r" * 32


def leaked(text):
    return sorted(name for name, canary in CANARIES.items() if canary in text)


def test_canaries_are_what_they_stand_for():
    # The cases must stay hard: the short passwords are not caught as tokens, the key name is.
    assert not looks_like_token(PASTED_PASSWORD) and not looks_like_token(COLON_PASSWORD)
    assert looks_like_token(TOKEN_KEY)


def write_private(path, text):
    path.write_text(text)
    path.chmod(0o600)


def plant(tmp_path, shadow_via="file"):
    """A project whose config/app.env holds the hostile lines and whose config/leak.env reaches
    a stand-in for /etc/shadow outside the project, through a symlinked file or directory."""
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    etc = tmp_path / "etc"
    etc.mkdir()
    write_private(etc / "shadow", SHADOW_TEXT)
    write_private(project / "config" / "app.env", HOSTILE_LINES % "on")
    if shadow_via == "file":
        (project / "config" / "leak.env").symlink_to(etc / "shadow")
        return project, "config/leak.env"
    (project / "system").symlink_to(etc)
    return project, "system/shadow"


@pytest.mark.parametrize("shadow_via", ["file", "directory"])
def test_collector_refuses_the_symlink_out_of_the_project(tmp_path, shadow_via):
    project, leak_path = plant(tmp_path, shadow_via)
    files = [{"name": "leak", "path": leak_path}, {"name": "app", "path": "config/app.env"}]
    facts = collect_env_files(files, str(project), RUN_KEY)
    leak = facts["files"]["leak"]
    assert leak["status"] == "outside_project"
    assert leak["keys"] == {} and leak["size"] is None
    assert leaked(json.dumps(facts)) == []
    # Control: the same entry, allowed explicitly, does read the file.
    files[0]["allow_outside_project"] = True
    allowed = collect_env_files(files, str(project), RUN_KEY)["files"]["leak"]
    assert allowed["status"] == "ok" and list(allowed["keys"]) == ["DAEMON_NOTE"]


def test_collector_shows_hostile_lines_as_numbers_and_fingerprints(tmp_path):
    project, _ = plant(tmp_path)
    app = collect_env_files([{"name": "app", "path": "config/app.env"}], str(project), RUN_KEY)["files"]["app"]
    token_key = "<redacted:%s>" % fingerprint(RUN_KEY, TOKEN_KEY)
    assert list(app["keys"]) == ["APP_NAME", token_key]
    assert app["errors"] == [2, 3]
    assert leaked(json.dumps(app)) == []


def env_host(project):
    """A host's variables: the project and its two env files."""
    files = [{"name": "app", "path": "config/app.env"}, {"name": "leak", "path": "config/leak.env"}]
    return {"drift_project_dir": str(project), "drift_env_files": files}


def test_audit_reports_the_hostile_files_without_their_content(tmp_path, audit):
    dev, _ = plant(tmp_path / "dev")
    prod = tmp_path / "prod" / "project"
    (prod / "config").mkdir(parents=True)
    # prod: the same hostile lines (another value under the token-named key); a plain leak.env,
    # so that the refusal is dev's alone.
    write_private(prod / "config" / "app.env", HOSTILE_LINES % "off")
    write_private(prod / "config" / "leak.env", "DAEMON_NOTE=plain\n")
    inventory = two_local_hosts(tmp_path / "hosts.yml", env_host(dev), env_host(prod))

    result = audit(cmdline="-i %s --tags env" % inventory)
    assert result.rc == 0, result.stdout
    report = result.report
    by_subject = {}
    for finding in report["findings"]:
        by_subject.setdefault(finding["subject"], []).append(finding)

    [refusal] = by_subject["leak"]
    assert (refusal["key"], refusal["kind"], refusal["check"]) == ("@file", "unknown", "env.file_status")
    assert refusal["values"] == {"dev": "symlink leads outside the project, not read", "prod": "ok"}
    assert "outside the project directory" in refusal["message"]

    changed, syntax = sorted(by_subject["app"], key=lambda f: f["key"])
    assert (syntax["key"], syntax["check"]) == ("@syntax", "env.unparseable_line")
    assert syntax["values"] == {"dev": "lines 2, 3", "prod": "lines 2, 3"}
    # The token-named key aligns across the hosts (one keyed fingerprint): a changed row, not
    # a missing and an extra one.
    assert changed["key"].startswith("<redacted:hmac-sha256:")
    assert (changed["check"], changed["values"]) == ("env.value_changed", {"dev": "on", "prod": "off"})
    assert "DAEMON_NOTE" not in json.dumps(report)

    outputs = {
        "latest.md": result.markdown,
        "latest.json": json.dumps(report),
        "stdout": result.stdout,
    }
    outputs.update(
        {
            str(path.relative_to(tmp_path)): path.read_text(errors="replace")
            for root in (result.report_dir, result.private_dir)
            for path in root.rglob("*")
            if path.is_file()
        }
    )
    assert len(outputs) > 3
    assert {name: leaked(text) for name, text in outputs.items() if leaked(text)} == {}
