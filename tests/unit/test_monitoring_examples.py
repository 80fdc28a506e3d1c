"""The example alert rules and Grafana dashboard (examples/monitoring/): Prometheus' promtool checks
the rules, runs their unit tests and parses every dashboard query, and every metric and label they
query is one the metrics module writes, or the schedule role (the audit's interval)."""

import json
import pathlib
import re
import shutil
import subprocess

import jinja2
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.envparity.audit.plugins.plugin_utils.metrics import METRICS

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "monitoring" / "envparity.rules.yml"
DASHBOARD = ROOT / "examples" / "monitoring" / "envparity-dashboard.json"
RULE_TESTS = ROOT / "examples" / "monitoring" / "envparity.rules.test.yml"
# Debian's prometheus package (scripts/setup.sh installs it).
PROMTOOL = shutil.which("promtool") or "promtool"
SCHEDULE_METRICS = ROOT / "roles" / "schedule" / "templates" / "envparity-schedule.prom.j2"
# Labels Prometheus adds when it scrapes node_exporter.
SCRAPE_LABELS = {"instance", "job"}


def promtool(*args):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False, timeout=120)


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0 and "SUCCESS: 7 rules found" in checked.stdout, checked


def test_promtool_runs_the_rule_tests():
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested


def schedule_text(interval):
    """The schedule role's metrics file, rendered as Ansible renders the template."""
    return jinja2.Template(SCHEDULE_METRICS.read_text(), keep_trailing_newline=True).render(
        drift_schedule_interval=interval
    )


def written_metrics():
    """{name: labels} of every metric the audit or the schedule role writes."""
    names = {name: labels for name, (_, labels) in METRICS.items()}
    names.update({family.name: () for family in text_string_to_metric_families(schedule_text(86400))})
    return names


def test_the_schedule_role_writes_the_interval_as_a_metric(tmp_path):
    text = schedule_text(3600)
    families = list(text_string_to_metric_families(text))
    assert [(f.name, f.type, [s.value for s in f.samples]) for f in families] == [
        ("envparity_audit_interval_seconds", "gauge", [3600.0])
    ]
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked


def unknown_names(expr, templated=()):
    """What an expression queries that the audit does not write: metric names, then labels (in
    matchers, `by (...)` and the templates' $labels / {{label}})."""
    queried = set(re.findall(r"\benvparity_[a-z_]+", expr))
    if not queried:
        return {"no envparity metric"}
    labels = set(re.findall(r"\b([a-z_]+)\s*(?:=~|!=|=)\s*\"", expr))
    for by in re.findall(r"by \(([^)]*)\)", expr):
        labels |= {label.strip() for label in by.split(",")}
    written = written_metrics()
    allowed = SCRAPE_LABELS.union(*(written[name] for name in queried if name in written))
    return (queried - set(written)) | ((labels | set(templated)) - allowed)


def test_the_rules_query_only_what_the_audit_writes():
    names = {rule["alert"] for rule in rules()}
    assert names == {
        "EnvparityNewHighFindings",
        "EnvparityAuditNotSucceeding",
        "EnvparityAuditMissing",
        "EnvparityHostNotCollected",
        "EnvparityCertificateExpiring",
        "EnvparityCertificateInvalid",
        "EnvparityAuditIntervalUnknown",
    }
    for rule in rules():
        templated = re.findall(r"\$labels\.([a-z_]+)", str(rule["annotations"]))
        assert unknown_names(rule["expr"], templated) == set(), rule["alert"]
    assert unknown_names('envparity_findings{host="x"}') == {"host"}  # the check can fail
    assert unknown_names("envparity_finding") == {"envparity_finding"}


def certificate_policies():
    """The certificate checks of docs/findings.md that are production policies (not drift between
    environments): every check name of a `| endpoints.<cert|intermediate|chain|ocsp>_… | policy |` row."""
    found = set()
    for line in (ROOT / "docs" / "findings.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3 and cells[2] == "policy":
            found |= set(re.findall(r"endpoints\.(?:cert|intermediate|chain|ocsp)_[a-z_]+", cells[1]))
    return found


def test_every_certificate_policy_has_an_alert():
    matchers = {
        rule["alert"]: re.search(r'check=~"([^"]+)"', rule["expr"]).group(1).replace("\\\\", "\\")
        for rule in rules()
        if rule["alert"].startswith("EnvparityCertificate")
    }
    policies = certificate_policies()
    assert {"endpoints.intermediate_expiring", "endpoints.cert_untrusted"} <= policies  # the parse found them
    alerted = {check: [name for name, regex in matchers.items() if re.fullmatch(regex, check)] for check in policies}
    assert {check: names for check, names in alerted.items() if len(names) != 1} == {}
    assert not any(re.fullmatch(regex, "endpoints.cert_issuer_changed") for regex in matchers.values())


def dashboard_targets():
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel, target) for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_queries_only_what_the_audit_writes():
    targets = dashboard_targets()
    assert len({panel["id"] for panel, _ in targets}) == 10
    for panel, target in targets:
        templated = re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", target.get("legendFormat", ""))
        assert unknown_names(target["expr"], templated) == set(), panel["title"]


def test_promtool_parses_every_dashboard_query(tmp_path):
    """Each query as a recording rule (the dashboard's $instance variable as a regular expression)."""
    records = [
        {"record": "envparity:dashboard_%d_%s" % (panel["id"], target["refId"]), "expr": target["expr"]}
        for panel, target in dashboard_targets()
    ]
    path = tmp_path / "dashboard.rules.yml"
    text = yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]})
    path.write_text(text.replace("$instance", ".*"))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0 and "SUCCESS: %d rules found" % len(records) in checked.stdout, checked
