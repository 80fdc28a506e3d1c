"""Drift over time end to end: compare.yml through ansible-runner, twice, with the history store.

Two audits of an inventory of two local hosts whose env files this test owns (one drift fixed,
one added between the runs): exactly one resolved and one new, the persisting one keeps its
first-seen date; the same on the real lab's own env files (dev's, and prod's read over SSH as
deploy), restored byte for byte; a previous report given as drift_previous_report with an older
date gives the age in days; the gate on new findings. Then two audits of the real lab (prod over SSH) changing
only the rules between them: nothing new, nothing resolved; a baseline saved and compared with;
no lab canary in the store."""

import calendar
import contextlib
import fcntl
import json
import os
import pathlib
import time

import jsonschema
import yaml

from tests.adversarial.conftest import two_local_hosts

from .conftest import LAB_STATE, ROOT

# The lab's env files (lab/env_area.py) and the lock every labctl takes (lab/labcore.py LOCK_FILE).
LAB_ENV_FILES = {
    "dev": LAB_STATE / "dev" / "personal_assistant" / "config" / "development.env",
    "prod": pathlib.Path("/home/deploy/ai_assistant/config/production.env"),
}
LAB_LOCK = pathlib.Path("/run/envparity-lab.lock")

SCHEMA = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
SECRET = "Hist0ryCanary-9fJ2kq7Lx4"


def write_env(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("%s\n" % line for line in lines))
    path.chmod(0o600)


def local_pair(tmp_path):
    dev, prod = tmp_path / "dev" / "app.env", tmp_path / "prod" / "app.env"
    inventory = two_local_hosts(
        tmp_path / "hosts.yml",
        {"drift_env_files": [{"name": "app", "path": str(dev)}]},
        {"drift_env_files": [{"name": "app", "path": str(prod)}]},
    )
    return dev, prod, inventory


def by_key(report):
    return {f["key"]: f for f in report["findings"] if f["area"] == "env"}


def test_one_drift_fixed_and_one_added_give_one_resolved_and_one_new(audit, tmp_path):
    dev, prod, inventory = local_pair(tmp_path)
    write_env(dev, ["LOG_LEVEL=INFO", "WORKERS=4", "FEATURE_X=1", "API_TOKEN=%s" % SECRET])
    write_env(prod, ["LOG_LEVEL=DEBUG", "WORKERS=4", "API_TOKEN=%s" % SECRET])
    options = "-i %s --tags env" % inventory
    first = audit(options)
    assert first.rc == 0, first.stdout
    first_report = first.report  # latest.json moves on with the next audit
    before = by_key(first_report)
    assert {"LOG_LEVEL", "FEATURE_X"} <= set(before)
    assert {f["state"] for f in first_report["findings"]} == {"new"}
    store = first.report_dir / "history.sqlite"
    assert first_report["history"]["store"] == str(store) and store.exists()

    # fix one drift (LOG_LEVEL), add one (CACHE_URL only in prod)
    write_env(prod, ["LOG_LEVEL=INFO", "WORKERS=4", "CACHE_URL=redis://cache:6379/0", "API_TOKEN=%s" % SECRET])
    second = audit(options, extravars={"drift_fail_on_new": "low"})
    report = second.report
    jsonschema.validate(report, SCHEMA)
    assert report["schema_version"] == 2
    after = by_key(report)
    history = report["history"]
    assert history["compared_with"]["generated_at"] == first_report["generated_at"]
    assert [(r["key"], r["check"]) for r in history["resolved"]] == [("LOG_LEVEL", before["LOG_LEVEL"]["check"])]
    assert history["resolved"][0]["id"] == before["LOG_LEVEL"]["id"]
    new = [f for f in report["findings"] if f["state"] == "new"]
    assert [f["key"] for f in new] == ["CACHE_URL"]
    assert history["counts"]["new"] == 1 and history["counts"]["resolved"] == 1
    persisting = after["FEATURE_X"]
    assert persisting["id"] == before["FEATURE_X"]["id"] and persisting["state"] == "persisting"
    assert persisting["first_seen"] == first_report["generated_at"] and persisting["age_days"] == 0
    # the gate on new findings: CACHE_URL (low) is new, so drift_fail_on_new=low fails the run
    assert second.rc == 2, second.stdout
    assert report["gate"]["fail_on_new"] == "low" and report["gate"]["new_count"] == 1
    markdown = second.markdown
    assert "## Since the last audit" in markdown
    assert "1 new, 0 changed" in markdown and "1 resolved" in markdown
    assert "`CACHE_URL` (`%s`)" % after["CACHE_URL"]["id"] in markdown
    assert "```mermaid\nxychart-beta" in markdown
    assert "since the last audit: 1 new" in second.stdout
    # the store holds no value: neither the secret nor a plain one
    raw = store.read_bytes()
    assert SECRET.encode() not in raw and b"redis://cache" not in raw

    # a third run on the same state, gated on new high only: nothing new, it passes
    third = audit(options, extravars={"drift_fail_on_new": "high"})
    assert third.rc == 0, third.stdout
    assert third.report["history"]["counts"] == {"new": 0, "persisting": len(after), "changed": 0, "resolved": 0}


