"""Baseline columns on the real lab (prod over SSH as deploy): a baseline of prod and dev saved,
one value changed on prod in an env file this test owns, then an audit with prod@baseline and
dev@baseline as extra columns shows exactly that change on prod and nothing on dev; the secret
that did not change is the same secret in both prod columns. Then every area at -vvvv: no lab
canary and not the baseline key in anything the runs printed or left (store included).

The lab's own plants are left alone: the test audits a copy of the lab inventory that adds one
env file per host under a directory of its own, removed afterwards. The canaries are read as the
lab planted them (no replant)."""

import json
import os
import pathlib
import pwd
import secrets
import shutil
import sqlite3

import jsonschema
import pytest
import yaml

from .conftest import LAB_STATE, ROOT
from .test_leaks import scan, scanned_files

TEMP_ROOTS = (pathlib.Path("/root/.ansible/tmp"), pathlib.Path("/home/deploy/.ansible/tmp"))
SCHEMA = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
PROBE_TOKEN = "BaselineProbeT0ken-" + secrets.token_hex(10)


@pytest.fixture
def owned(tmp_path):
    """A copy of the lab inventory with one more env file per host (probe), in a directory this
    test owns (prod's is the deploy user's, read over SSH); removed whatever happens."""
    probe_dir = pathlib.Path("/tmp") / ("envparity-baseline-probe-" + secrets.token_hex(6))
    probe_dir.mkdir(mode=0o755)
    deploy = pwd.getpwnam("deploy")
    inventory = tmp_path / "lab"
    shutil.copytree(ROOT / "inventory" / "lab", inventory)
    for group in ("dev", "prod"):
        path = inventory / "group_vars" / ("%s.yml" % group)
        variables = yaml.safe_load(path.read_text())
        variables["drift_env_files"].append({"name": "probe", "path": str(probe_dir / ("%s.env" % group))})
        path.write_text(yaml.safe_dump(variables))

    def write(group, lines):
        path = probe_dir / ("%s.env" % group)
        path.write_text("".join("%s\n" % line for line in lines))
        path.chmod(0o600)
        if group == "prod":
            os.chown(path, deploy.pw_uid, deploy.pw_gid)

    try:
        yield {"inventory": inventory, "write": write}
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


def probe_lines(channel):
    return ["RELEASE_CHANNEL=%s" % channel, "WORKERS=4", "PROBE_TOKEN=%s" % PROBE_TOKEN]


