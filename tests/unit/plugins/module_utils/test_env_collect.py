"""Collecting .env files from disk: statuses, metadata, redaction and leaks."""

import errno
import grp
import json
import os
import pwd
import random
import string
import threading

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import env_collect
from ansible_collections.envparity.audit.plugins.module_utils.env_collect import collect_env_files
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint, length_class

KEY = b"k" * 32
# A canary that is secret whatever its key's name: random enough to be caught.
_RNG = random.Random(99)
CANARY = "Cnry" + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(28))
FILE_FIELDS = {"path", "status", "reason", "mode", "owner", "group", "size", "keys", "duplicates", "errors", "template"}


def collect(path, template=None, project_dir=None, max_bytes=env_collect.DEFAULT_MAX_BYTES):
    item = {"name": "app", "path": str(path), "template": None if template is None else str(template)}
    result = collect_env_files([item], project_dir, KEY, max_bytes=max_bytes)
    assert list(result) == ["files"]
    assert list(result["files"]) == ["app"]
    return result["files"]["app"]


def write(path, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_ok_file(tmp_path):
    env = write(tmp_path / ".env", "# app\nA=1\nDB_PASSWORD=%s\nA=2\nbad line\nexport B='x'\n" % CANARY, 0o640)
    result = collect(env)
    assert set(result) == FILE_FIELDS
    assert result["path"] == str(env)
    assert result["status"] == "ok"
    assert result["reason"] is None
    assert result["mode"] == "0640"
    assert result["owner"] == pwd.getpwuid(os.getuid()).pw_name
    assert result["group"] == grp.getgrgid(os.getgid()).gr_name
    assert result["size"] == length_class(env.stat().st_size) == "64+"
    assert list(result["keys"]) == ["A", "DB_PASSWORD", "B"]
    assert result["keys"]["A"]["display"] == "2"
    assert result["keys"]["A"]["line"] == 4
    assert result["keys"]["B"]["display"] == "x"
    assert result["keys"]["DB_PASSWORD"]["secret"] is True
    assert result["keys"]["DB_PASSWORD"]["display"] is None
    assert result["keys"]["DB_PASSWORD"]["fp"] == fingerprint(KEY, CANARY)
    assert result["duplicates"] == {"A": [2, 4]}
    assert result["errors"] == [5]
    assert result["template"] is None


def test_pins_of_different_lengths_are_told_apart_only_by_fingerprint(tmp_path):
    # Neither the value's length nor the file's size gives a PIN's length away.
    results = [collect(write(tmp_path / ("%d.env" % len(pin)), "PIN_SECRET=%s\n" % pin)) for pin in ("4821", "482193")]
    for result in results:
        for record in result["keys"].values():
            record.pop("fp")
            record.pop("secret_fp")
        result.pop("path")
    assert results[0] == results[1]
    assert results[0]["size"] == "16-31"


@pytest.mark.parametrize(("mode", "expected"), [(0o600, "0600"), (0o644, "0644"), (0o4755, "4755"), (0o000, "0000")])
def test_mode_is_four_octal_digits(tmp_path, mode, expected):
    assert collect(write(tmp_path / ".env", "A=1\n", mode))["mode"] == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_unknown_owner_falls_back_to_the_number(tmp_path):
    uid = gid = 54321
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    env = write(tmp_path / ".env", "A=1\n")
    os.chown(env, uid, gid)
    result = collect(env)
    assert (result["owner"], result["group"]) == ("54321", "54321")


def test_duplicates_and_errors(tmp_path):
    env = write(tmp_path / ".env", "A=1\nB=1\nA=2\n=oops\nA=3\nB=2\nC=1\nx y\n")
    result = collect(env)
    assert result["duplicates"] == {"A": [1, 3, 5], "B": [2, 6]}
    assert result["errors"] == [4, 8]
    assert {key: value["line"] for key, value in result["keys"].items()} == {"A": 5, "B": 6, "C": 7}


def test_template_keys(tmp_path):
    write(tmp_path / ".env", "A=1\n")
    write(tmp_path / ".env.example", "B=\nA=changeme\nexport C\n# D=1\nSECRET_KEY=%s\n" % CANARY)
    result = collect(".env", template=".env.example", project_dir=str(tmp_path))
    # "export C" has no "=": not a key (see test_lines_without_equals_are_line_numbers_only)
    assert result["template"] == {
        "path": str(tmp_path / ".env.example"),
        "status": "ok",
        "reason": None,
        "keys": ["A", "B", "SECRET_KEY"],
    }


def test_template_problems_are_reported(tmp_path):
    write(tmp_path / ".env", "A=1\n")
    result = collect(".env", template="missing.example", project_dir=str(tmp_path))
    assert result["status"] == "ok"
    assert result["template"]["status"] == "missing"
    assert result["template"]["keys"] == []
    assert result["template"]["reason"]


def test_relative_path_and_home_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "proj").mkdir()
    write(tmp_path / "proj" / ".env", "A=1\n")
    result = collect(".env", project_dir="~/proj")
    assert result["path"] == str(tmp_path / "proj" / ".env")
    assert result["status"] == "ok"
    assert collect("~/proj/.env", project_dir="/elsewhere")["status"] == "ok"


