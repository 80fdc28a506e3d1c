"""The env area end to end: compare.yml through ansible-runner against the real lab."""

import json
import pathlib

import jsonschema
import pytest

from .conftest import ROOT, tree_state

SCHEMA = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
LAB_DIRS = (
    "/var/lib/envparity-lab/dev/personal_assistant",
    "/home/deploy/ai_assistant",
    "/home/deploy/ai_assistant_static",
)
CLOSED_PORT = 2999  # nothing listens there: 127.0.0.1 only, never an outside address


def identities(findings, area=None):
    """(area, subject, key, kind, check, expected) of every check that found something: a finding
    merged from several checks (one finding per fact) counts once per check, as the lab plants them."""
    found = []
    for finding in findings:
        if area is not None and finding["area"] != area:
            continue
        head = (finding["area"], finding["subject"], finding["key"])
        found.append(head + (finding["kind"], finding["check"], finding["expected"]))
        found += [head + (other["kind"], other["check"], finding["expected"]) for other in finding.get("also", [])]
    return sorted(found)


def planted(manifest, area="env", audited=None):
    """The area's planted items; with `audited` (the areas a run audits), only those whose other
    areas (with_areas: e.g. the git area's HEAD for endpoints.commit_not_checkout) ran too."""
    return sorted(
        (p["area"], p["subject"], p["key"], p["kind"], p["check"], p["expected"])
        for p in manifest["planted"]
        if p["area"] == area and (audited is None or set(p.get("with_areas", ())) <= set(audited))
    )


def test_recall_and_precision_against_the_manifest(audit, lab):
    result = audit()
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    found = identities(report["findings"], "env")
    expected = planted(lab["manifest"])
    missed = sorted(set(expected) - set(found))
    unplanted = sorted(set(found) - set(expected))
    assert not missed, "planted but not found: %s" % missed
    assert not unplanted, "found but never planted: %s" % unplanted
    assert found == expected
    assert sorted(r["path"] for r in report["stale_rules"]) == sorted(lab["manifest"]["stale_rules"])
    assert [c["status"] for c in report["columns"]] == ["ok", "ok"]
    for finding in report["findings"]:
        if finding["expected"]:
            assert finding["reason"]


def test_report_markdown_sections_and_terminal_summary(audit):
    result = audit()
    markdown = result.markdown
    for heading in (
        "## Environments",
        "## Summary",
        "## Action plan",
        "## Area: env",
        "### app",
        "### Expected differences (env)",
        "## Stale rules",
        "## Collection errors",
    ):
        assert heading in markdown
    assert "| key | kind | check | severity | dev | prod |" in markdown
    assert "envparity: report " in result.stdout
    assert "unexpected finding(s)" in result.stdout


def test_same_state_gives_the_same_report_body(audit):
    from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import report_body

    # Without the history store: with it, the second report says what persisted since the first.
    # Without the areas that measure (response times, loads, memory in use): their figures are
    # another sample each run; every other area must read the same state as the same report.
    skip = "--skip-tags endpoints,health"
    first = audit(cmdline=skip, extravars={"drift_history": False}).markdown
    second = audit(cmdline=skip, extravars={"drift_history": False}).markdown
    assert report_body(first) == report_body(second)
    assert first.count("Generated: ") == 1


def test_tags_env_audits_only_env(audit, lab):
    result = audit(cmdline="--tags env")
    assert result.rc == 0, result.stdout
    assert result.report["areas"] == ["env"]
    assert identities(result.report["findings"]) == planted(lab["manifest"])


def test_check_mode_gives_the_same_findings(audit):
    # Without the history store (the second run would be "persisting" where the first was "new"),
    # and without first_seen (each run's own date when nothing came before). A measured finding's
    # figures (response times, loads) are another sample each run: its identity must match.
    def findings(result):
        varying = {"first_seen"}
        return [
            {k: v for k, v in f.items() if k not in (varying | {"values", "message"} if f.get("measured") else varying)}
            for f in result.report["findings"]
        ]

    normal = findings(audit(extravars={"drift_history": False}))
    checked = findings(audit(cmdline="--check", extravars={"drift_history": False}))
    assert checked == normal


# What prod's inventory configures, per area (every subject is "could not collect" when prod is).
PROD_SUBJECTS = [
    ("deps", "containers app"),
    ("deps", "containers py"),
    ("deps", "containers pyapp"),
    ("deps", "containers pyarch"),
    ("deps", "node web"),
    ("deps", "python app"),
    ("docker", "app"),
    ("docker", "py"),
    ("docker", "pyapp"),
    ("docker", "pyarch"),
    ("endpoints", "api-health"),
    ("endpoints", "api-search"),
    ("endpoints", "prometheus-metrics"),
    ("endpoints", "site-http"),
    ("endpoints", "tls-chain"),
    ("env", "app"),
    ("git", "app"),
    ("git", "site"),
    ("health", "host"),
    ("health", "log:app"),
    ("health", "stack:ops"),
    ("postgres", "analytics"),
    ("postgres", "app"),
]


