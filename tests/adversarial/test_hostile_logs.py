"""Hostile log files for the health area, end to end: a 2 GB file, binary garbage and invalid UTF-8,
a 1 MB line, a FIFO named as a log file, secrets in error lines.
Each gives a clear status or masked templates, the rest of the report, and no traceback."""

import os
import secrets

from tests.adversarial.conftest import two_local_hosts

SECRET = "CANARYLOG" + secrets.token_hex(12)


def test_hostile_log_files_give_statuses_and_masked_templates(audit, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    huge = logs / "huge.log"
    with open(huge, "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: 2 GB that cost no disk
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nERROR disk quota exceeded for volume 7\n")
    (logs / "garbage.log").write_bytes(
        b"\x00\xff\xfe ERROR \x80\x81 broken \xc3\x28 bytes 12\n" + os.urandom(4096) + b"\nERROR tail 3\n"
    )
    (logs / "long.log").write_bytes(b"ERROR " + b"x" * 1000 * 1000 + b"\nINFO ok\n")  # 1 MB, within the tail
    (logs / "secret.log").write_text(
        "ERROR login failed password=%s\nERROR call with Bearer %s\nERROR key %s leaked\n" % (SECRET, SECRET, SECRET)
    )
    os.mkfifo(logs / "fifo.log")
    names = ("huge", "garbage", "long", "secret", "fifo")
    files = [{"name": name, "path": str(logs / ("%s.log" % name))} for name in names]
    dev = {"drift_log_files": files, "drift_health_cron_paths": []}
    prod = {"drift_log_files": files, "drift_health_cron_paths": []}
    inventory = two_local_hosts(tmp_path / "hosts.yml", dev, prod)
    result = audit(cmdline="-i %s --tags health" % inventory)
    assert result.rc == 0, result.stdout
    report = result.report
    assert [c["status"] for c in report["columns"]] == ["ok", "ok"]
    assert "Traceback" not in result.stdout
    # The same files on both sides: only the FIFO is reported, as not read (never hung on).
    fifo = [f for f in report["findings"] if f["subject"] == "log:fifo"]
    assert [(f["kind"], f["check"]) for f in fifo] == [("unknown", "health.not_read")]
    assert "not a regular file" in fifo[0]["message"]
    # (the host's own policies depend on this machine: only the log files are looked at here)
    assert [f for f in report["findings"] if f["subject"].startswith("log:") and f["subject"] != "log:fifo"] == []
    templates = {}
    for table in report["tables"]["health"]["tables"]:
        if table["title"].startswith("Error templates"):
            for row in table["rows"]:
                templates.setdefault(row[0], []).append(row[1])
    assert templates["log file huge"] == ["ERROR disk quota exceeded for volume <n>"]
    assert "ERROR tail <n>" in templates["log file garbage"]
    assert any(text.startswith("ERROR xxxx") and len(text) <= 240 for text in templates["log file long"])
    everything = result.stdout + result.markdown + str(report)
    assert SECRET not in everything
    # A random word is <secret> when it looks random, else <id> (it holds digits): masked either way.
    assert sorted(text.replace("<id>", "<secret>") for text in templates["log file secret"]) == [
        "ERROR call with Bearer <secret>",
        "ERROR key <secret> leaked",
        "ERROR login failed password=<secret>",
    ]
    assert huge.stat().st_size == 2 * 1024**3 + len("\nERROR disk quota exceeded for volume 7\n")