def test_missing(tmp_path):
    result = collect(tmp_path / "nope.env")
    assert result["status"] == "missing"
    assert result["reason"] == "The file does not exist."
    assert (result["mode"], result["owner"], result["group"], result["size"]) == (None, None, None, None)
    assert (result["keys"], result["duplicates"], result["errors"]) == ({}, {}, [])


def test_parent_is_a_file_counts_as_missing(tmp_path):
    write(tmp_path / "file", "A=1\n")
    assert collect(tmp_path / "file" / ".env")["status"] == "missing"


def test_dangling_symlink_is_missing(tmp_path):
    (tmp_path / ".env").symlink_to(tmp_path / "gone")
    assert collect(tmp_path / ".env")["status"] == "missing"


def test_symlink_to_regular_file_is_followed(tmp_path):
    write(tmp_path / "real.env", "A=1\n")
    (tmp_path / ".env").symlink_to(tmp_path / "real.env")
    result = collect(tmp_path / ".env")
    assert result["status"] == "ok"
    assert result["keys"]["A"]["display"] == "1"


# A stand-in for /etc/shadow: lines an env parser would show as keys.
SHADOW = "root:$6$%s:19000:0:99999:7:::\nROOT_NOTE=%s\n" % (CANARY, CANARY[::-1])
OUTSIDE_REASON = (
    "The path leads through a symlink outside the project directory; the file was not read "
    "(allow_outside_project: true on its entry audits it)."
)


def hostile_project(tmp_path):
    """A project directory and, beside it, a secret file outside it."""
    (tmp_path / "project" / "config").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    return tmp_path / "project", write(tmp_path / "etc" / "shadow", SHADOW, 0o600)


def collect_item(item, project_dir):
    return collect_env_files([dict(item, name="app")], str(project_dir), KEY)["files"]["app"]


def assert_refused(result, reason=OUTSIDE_REASON):
    assert result["status"] == "outside_project"
    assert result["reason"] == reason
    assert (result["mode"], result["owner"], result["size"], result["keys"], result["errors"]) == (
        None,
        None,
        None,
        {},
        [],
    )
    assert CANARY not in json.dumps(result)
    assert CANARY[::-1] not in json.dumps(result)


def test_symlinked_file_leaving_the_project_is_refused_unread(tmp_path, monkeypatch):
    project, shadow = hostile_project(tmp_path)
    (project / "config" / "app.env").symlink_to(shadow)
    monkeypatch.setattr(os, "open", lambda *a, **k: pytest.fail("opened a file outside the project"))
    assert_refused(collect_item({"path": "config/app.env"}, project))


def test_symlinked_directory_leaving_the_project_is_refused(tmp_path):
    project, shadow = hostile_project(tmp_path)
    (project / "shared").symlink_to(shadow.parent)
    assert_refused(collect_item({"path": "shared/shadow"}, project))
    assert_refused(collect_item({"path": str(project / "shared" / "shadow")}, project))


@pytest.mark.parametrize("allowed", [True, "true", "yes"])
def test_allow_outside_project_reads_the_file(tmp_path, allowed):
    project, shadow = hostile_project(tmp_path)
    (project / "config" / "app.env").symlink_to(shadow)
    result = collect_item({"path": "config/app.env", "allow_outside_project": allowed}, project)
    assert result["status"] == "ok"
    assert list(result["keys"]) == ["ROOT_NOTE"]
    assert result["errors"] == [1]


