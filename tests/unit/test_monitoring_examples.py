"""The example alert rules (examples/monitoring/): Prometheus' promtool checks them and runs their
unit tests, and every metric and label they query is one the metrics module writes."""

import pathlib
import re
import shutil
import subprocess

import yaml

from ansible_collections.envparity.audit.plugins.plugin_utils.metrics import METRICS

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "monitoring" / "envparity.rules.yml"
RULE_TESTS = ROOT / "examples" / "monitoring" / "envparity.rules.test.yml"
# Debian's prometheus package (scripts/setup.sh installs it).
PROMTOOL = shutil.which("promtool") or "promtool"
# Labels Prometheus adds when it scrapes node_exporter.
SCRAPE_LABELS = {"instance", "job"}


def promtool(*args):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False, timeout=120)


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0 and "SUCCESS: 5 rules found" in checked.stdout, checked


def test_promtool_runs_the_rule_tests():
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested


def test_the_rules_query_only_what_the_audit_writes():
    names = {rule["alert"] for rule in rules()}
    assert names == {
        "EnvparityNewHighFindings",
        "EnvparityAuditNotSucceeding",
        "EnvparityAuditMissing",
        "EnvparityHostNotCollected",
        "EnvparityCertificateExpiring",
    }
    for rule in rules():
        queried = set(re.findall(r"\benvparity_[a-z_]+", rule["expr"]))
        assert queried and queried <= set(METRICS), rule["alert"]
        labels = set(re.findall(r"\b([a-z_]+)\s*(?:=~|!=|=)\s*\"", rule["expr"]))
        for by in re.findall(r"by \(([^)]*)\)", rule["expr"]):
            labels |= {label.strip() for label in by.split(",")}
        allowed = SCRAPE_LABELS.union(*(METRICS[name][1] for name in queried))
        assert labels <= allowed, (rule["alert"], labels - allowed)
        templated = set(re.findall(r"\$labels\.([a-z_]+)", str(rule["annotations"])))
        assert templated <= allowed, (rule["alert"], templated - allowed)
