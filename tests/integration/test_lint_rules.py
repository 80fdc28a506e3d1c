"""playbooks/lint_rules.yml through ansible-playbook: problems with file and line, the exit code,
and the lab's own rules (clean but for the rule the lab keeps stale)."""

import json
import os
import subprocess
import sys

from .conftest import ROOT

PLAYBOOK = ROOT / "playbooks" / "lint_rules.yml"


def lint(tmp_path, *extra):
    environment = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    environment["PATH"] = os.path.dirname(sys.executable) + os.pathsep + environment.get("PATH", "")
    return subprocess.run(
        ["ansible-playbook", str(PLAYBOOK), "-e", "drift_report_dir=%s" % tmp_path, *extra],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=300,
    )


def test_a_bad_rules_file_fails_with_each_problem_and_its_line(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules:\n"
        "  - path: env/*\n    reason: all\n"
        "  - path: env/app/DEBUG\n    reason: never used\n"
        "  - path: env/app/X\n    reason: r\n    expires: 2020-01-01\n    owner: alice\n"
        "  - path: env/app/Y\n    reason: r\n    expires: 2030-01-01T10:00:00\n    owner: bob\n"
    )
    result = lint(tmp_path, "-e", json.dumps({"drift_rules_files": [str(rules)]}))
    assert result.returncode == 2, result.stdout
    assert "%s:4: shadowed: never matches: rule 1 (line 2, env/*) always matches first" % rules in result.stdout
    assert "%s:6: expired: waiver expired on 2020-01-02T00:00:00Z (owner alice)" % rules in result.stdout
    assert "%s:10: malformed: expires 2030-01-01T10:00:00 has no time zone" % rules in result.stdout


def test_the_lab_rules_pass_and_the_last_reports_stale_rule_is_named(tmp_path):
    rules = ROOT / "inventory" / "lab" / "drift_rules.yml"
    (tmp_path / "latest.json").write_text(
        json.dumps({"stale_rules": [{"path": "env/app/LEGACY_*", "reason": "r", "source": "%s rule 3" % rules}]})
    )
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout
    said = " ".join((result.stdout + result.stderr).split())  # warnings go to stderr
    assert "%s:10: stale: matched nothing in the last audit: env/app/LEGACY_*" % rules in said