def test_allow_outside_project_false_string_still_refuses(tmp_path):
    project, shadow = hostile_project(tmp_path)
    (project / "config" / "app.env").symlink_to(shadow)
    assert_refused(collect_item({"path": "config/app.env", "allow_outside_project": "false"}, project))


def test_symlinks_within_the_project_are_followed(tmp_path):
    project, _ = hostile_project(tmp_path)
    write(project / "config" / "real.env", "A=1\n")
    (project / ".env").symlink_to("config/real.env")
    (project / "current").symlink_to("config")
    (tmp_path / "project_link").symlink_to(project)
    for path, base in ((".env", project), ("current/real.env", project), (".env", tmp_path / "project_link")):
        result = collect_item({"path": path}, base)
        assert (result["status"], list(result["keys"])) == ("ok", ["A"])


def test_a_path_configured_outside_the_project_is_read(tmp_path):
    # The inventory named it: only symlinks are confined, to the directory the path names.
    project, shadow = hostile_project(tmp_path)
    assert collect_item({"path": str(shadow)}, project)["status"] == "ok"
    assert collect_item({"path": "../etc/shadow"}, project)["status"] == "ok"


def test_without_a_project_the_directory_named_in_the_path_confines(tmp_path):
    _, shadow = hostile_project(tmp_path)
    (tmp_path / "app").mkdir()
    write(tmp_path / "app" / "real.env", "A=1\n")
    (tmp_path / "app" / ".env").symlink_to("real.env")
    (tmp_path / "app" / "escape.env").symlink_to(shadow)
    assert (
        collect_env_files([{"name": "a", "path": str(tmp_path / "app" / ".env")}], None, KEY)["files"]["a"]["status"]
        == "ok"
    )
    escaped = collect_env_files([{"name": "a", "path": str(tmp_path / "app" / "escape.env")}], None, KEY)["files"]["a"]
    assert_refused(
        escaped,
        "The path leads through a symlink outside the directory it names; the file was not read "
        "(allow_outside_project: true on its entry audits it).",
    )


def test_template_leaving_the_project_is_refused(tmp_path):
    project, shadow = hostile_project(tmp_path)
    write(project / ".env", "A=1\n")
    (project / "config" / "env.example").symlink_to(shadow)
    result = collect_item({"path": ".env", "template": "config/env.example"}, project)
    assert result["status"] == "ok"
    assert result["template"] == {
        "path": str(project / "config" / "env.example"),
        "status": "outside_project",
        "reason": OUTSIDE_REASON,
        "keys": [],
    }
    allowed = collect_item({"path": ".env", "template": "config/env.example", "allow_outside_project": True}, project)
    assert allowed["template"]["keys"] == ["ROOT_NOTE"]


def test_symlink_swapped_in_after_the_check_is_caught_once_opened(tmp_path, monkeypatch):
    # The first check sees no symlink (as if the link appeared just after it): the path of the
    # opened file, as the kernel reports it, still refuses it before a byte is read.
    project, shadow = hostile_project(tmp_path)
    link = project / "config" / "app.env"
    link.symlink_to(shadow)
    real_realpath = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda path: str(path) if str(path) == str(link) else real_realpath(path))
    monkeypatch.setattr(os, "read", lambda *a: pytest.fail("read a file outside the project"))
    assert_refused(collect_item({"path": "config/app.env"}, project))


def test_directory_is_not_regular(tmp_path):
    (tmp_path / ".env").mkdir()
    result = collect(tmp_path / ".env")
    assert result["status"] == "not_regular"
    assert "directory" in result["reason"]
    assert result["mode"] is not None


def run_with_timeout(function, seconds=5):
    """Run function in a thread; fail instead of hanging if it blocks."""
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("value", function()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    return outcome["value"]


def test_fifo_is_never_opened(tmp_path, monkeypatch):
    fifo = tmp_path / ".env"
    os.mkfifo(fifo)
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *args, **kwargs: opened.append(args) or real_open(*args, **kwargs))
    result = run_with_timeout(lambda: collect(fifo))
    assert result["status"] == "not_regular"
    assert "FIFO" in result["reason"]
    assert opened == []


def test_symlink_to_fifo_is_not_regular(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / ".env").symlink_to(tmp_path / "pipe")
    assert run_with_timeout(lambda: collect(tmp_path / ".env"))["status"] == "not_regular"


