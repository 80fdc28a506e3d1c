"""Log lines to level counts and masked error templates, on the host (module_utils/health_logs.py)."""

import os
import re

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import health_logs
from ansible_collections.envparity.audit.plugins.module_utils.health_logs import (
    MAX_LINE_BYTES,
    MAX_TEMPLATES,
    LogSummary,
    level_of,
    summarize_file,
    template_id,
    template_of,
)

SECRET = "Zq8vN3xR7tLm2Kp9Wd4Hs6Jb"  # random-looking, 24 characters


@pytest.mark.parametrize(
    ("line", "template"),
    [
        (
            "2026-12-07T04:00:01.123Z ERROR payment 4312 failed for 10.0.0.7:5432",
            "<time> ERROR payment <n> failed for <ip>",
        ),
        ("Dec  7 04:00:01 web app[123]: ERROR disk full", "<time> web app[<n>]: ERROR disk full"),
        ('ERROR user "bob" not found', "ERROR user <str> not found"),
        ("ERROR mail to alice@example.com bounced", "ERROR mail to <email> bounced"),
        ("ERROR order 3f2a9c1b-1111-2222-3333-444455556666 lost", "ERROR order <uuid> lost"),
        ("ERROR bad pointer 0xdeadbeef in deadbeef42", "ERROR bad pointer <hex> in <hex>"),
        ("ERROR peer fe80::1:2 reset", "ERROR peer <ip> reset"),
        ("ERROR login failed password=hunter2 user=bob", "ERROR login failed password=<secret> user=bob"),
        ("ERROR api_key: abc123 rejected", "ERROR api_key: <secret> rejected"),
        ("ERROR call failed: Authorization: Bearer abc.def", "ERROR call failed: Authorization: Bearer <secret>"),
        ("ERROR got Bearer shorttok", "ERROR got Bearer <secret>"),
        ("ERROR user password is correcthorse", "ERROR user password is <secret>"),
        ("ERROR secret: abc", "ERROR secret: <secret>"),
        ("ERROR db postgres://app:pw@db:5432/x down", "ERROR db postgres://app:<secret>@db:<n>/x down"),
        ("ERROR token sk-abcdefghijklmnopqrstuvwxyz012345", "ERROR token <secret>"),
        ("ERROR key %s leaked" % SECRET, "ERROR key <secret> leaked"),
        ("ERROR job worker42 died", "ERROR job <id> died"),
        ("ERROR -----BEGIN RSA PRIVATE KEY----- MIIE", "<secret>"),
        ("ERROR \x1b[31mred\x1b[0m text\x00 here", "ERROR red text here"),
    ],
)
def test_templates_mask_data(line, template):
    assert template_of(line) == template


def test_lines_that_differ_only_in_data_share_a_template():
    first = template_of("2026-01-01 10:00:00 ERROR timeout after 30s calling 10.0.0.7:8443 (request 17)")
    second = template_of("2026-02-03 11:22:33 ERROR timeout after 45s calling 10.9.8.7:443 (request 99812)")
    assert first == second and template_id(first) == template_id(second)
    assert re.fullmatch(r"[0-9a-f]{12}", template_id(first))


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2026-01-01 ERROR x", "error"),
        ("[FATAL] x", "error"),
        ("level=error msg=x", "error"),
        ('{"level":"warn","msg":"x"}', "warning"),
        ("severity=INFO x", "info"),
        ("DEBUG x", "debug"),
        ("an error happened", "other"),  # a lower-case word is prose, not a level
        ("x" * 200 + " ERROR", "other"),  # only the start of a line is looked at
    ],
)
def test_levels(line, level):
    assert level_of(line) == level


def test_no_secret_survives_in_any_template():
    secrets = ["CANARY0" + SECRET, "sk-lab-CANARY0" + SECRET, "p4ss-" + SECRET]
    lines = [
        "ERROR login failed password=%s" % secrets[0],
        "ERROR upstream: Authorization: Bearer %s" % secrets[1],
        "ERROR webhook https://hooks:%s@hooks.example.com/x failed" % secrets[2],
        "ERROR leaked %s in request" % secrets[0],
        'ERROR config {"token": "%s"}' % secrets[1],
    ]
    summary = LogSummary()
    for line in lines:
        summary.add(line.encode())
    text = repr(summary.result())
    assert not [secret for secret in secrets if secret in text]
    assert summary.result()["levels"]["error"] == len(lines)


def test_invalid_utf8_binary_and_a_1_mb_line_are_bounded():
    summary = LogSummary()
    summary.add(b"ERROR \xff\xfe\x00 binary \x80 garbage")
    summary.add(b"ERROR " + b"A" * (1024 * 1024))
    summary.add(b"")
    result = summary.result()
    assert result["lines"] == 2 and result["levels"]["error"] == 2
    assert all(len(entry["template"]) <= health_logs.MAX_TEMPLATE_CHARS for entry in result["templates"].values())
    assert health_logs.decode_line(b"x" * (2 * MAX_LINE_BYTES)) == "x" * MAX_LINE_BYTES


def test_templates_are_capped_and_the_rest_counted():
    summary = LogSummary()
    for index in range(MAX_TEMPLATES + 5):
        summary.add(("ERROR failure kind " + "x" * (index + 1)).encode())
    result = summary.result()
    assert len(result["templates"]) == MAX_TEMPLATES and result["other_templates"] == 5


def test_a_pattern_marks_error_lines():
    summary = LogSummary(re.compile(r"Traceback"))
    summary.add(b"Traceback (most recent call last):")
    assert summary.result()["levels"]["error"] == 1


def test_a_2_gb_file_is_read_from_its_tail_only(tmp_path):
    path = tmp_path / "huge.log"
    with open(path, "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: 2 GB that cost no disk
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nERROR the end 1\nINFO fine\n")
    result = summarize_file({"name": "huge", "path": str(path)}, max_bytes=4096, max_lines=100)
    assert result["status"] == "ok" and result["truncated"] is True
    assert [entry["template"] for entry in result["templates"].values()] == ["ERROR the end <n>"]
    assert result["levels"]["info"] == 1


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda p: None, "not_found", "does not exist"),
        (os.mkfifo, "failed", "not a regular file"),
        (os.mkdir, "failed", "not a regular file"),
    ],
)
def test_unusable_files_say_why(tmp_path, make, status, words):
    path = tmp_path / "app.log"
    make(path)
    result = summarize_file({"name": "app", "path": str(path)}, 1024, 10)
    assert result["status"] == status and words in result["reason"]
    assert str(tmp_path) not in result["reason"]


def test_a_bad_pattern_is_reported(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("ERROR x\n")
    result = summarize_file({"name": "app", "path": str(path), "pattern": "("}, 1024, 10)
    assert result["status"] == "failed" and "pattern" in result["reason"]
