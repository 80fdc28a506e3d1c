"""The scheduled audit (playbooks/schedule.yml), installed for real on this machine as a runner,
into a temporary root: every path the role writes (project, virtualenv, state, log, textfile
directory, systemd, cron and logrotate directories) is under tmp, and the timer is not activated
(systemd does not run this machine). Then the files are checked by the tools that read them:
`systemd-analyze verify` (the units), `crontab -n` (the cron entry), `logrotate -d` (debug: no
change) and a forced rotation with its own state file; the installation is idempotent (second
run: changed=0); and the scheduled command runs once against the lab, writing the report, the log
and the metrics file, and changing nothing on the audited hosts.

The project shipped is the commit checked out (git archive HEAD), as on a real controller."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .conftest import ROOT, tree_state
from .test_env_audit import LAB_DIRS

PLAYBOOK = ROOT / "playbooks" / "schedule.yml"
TOOLS = os.path.dirname(sys.executable)


def install(root, **overrides):
    """Run playbooks/schedule.yml on this machine (connection local) into `root`."""
    inventory = root / "runner.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "envparity_runner": {
                    "hosts": {
                        "runner": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
                    }
                }
            }
        )
    )
    variables = {
        "drift_schedule_become": False,  # the test runs as root already
        "drift_schedule_user": "root",
        "drift_schedule_group": "root",
        "drift_schedule_create_user": False,
        "drift_schedule_home": str(root / "opt"),
        "drift_schedule_state_dir": str(root / "state"),
        "drift_schedule_log_dir": str(root / "log"),
        "drift_schedule_textfile_dir": str(root / "textfile"),
        "drift_schedule_systemd_dir": str(root / "systemd"),
        "drift_schedule_cron_dir": str(root / "cron.d"),
        "drift_schedule_logrotate_dir": str(root / "logrotate.d"),
        "drift_schedule_scheduler": "systemd",
        "drift_schedule_activate": False,
        "drift_schedule_inventory": "inventory/lab",
        # the areas that do not measure (response times, loads): quicker, and the same each run
        "drift_schedule_extra_vars": {"drift_areas": ["env", "git", "docker", "postgres", "deps"]},
    }
    variables.update(overrides)
    (root / "systemd").mkdir(exist_ok=True)
    (root / "cron.d").mkdir(exist_ok=True)
    (root / "logrotate.d").mkdir(exist_ok=True)
    result = subprocess.run(
        [os.path.join(TOOLS, "ansible-playbook"), str(PLAYBOOK), "-i", str(inventory), "-e", json.dumps(variables)],
        cwd=ROOT,
        env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def changed(output):
    return int(re.search(r"runner\s+: ok=\d+\s+changed=(\d+)", output).group(1))


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    root = tmp_path_factory.mktemp("runner")
    first = install(root)
    second = install(root)
    yield {"root": root, "first": first, "second": second}
    shutil.rmtree(root, ignore_errors=True)


def test_the_installation_is_idempotent(runner):
    assert changed(runner["first"]) > 0
    assert changed(runner["second"]) == 0, runner["second"]
    release = os.readlink(runner["root"] / "opt" / "current")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert release == "releases/" + head.stdout.strip()
    assert (runner["root"] / "opt" / "venv" / "bin" / "ansible-playbook").exists()


def test_systemd_accepts_the_units(runner):
    units = runner["root"] / "systemd"
    assert sorted(p.name for p in units.iterdir()) == ["envparity-audit.service", "envparity-audit.timer"]
    result = subprocess.run(
        ["systemd-analyze", "verify", str(units / "envparity-audit.service"), str(units / "envparity-audit.timer")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    service = (units / "envparity-audit.service").read_text()
    assert "ExecStart=%s/opt/bin/envparity-audit" % runner["root"] in service
    assert "SuccessExitStatus=2 4" in service
    calendar = subprocess.run(
        ["systemd-analyze", "calendar", "*-*-* 05:17:00"], capture_output=True, text=True, check=False
    )
    assert calendar.returncode == 0 and "OnCalendar=*-*-* 05:17:00" in (units / "envparity-audit.timer").read_text()
    assert not (runner["root"] / "cron.d" / "envparity-audit").exists()  # the timer schedules it


def test_a_broken_unit_is_refused_by_the_same_check(runner, tmp_path):
    """Control: systemd-analyze verify does fail on a unit it cannot run."""
    broken = tmp_path / "envparity-audit.service"
    text = (runner["root"] / "systemd" / "envparity-audit.service").read_text()
    broken.write_text(text.replace("ExecStart=%s" % runner["root"], "ExecStart=%s/missing" % runner["root"]))
    result = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "is not executable" in result.stdout + result.stderr


def test_cron_where_no_systemd(runner, tmp_path):
    output = install(runner["root"], drift_schedule_scheduler="auto")  # this machine: no systemd running
    assert changed(output) == 1  # the cron file; nothing else moved
    line = (runner["root"] / "cron.d" / "envparity-audit").read_text().splitlines()[-1]
    minute, hour, day, month, weekday, user, command = line.split(None, 6)
    assert (minute, hour, day, month, weekday) == ("17", "5", "*", "*", "*")
    assert user == "root" and command == "%s/opt/bin/envparity-audit" % runner["root"]
    # crontab -n checks a user crontab, which has no user field: the same entry without it
    entry = tmp_path / "crontab"
    entry.write_text("SHELL=/bin/sh\n%s %s %s %s %s %s\n" % (minute, hour, day, month, weekday, command))
    check = subprocess.run(["crontab", "-n", str(entry)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    entry.write_text("61 5 * * * %s\n" % command)  # control: an impossible minute
    assert subprocess.run(["crontab", "-n", str(entry)], capture_output=True, check=False).returncode != 0
    install(runner["root"])  # back to the timer: the cron file goes
    assert not (runner["root"] / "cron.d" / "envparity-audit").exists()


def test_logrotate_reads_the_configuration_and_rotates_the_log(runner, tmp_path):
    config = runner["root"] / "logrotate.d" / "envparity"
    log = runner["root"] / "log" / "audit.log"
    log.write_text("envparity: an earlier audit\n")
    debug = subprocess.run(["logrotate", "-d", str(config)], capture_output=True, text=True, check=False)
    assert debug.returncode == 0, debug.stdout + debug.stderr
    assert "rotating pattern: %s/log/*.log  weekly" % runner["root"] in debug.stdout + debug.stderr
    assert "error" not in (debug.stdout + debug.stderr).lower()
    assert log.read_text() == "envparity: an earlier audit\n"  # debug mode changed nothing
    state = tmp_path / "logrotate.state"
    subprocess.run(["logrotate", "-f", "-s", str(state), str(config)], check=True)
    assert log.exists() and log.read_text() == ""  # recreated (create 0640)
    assert (runner["root"] / "log" / "audit.log.1").read_text() == "envparity: an earlier audit\n"
    log.unlink()
    (runner["root"] / "log" / "audit.log.1").unlink()


def test_the_scheduled_command_audits_the_lab_once(runner, lab):
    root = runner["root"]
    before = tree_state(*LAB_DIRS)
    old = root / "state" / "reports" / "20200101T000000.000000Z-old"
    old.mkdir(parents=True)
    os.utime(old, (0, 0))
    result = subprocess.run(
        [str(root / "opt" / "bin" / "envparity-audit")], capture_output=True, text=True, check=False
    )
    log = (root / "log" / "audit.log").read_text()
    assert result.returncode == 0, log
    assert result.stdout == result.stderr == ""  # everything went to the log
    assert "scheduled audit starting" in log and "scheduled audit ended with exit code 0" in log
    assert tree_state(*LAB_DIRS) == before  # read-only on the audited hosts
    assert not old.exists()  # a report directory older than drift_schedule_report_days went
    report = json.loads((root / "state" / "reports" / "latest.json").read_text())
    assert report["findings"] and {c["host"] for c in report["columns"]} == {"dev-laptop", "prod-vm"}
    assert (root / "state" / "reports" / "history.sqlite").exists()
    metrics = (root / "textfile" / "envparity.prom").read_text()
    families = {family.name: family for family in text_string_to_metric_families(metrics)}
    unexpected = sum(
        sample.value for sample in families["envparity_findings"].samples if sample.labels["expected"] == "false"
    )
    assert unexpected == sum(1 for f in report["findings"] if not f["expected"])
    assert families["envparity_last_success_timestamp_seconds"].samples[0].value > 0
    # the schedule's interval for the alert rules (drift_schedule_interval), and no temporary left
    assert sorted(os.listdir(root / "textfile")) == ["envparity-schedule.prom", "envparity.prom"]
    schedule = (root / "textfile" / "envparity-schedule.prom").read_text()
    samples = [s for family in text_string_to_metric_families(schedule) for s in family.samples]
    assert [(s.name, s.value) for s in samples] == [("envparity_audit_interval_seconds", 86400.0)]