def test_swapped_for_fifo_after_stat_does_not_block(tmp_path, monkeypatch):
    # The stat sees a regular file, then the path turns out to be a FIFO: the
    # non-blocking open returns and fstat catches it.
    regular = write(tmp_path / "regular.env", "A=1\n")
    fifo = tmp_path / ".env"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(regular if str(path) == str(fifo) else path))
    result = run_with_timeout(lambda: collect(fifo))
    assert result["status"] == "not_regular"


def test_unreadable_when_open_is_denied(tmp_path, monkeypatch):
    env = write(tmp_path / ".env", "DB_PASSWORD=%s\n" % CANARY)

    def deny(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(env))

    monkeypatch.setattr(os, "open", deny)
    result = collect(env)
    assert result["status"] == "unreadable"
    assert result["reason"] == "Permission denied when opening the file."
    assert result["mode"] == "0644"
    assert result["keys"] == {}
    assert CANARY not in json.dumps(result)


def test_unreadable_when_stat_is_denied(tmp_path, monkeypatch):
    env = write(tmp_path / ".env", "A=1\n")

    def deny(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(env))

    monkeypatch.setattr(os, "stat", deny)
    result = collect(env)
    assert result["status"] == "unreadable"
    assert result["mode"] is None


def test_other_os_errors_are_unreadable(tmp_path, monkeypatch):
    env = write(tmp_path / ".env", "A=1\n")

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "read", fail)
    result = collect(env)
    assert result["status"] == "unreadable"
    assert result["reason"] == "Reading the file failed: %s." % os.strerror(errno.EIO)


def test_too_large_is_not_read(tmp_path, monkeypatch):
    env = write(tmp_path / ".env", "A=%s\n" % ("x" * 100))
    monkeypatch.setattr(os, "open", lambda *a, **k: pytest.fail("opened a too large file"))
    result = collect(env, max_bytes=50)
    assert result["status"] == "too_large"
    assert result["size"] == "64+"
    assert "50-byte limit" in result["reason"]


def test_file_grown_after_stat_is_too_large(tmp_path, monkeypatch):
    env = write(tmp_path / ".env", "A=%s\n" % ("x" * 100))
    small = write(tmp_path / "small", "A=1\n")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(small if str(path) == str(env) else path))
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: real_stat(small) if fd >= 0 else real_fstat(fd))
    assert collect(env, max_bytes=50)["status"] == "too_large"


def test_exactly_max_bytes_is_ok(tmp_path):
    env = write(tmp_path / ".env", "A=123456\n")
    assert collect(env, max_bytes=9)["status"] == "ok"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"A=1\nB=\x00\x01\x02\n", "The file contains NUL bytes: it is binary or not UTF-8."),
        ("A=1\n".encode("utf-16"), "The file contains NUL bytes: it is binary or not UTF-8."),
        (b"A=1\nB=\xff\xfe caf\xe9\n", "The file is not valid UTF-8 text."),
        (b"A=\xc3\n", "The file is not valid UTF-8 text."),
    ],
)
def test_undecodable(tmp_path, data, reason):
    result = collect(write(tmp_path / ".env", data))
    assert result["status"] == "undecodable"
    assert result["reason"] == reason
    assert result["keys"] == {}
    assert result["size"] == length_class(len(data))


def test_utf8_bom_is_tolerated(tmp_path):
    result = collect(write(tmp_path / ".env", b"\xef\xbb\xbfFIRST=1\nSECOND=caf\xc3\xa9\n"))
    assert result["status"] == "ok"
    assert list(result["keys"]) == ["FIRST", "SECOND"]
    assert result["keys"]["SECOND"]["display"] == "café"


def test_several_files_and_names(tmp_path):
    write(tmp_path / "a.env", "A=1\n")
    files = [
        {"name": "app", "path": "a.env", "template": None},
        {"name": "worker", "path": "missing.env"},
    ]
    result = collect_env_files(files, str(tmp_path), KEY)
    assert {name: entry["status"] for name, entry in result["files"].items()} == {"app": "ok", "worker": "missing"}