def test_unreachable_prod_is_could_not_collect_and_exit_4(audit):
    result = audit(extravars={"ansible_port": CLOSED_PORT})
    assert result.rc == 4, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    prod = next(c for c in report["columns"] if c["label"] == "prod")
    assert prod["status"] == "unreachable"
    assert str(CLOSED_PORT) in prod["reason"]
    unknown = [f for f in report["findings"] if f["check"] == "collect.failed"]
    assert [(f["area"], f["subject"], f["key"], f["environments"]) for f in unknown] == [
        (area, subject, "*", ["prod"]) for area, subject in PROD_SUBJECTS
    ]
    assert unknown[0]["values"]["prod"]["unknown"].startswith("unreachable")
    # dev was compared with nothing: every area says so, critical (any gate but never fails)
    alone = [f for f in report["findings"] if f["check"] == "audit.not_compared"]
    assert [(f["area"], f["severity"]) for f in alone] == [
        (a, "critical") for a in ("deps", "docker", "endpoints", "env", "git", "health", "postgres")
    ]
    # nothing is claimed about prod: no key comparison ran against a column that was not collected
    assert all(f["kind"] == "unknown" or "prod" not in f["environments"] for f in report["findings"])
    assert "⚠ could not collect" in result.markdown
    assert "could not be collected" in result.stdout


@pytest.mark.parametrize(("fail_on", "rc"), [("high", 2), ("critical", 0), ("never", 0)])
def test_gate_exit_codes(audit, fail_on, rc):
    result = audit(extravars={"drift_fail_on": fail_on})
    assert result.rc == rc, result.stdout
    assert result.report["gate"]["tripped"] is (rc == 2)
    if rc == 2:
        assert "at or above high" in result.stdout


def test_audit_changes_nothing_on_the_hosts(audit):
    before = tree_state(*LAB_DIRS)
    result = audit()
    assert result.rc == 0
    assert tree_state(*LAB_DIRS) == before
    changed = [(host, task) for host, task, is_changed in result.task_results() if is_changed]
    assert changed == []
    assert len(result.task_results()) >= 4


@pytest.fixture
def bad_inputs(tmp_path_factory):
    """Hostile env files, readable by root (dev) and, where meant to be, by deploy (prod)."""
    base = pathlib.Path("/tmp") / ("envparity-bad-" + tmp_path_factory.getbasetemp().name)
    base.mkdir(mode=0o755, exist_ok=True)
    base.chmod(0o755)
    (base / "good.env").write_text("A=1\n")
    (base / "binary.env").write_bytes(b"A=1\n\x00\x01\x02")
    (base / "latin1.env").write_bytes("A=caf\xe9\n".encode("latin-1"))
    (base / "huge.env").write_text("A=" + "x" * 4096 + "\n")
    unreadable = base / "unreadable.env"
    unreadable.write_text("A=1\n")
    unreadable.chmod(0o600)  # root reads it (dev); deploy cannot (prod)
    fifo = base / "fifo.env"
    if not fifo.exists():
        import os

        os.mkfifo(fifo)
    for path in base.iterdir():
        if path.name != "unreadable.env":
            path.chmod(0o644)
    return base


def test_bad_inputs_give_a_status_each_and_the_rest_of_the_report(audit, bad_inputs):
    names = ["good", "binary", "latin1", "huge", "unreadable", "fifo", "absent"]
    files = [{"name": name, "path": str(bad_inputs / (name + ".env"))} for name in names]
    result = audit(extravars={"drift_env_files": files, "drift_env_max_file_bytes": 1024}, cmdline="--tags env")
    assert result.rc == 0, result.stdout
    status = {f["subject"]: f["values"] for f in result.report["findings"] if f["check"] == "env.file_status"}
    assert status == {
        "binary": {"dev": "not UTF-8 text", "prod": "not UTF-8 text"},
        "latin1": {"dev": "not UTF-8 text", "prod": "not UTF-8 text"},
        "huge": {"dev": "file too large", "prod": "file too large"},
        "unreadable": {"dev": "ok", "prod": "file unreadable"},
        "fifo": {"dev": "not a regular file", "prod": "not a regular file"},
        "absent": {"dev": "file missing", "prod": "file missing"},
    }
    assert "good" not in status
    assert "Traceback" not in result.stdout