def file_state(path):
    info = os.stat(path)
    return path.read_bytes(), info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns


@contextlib.contextmanager
def lab_env_files_on_loan():
    """The lab's own env files, to change for one test: under the lab's lock (no labctl up or
    replant rewrites them meanwhile, nor has its rewrite undone by the restore), then put back in
    place (same inode, so owner and mode stay) with their bytes, mode, owner and mtime, whatever
    happens; the restoration is checked."""
    with LAB_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = {name: file_state(path) for name, path in LAB_ENV_FILES.items()}
        try:
            yield {name: state[0].decode() for name, state in saved.items()}
        finally:
            for name, path in LAB_ENV_FILES.items():
                content, mode, uid, gid, mtime = saved[name]
                with path.open("r+b") as handle:
                    handle.write(content)
                    handle.truncate()
                os.chown(path, uid, gid)
                os.chmod(path, mode)
                os.utime(path, ns=(mtime, mtime))
            assert {name: file_state(path) for name, path in LAB_ENV_FILES.items()} == saved


def rewrite(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, "the lab's %s no longer has %r" % (path, old)
    with path.open("w") as handle:  # in place: the file keeps its owner and mode
        handle.write(text.replace(old, new))


def env_ids(report):
    return {(f["key"], f["check"]): f["id"] for f in report["findings"] if f["area"] == "env"}


def test_the_lab_with_one_drift_fixed_and_one_added_gives_one_resolved_and_one_new(audit, lab):
    """On the lab's real env files: dev's LOG_LEVEL made INFO as prod's (the planted
    env.value_changed fixed), MAINTENANCE_MODE added to prod (a new env.key_extra)."""
    with lab_env_files_on_loan() as original:
        assert "LOG_LEVEL=DEBUG\n" in original["dev"] and "MAINTENANCE_MODE" not in original["prod"]
        assert original["prod"].endswith("\n")
        first = audit("--tags env")
        assert first.rc == 0, first.stdout
        first_report = first.report
        before = env_ids(first_report)
        assert ("LOG_LEVEL", "env.value_changed") in before
        assert {f["state"] for f in first_report["findings"]} == {"new"}

        rewrite(LAB_ENV_FILES["dev"], "LOG_LEVEL=DEBUG\n", "LOG_LEVEL=INFO\n")
        # appended: no line of prod's file moves (the syntax and duplicate findings name line numbers)
        rewrite(LAB_ENV_FILES["prod"], original["prod"], original["prod"] + "MAINTENANCE_MODE=false\n")
        second = audit("--tags env")
    assert second.rc == 0, second.stdout
    report = second.report
    jsonschema.validate(report, SCHEMA)
    history = report["history"]
    assert history["compared_with"]["generated_at"] == first_report["generated_at"]
    first_ids = {f["id"] for f in first_report["findings"]}
    unexpected = {f["id"] for f in first_report["findings"] if not f["expected"]}  # what the counts count
    assert history["counts"] == {"new": 1, "persisting": len(unexpected) - 1, "changed": 0, "resolved": 1}
    assert [(r["id"], r["key"], r["check"]) for r in history["resolved"]] == [
        (before[("LOG_LEVEL", "env.value_changed")], "LOG_LEVEL", "env.value_changed")
    ]
    after = env_ids(report)
    new = [f for f in report["findings"] if f["state"] == "new"]
    assert [(f["id"], f["key"], f["check"], f["environments"]) for f in new] == [
        (after[("MAINTENANCE_MODE", "env.key_extra")], "MAINTENANCE_MODE", "env.key_extra", ["prod"])
    ]
    assert after[("MAINTENANCE_MODE", "env.key_extra")] not in before.values()
    # every other finding persists under its id, first seen in the first run, 0 days old
    persisting = [f for f in report["findings"] if f["state"] == "persisting"]
    assert {f["id"] for f in persisting} == first_ids - {before[("LOG_LEVEL", "env.value_changed")]}
    assert {(f["first_seen"], f["age_days"]) for f in persisting} == {(first_report["generated_at"], 0)}
    markdown = second.markdown
    assert "## Since the last audit" in markdown and "1 new, 0 changed" in markdown and "1 resolved" in markdown
    assert "`MAINTENANCE_MODE` (`%s`)" % after[("MAINTENANCE_MODE", "env.key_extra")] in markdown


def test_a_previous_report_from_23_days_ago_gives_the_age_and_first_seen(audit, tmp_path):
    dev, prod, inventory = local_pair(tmp_path)
    write_env(dev, ["DEBUG=false", "APP_ENV=x"])
    write_env(prod, ["DEBUG=true", "APP_ENV=x"])
    first = audit("-i %s --tags env" % inventory, extravars={"drift_history": False})
    assert first.rc == 0, first.stdout
    assert not (first.report_dir / "history.sqlite").exists()
    # the CI artifact of a run 23 days ago: same findings, older dates
    old = first.report
    then = calendar.timegm(time.strptime(old["generated_at"], "%Y-%m-%dT%H:%M:%SZ")) - 23 * 86400
    old["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(then))
    for finding in old["findings"]:
        finding["first_seen"] = old["generated_at"]
    artifact = tmp_path / "last.json"
    artifact.write_text(json.dumps(old))
    second = audit(
        "-i %s --tags env" % inventory,
        extravars={"drift_history": False, "drift_previous_report": str(artifact)},
    )
    debug = by_key(second.report)["DEBUG"]
    assert (debug["state"], debug["first_seen"], debug["age_days"]) == ("persisting", old["generated_at"], 23)
    assert "(for 23 days, since %s)" % old["generated_at"][:10] in second.markdown
    assert second.report["history"]["source"] == "previous report %s" % artifact


def test_the_lab_audited_twice_with_other_rules_then_against_a_baseline(audit, lab):
    first = audit("--tags env", extravars={"drift_baseline_save": "release"})
    assert first.rc == 0, first.stdout
    first_report = first.report
    expected_before = {f["id"] for f in first.findings(expected=True)}
    assert expected_before
    # only the rules change: the expected findings become unexpected, nothing is new or resolved
    second = audit("--tags env", extravars={"drift_rules_files": [], "drift_fail_on_new": "high"})
    assert second.rc == 0, second.stdout
    history = second.report["history"]
    assert history["counts"]["new"] == 0 and history["counts"]["resolved"] == 0
    assert {f["id"] for f in second.findings(expected=False)} >= expected_before
    assert {f["state"] for f in second.report["findings"]} == {"persisting"}
    ids = [f["id"] for f in second.report["findings"]]
    assert len(ids) == len(set(ids))
    third = audit("--tags env", extravars={"drift_baseline": "release"})
    assert third.rc == 0, third.stdout
    assert third.report["history"]["source"] == "baseline release"
    assert third.report["history"]["compared_with"]["generated_at"] == first_report["generated_at"]
    # no canary the lab planted is in the store
    canaries = json.loads((LAB_STATE / "canaries.json").read_text())
    raw = (third.report_dir / "history.sqlite").read_bytes()
    assert [name for name, value in canaries.items() if str(value).encode() in raw] == []


def test_a_corrupt_store_gives_a_report_that_says_so_and_is_left_alone(audit, tmp_path):
    dev, prod, inventory = local_pair(tmp_path)
    write_env(dev, ["A=1"])
    write_env(prod, ["A=2"])
    store = tmp_path / "reports" / "history.sqlite"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"not a database" * 64)
    result = audit("-i %s --tags env" % inventory)
    assert result.rc == 0, result.stdout
    assert "not an SQLite database" in result.report["history"]["error"]
    assert "History not read" in result.markdown and "HISTORY:" in result.stdout
    assert store.read_bytes() == b"not a database" * 64
    assert yaml.safe_load(pathlib.Path(inventory).read_text())


def test_a_store_locked_by_another_audit_costs_the_record_not_the_report(audit, tmp_path):
    import sqlite3

    dev, prod, inventory = local_pair(tmp_path)
    write_env(dev, ["A=1"])
    write_env(prod, ["A=2"])
    first = audit("-i %s --tags env" % inventory)
    assert first.rc == 0, first.stdout
    store = first.report_dir / "history.sqlite"
    other = sqlite3.connect(str(store), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another audit writing, for longer than the bounded wait
    try:
        second = audit("-i %s --tags env" % inventory, extravars={"drift_history_busy_timeout": 1})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert second.rc == 0, second.stdout
    assert second.report["history"]["counts"]["persisting"] == 1  # read before the lock was needed
    said = " ".join(second.stdout.split())
    assert "stayed locked by another audit for 1 s (drift_history_busy_timeout); this run was not recorded" in said
    assert sqlite3.connect(str(store)).execute("SELECT count(*) FROM runs").fetchone()[0] == 1