def test_token_shaped_key_name_is_a_keyed_fingerprint(tmp_path):
    dev = write(tmp_path / "dev.env", "A=1\n%s=x\n" % CANARY)
    prod = write(tmp_path / "prod.env", "%s=y\nA=1\n" % CANARY)
    template = write(tmp_path / "tpl", "%s=\n" % CANARY)
    redacted = "<redacted:%s>" % fingerprint(KEY, CANARY)
    result = collect(dev, template=template)
    assert list(result["keys"]) == ["A", redacted]
    assert result["template"]["keys"] == [redacted]
    # The same name on another host gives the same marker, so the rows still align.
    assert list(collect(prod)["keys"]) == [redacted, "A"]
    assert CANARY not in json.dumps(result)


# A short password is not token-shaped: only the missing "=" keeps it out of the keys.
SHORT_PASSWORD = "Pw" + "".join(_RNG.choice(string.ascii_lowercase) for _ in range(6))


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (SHORT_PASSWORD, SHORT_PASSWORD),
        ("DB_PASSWORD:%s" % SHORT_PASSWORD, SHORT_PASSWORD),
        ("export %s" % SHORT_PASSWORD, SHORT_PASSWORD),
        (CANARY, CANARY),
        ("  %s  # pasted" % CANARY, CANARY),
    ],
)
def test_lines_without_equals_are_line_numbers_only(tmp_path, line, secret):
    env = write(tmp_path / ".env", "A=1\n%s\nB=2\n" % line)
    template = write(tmp_path / ".env.example", "A=\n\n%s\n" % line)
    result = collect(env, template=template)
    assert list(result["keys"]) == ["A", "B"]
    assert result["errors"] == [2]
    assert result["duplicates"] == {}
    assert result["template"]["keys"] == ["A"]
    assert secret not in json.dumps(result)


def test_bare_and_unparsable_lines_are_reported_together_in_order(tmp_path):
    env = write(tmp_path / ".env", "A=1\nbroken line\nalone\nB=2\n'open\nC\n")
    assert collect(env)["errors"] == [2, 3, 5, 6]


# Files holding the canary in every place a secret can hide.
LEAK_CASES = {
    "named_secret": "DB_PASSWORD=%s\n" % CANARY,
    "quoted_named_secret": 'API_TOKEN="%s" # comment\n' % CANARY,
    "high_entropy_value": "NOTES=%s\n" % CANARY,
    "url_password": "DATABASE_URL=postgres://app:%s@db:5432/app?sslmode=require\n" % CANARY,
    "url_query_token": "WEBHOOK=https://hooks.example.com/x?token=%s\n" % CANARY,
    "connection_string": "CONN=Server=db;Database=app;Password=%s;\n" % CANARY,
    "multi_line_key": 'TLS_KEY="-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----"\n' % CANARY,
    "duplicate_earlier_value": "SECRET_KEY=%s\nSECRET_KEY=other-%s\n" % (CANARY, CANARY),
    "bare_token_line": "A=1\n%s\n" % CANARY,
    "colon_for_equals": "DB_PASSWORD:%s\n" % CANARY,
    "token_as_key_name": "%s=1\n" % CANARY,
    "malformed_line": "A=1\nbroken %s line\nB='%s' junk\n" % (CANARY, CANARY),
    "unterminated_quote": 'PASSWORD="%s\n' % CANARY,
    "export_secret": "export AWS_SECRET_ACCESS_KEY=%s\n" % CANARY,
}


@pytest.mark.parametrize("case", sorted(LEAK_CASES))
def test_canary_never_leaks(tmp_path, case):
    env = write(tmp_path / ".env", LEAK_CASES[case])
    template = write(tmp_path / ".env.example", LEAK_CASES[case])
    result = collect(env, template=template)
    assert result["status"] == "ok"
    assert CANARY not in json.dumps(result)
    assert CANARY not in repr(result)


@pytest.mark.parametrize(
    ("data", "max_bytes", "status"),
    [
        ("SECRET=%s\n" % CANARY + "x" * 200, 100, "too_large"),
        ("SECRET=%s\n\x00" % CANARY, 1024, "undecodable"),
        (("SECRET=%s\n" % CANARY).encode("utf-8") + b"\xff", 1024, "undecodable"),
    ],
)
def test_canary_never_leaks_from_bad_files(tmp_path, data, max_bytes, status):
    result = collect(write(tmp_path / ".env", data), max_bytes=max_bytes)
    assert result["status"] == status
    assert CANARY not in json.dumps(result)