def test_prod_against_its_release_baseline_shows_exactly_the_change_made_there(audit, owned):
    owned["write"]("dev", probe_lines("stable"))
    owned["write"]("prod", probe_lines("stable"))
    planted = (LAB_STATE / "canaries.json").stat().st_mtime_ns
    options = "-i %s --tags env" % owned["inventory"]
    saved = audit(options, extravars={"drift_baseline_save": "release-2026-11-20"})
    assert saved.rc == 0, saved.stdout
    assert not saved.report["errors"]
    key_file = saved.report_dir / "history.sqlite.key"
    assert key_file.stat().st_mode & 0o777 == 0o600

    owned["write"]("prod", probe_lines("canary"))  # the one change, on prod
    result = audit(options, extravars={"drift_baseline_columns": ["prod@release-2026-11-20", "dev@release-2026-11-20"]})
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert not report["errors"]
    assert [(c["label"], c["production"], c["status"]) for c in report["columns"]] == [
        ("dev", False, "ok"),
        ("prod", True, "ok"),
        ("prod@release-2026-11-20", True, "ok"),
        ("dev@release-2026-11-20", False, "ok"),
    ]
    by_id = {f["id"]: f for f in report["findings"]}
    prod_column, dev_column = report["baseline_columns"]
    changed = {column["label"]: [by_id[i] for i in column["changed"]] for column in report["baseline_columns"]}
    if (LAB_STATE / "canaries.json").stat().st_mtime_ns != planted:
        # Another session replanted the shared lab's canaries between the two audits: those
        # rotated secrets are real changes on both environments, and show (by fingerprint).
        for label, findings in changed.items():
            rotated = [f for f in findings if f["subject"] != "probe"]
            assert all(f["subject"] == "app" and "‹secret" in str(f["values"][label]) for f in rotated), label
            changed[label] = [f for f in findings if f["subject"] == "probe"]
    assert [(f["subject"], f["key"]) for f in changed[prod_column["label"]]] == [("probe", "RELEASE_CHANNEL")]
    assert changed[dev_column["label"]] == []
    channel = changed[prod_column["label"]][0]
    assert channel["values"] == {
        "dev": "stable",
        "prod": "canary",
        "prod@release-2026-11-20": "stable",
        "dev@release-2026-11-20": "stable",
    }
    assert channel["environments"] == ["prod"] and channel["state"] == "new"
    # the token did not change: the same secret in every column; dev and prod share it (reuse,
    # a finding about the live environments), prod then and prod now are no reuse
    (token,) = [f for f in report["findings"] if f["subject"] == "probe" and f["key"] == "PROBE_TOKEN"]
    assert token["check"] == "env.secret_reused" and token["environments"] == ["dev", "prod"]
    assert len(set(token["values"].values())) == 1 and "‹secret A" in token["values"]["prod@release-2026-11-20"]
    section = result.markdown.split("## Since the baseline: prod@release-2026-11-20", 1)[1].split("##", 1)[0]
    assert "- env · probe · `RELEASE_CHANNEL` (`%s`): then `stable`, now `canary`" % channel["id"] in section
    # the history saw the column as a view: the one new finding is the change
    assert [f["key"] for f in report["findings"] if f["state"] == "new" and f["subject"] == "probe"] == [
        "RELEASE_CHANNEL"
    ]

    # what the store keeps of the baseline: facts, secrets by baseline fingerprint only
    store = result.report_dir / "history.sqlite"
    raw = store.read_bytes()
    assert PROBE_TOKEN.encode() not in raw and b"RELEASE_CHANNEL" in raw
    rows = sqlite3.connect(str(store)).execute("SELECT host, label FROM baseline_facts ORDER BY position").fetchall()
    assert rows == [("dev-laptop", "dev"), ("prod-vm", "prod")]
    key = key_file.read_text().strip()
    for place in scanned_files(result.report_dir, result.private_dir, saved.private_dir):
        if place != key_file:
            assert key.encode() not in place.read_bytes(), place
    assert key not in result.stdout and key not in saved.stdout


def test_no_canary_nor_the_baseline_key_in_any_output_of_a_baseline_run(audit, tmp_path):
    canaries = json.loads((LAB_STATE / "canaries.json").read_text())
    first = audit(extravars={"drift_baseline_save": "leak-check", "drift_keep_run_dir": True}, verbosity=4)
    assert first.rc == 0, first.stdout
    saved_stdout = first.stdout
    second = audit(
        extravars={"drift_baseline_columns": ["prod@leak-check", "dev@leak-check"], "drift_keep_run_dir": True},
        verbosity=4,
    )
    assert second.rc == 0, second.stdout
    assert [c["label"] for c in second.report["baseline_columns"]] == ["prod@leak-check", "dev@leak-check"]
    assert not [e for e in second.report["errors"] if "baseline" in e["message"]]
    key_file = second.report_dir / "history.sqlite.key"
    key = key_file.read_text().strip()
    places = {"stdout (save)": saved_stdout, "stdout (compare)": second.stdout}
    for path in scanned_files(second.report_dir, second.private_dir):
        if path == key_file:
            continue
        if path.name == "command" and path.parent.parent.name == "artifacts":
            continue  # ansible-runner's record of the environment it was given (test_leaks says why)
        places[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    store = str(second.report_dir / "history.sqlite")
    assert store in places
    assert scan(places, [str(value) for value in canaries.values()] + [key]) == {}
    # nor on the hosts: the key travels on the pipelined module's stdin only (Ansible's temporary
    # directories of root, dev's user, and of deploy, prod's)
    for path in scanned_files(*TEMP_ROOTS):
        try:
            assert key.encode() not in path.read_bytes(), path
        except FileNotFoundError:
            continue  # another run's temporary file, gone since it was listed
    # control: the store holds the baselines' facts, the canaries' key names among them
    assert "SESSION_SECRET" in places[store] and "baseline_facts" in places[store]
    assert "ESTABLISH SSH CONNECTION" in second.stdout