def test_every_host_unreachable_still_writes_a_report(audit):
    result = audit(cmdline="--limit prod-vm", extravars={"ansible_port": CLOSED_PORT})
    assert result.rc == 4, result.stdout
    assert "the report was written by the callback" in result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert [(c["label"], c["status"]) for c in report["columns"]] == [("prod", "unreachable")]
    assert sorted((f["area"], f["subject"], f["kind"], f["check"]) for f in report["findings"]) == sorted(
        [(area, subject, "unknown", "collect.failed") for area, subject in PROD_SUBJECTS]
        + [
            (area, "*", "unknown", "audit.not_compared")
            for area in ("deps", "docker", "endpoints", "env", "git", "health", "postgres")
        ]
    )


@pytest.mark.parametrize(
    ("extravars", "message"),
    [
        (
            {"drift_environments": ["dev", "staging"]},
            "drift_environments names staging, which is not an inventory group",
        ),
        ({"drift_fail_on": "sometimes"}, "drift_fail_on"),
        ({"drift_areas": ["env", "dns"]}, "drift_areas names dns"),
    ],
)
def test_bad_settings_are_rejected_with_a_clear_message(audit, extravars, message):
    result = audit(extravars=extravars)
    assert result.rc == 2, result.stdout
    assert message in result.stdout
    assert "Traceback" not in result.stdout
    assert not (result.report_dir / "latest.json").exists()


@pytest.mark.parametrize(
    ("extravars", "message"),
    [
        ({"drift_env_files": [{"name": "app"}]}, "missing required arguments: path found in drift_env_files"),
        ({"drift_env_files": "config/app.env"}, "drift_env_files"),
    ],
)
def test_a_host_whose_variables_do_not_validate_is_could_not_collect(audit, extravars, message):
    """Host variables: the collect task fails on those hosts with the message; the report is still
    written, every host shown as failed with the reason and every area as could not collect."""
    result = audit(extravars=extravars, cmdline="--tags env")
    assert result.rc == 2, result.stdout
    assert message in result.stdout
    assert "Traceback" not in result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert [(c["label"], c["status"]) for c in report["columns"]] == [("dev", "failed"), ("prod", "failed")]
    assert all(message in c["reason"] for c in report["columns"])
    assert {f["check"] for f in report["findings"]} == {"audit.not_compared"}


def test_hosts_of_one_environment_are_compared_too(audit, tmp_path):
    """Two prod hosts (both the lab's sshd): one reads a copy of prod's env file with LOG_LEVEL changed."""
    copy_dir = pathlib.Path("/tmp") / ("envparity-web2-" + tmp_path.name)
    copy_dir.mkdir(mode=0o755, exist_ok=True)
    copy_dir.chmod(0o755)
    original = pathlib.Path("/home/deploy/ai_assistant/config/production.env").read_text()
    copy = copy_dir / "production.env"
    copy.write_text(original.replace("LOG_LEVEL=INFO", "LOG_LEVEL=WARNING"))
    copy.chmod(0o644)
    lab_hosts = (ROOT / "inventory" / "lab" / "hosts.yml").read_text()
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(
        lab_hosts.replace("        prod-vm:\n", "        web1:\n", 1).replace(
            "    prod:\n      hosts:\n",
            "    prod:\n      hosts:\n        web2:\n"
            "          ansible_host: 127.0.0.1\n"
            "          ansible_port: 2222\n"
            "          ansible_user: deploy\n"
            "          ansible_python_interpreter: /usr/bin/python3\n"
            "          ansible_ssh_private_key_file: /var/lib/envparity-lab/ssh/id_ed25519\n"
            "          ansible_ssh_common_args: >-\n"
            "            -o UserKnownHostsFile=/var/lib/envparity-lab/ssh/known_hosts -o StrictHostKeyChecking=yes\n"
            "          drift_env_files:\n"
            "            - {name: app, path: %s, template: docker/env.prod.example}\n" % copy,
            1,
        )
    )
    (inventory / "group_vars").symlink_to(ROOT / "inventory" / "lab" / "group_vars")
    (inventory / "drift_rules.yml").symlink_to(ROOT / "inventory" / "lab" / "drift_rules.yml")
    result = audit(cmdline="-i %s" % inventory)
    assert result.rc == 0, result.stdout
    report = result.report
    assert [c["label"] for c in report["columns"]] == ["dev", "prod/web2", "prod/web1"]
    log_level = next(f for f in report["findings"] if f["key"] == "LOG_LEVEL")
    assert log_level["values"] == {"dev": "DEBUG", "prod/web2": "WARNING", "prod/web1": "INFO"}
    assert log_level["environments"] == ["prod/web2", "prod/web1"]
    # The Markdown shows one column per environment: prod's two hosts disagree, each is named.
    assert "| key | kind | check | severity | dev | prod |" in result.markdown
    assert "| `DEBUG` | web2: `WARNING` · web1: `INFO` |" in result.markdown
