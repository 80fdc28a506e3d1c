"""The Prometheus textfile: read back by prometheus_client's own text parser, names and labels by
the conventions, written atomically, the last success kept across failed audits."""

import os
import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.envparity.audit.plugins.plugin_utils import metrics
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import with_ids
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document
from ansible_collections.envparity.audit.plugins.plugin_utils.timeline import parse_stamp
from tests.unit.plugins.plugin_utils.test_report_model import sample_audit

# Debian's prometheus package (scripts/setup.sh installs it).
PROMTOOL = shutil.which("promtool") or "promtool"
GENERATED = "2026-12-07T05:00:00Z"
NOW = parse_stamp(GENERATED)


def document_of(audit):
    with_ids(audit["findings"])
    for finding in audit["findings"]:
        finding["state"], finding["first_seen"] = "new", GENERATED
    audit["findings"][0]["state"], audit["findings"][0]["first_seen"] = "persisting", "2026-11-14T05:00:00Z"
    return build_document(audit, GENERATED, "inventory/lab")


def parse(text):
    return {
        family.name: {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}
        for family in text_string_to_metric_families(text)
    }


def test_the_text_parses_and_counts():
    text = metrics.exposition(metrics.samples(document_of(sample_audit()), NOW - 42.5, NOW))
    families = parse(text)
    assert set(families) == set(metrics.METRICS)
    findings = families["envparity_findings"]
    assert findings[(("area", "env"), ("expected", "false"), ("severity", "high"))] == 2
    assert findings[(("area", "env"), ("expected", "true"), ("severity", "low"))] == 1
    assert sum(findings.values()) == 4
    new = families["envparity_new_findings"]
    assert new[(("area", "env"), ("severity", "high"))] == 1 and new[(("area", "env"), ("severity", "low"))] == 1
    by_env = families["envparity_unexpected_findings_by_environment"]
    assert by_env[(("environment", "prod"), ("severity", "high"))] == 2
    assert by_env[(("environment", "dev"), ("severity", "high"))] == 0
    assert families["envparity_oldest_unexpected_finding_age_seconds"][()] == 23 * 86400
    by_check = families["envparity_unexpected_findings_by_check"]
    assert by_check == {
        (("area", "env"), ("check", "env.debug_enabled"), ("severity", "high")): 1,
        (("area", "env"), ("check", "env.value_changed"), ("severity", "low")): 1,
        (("area", "env"), ("check", "collect.failed"), ("severity", "high")): 1,
    }
    assert families["envparity_run_duration_seconds"][()] == 42.5
    assert families["envparity_gate_tripped"][()] == 1
    assert families["envparity_last_run_timestamp_seconds"][()] == NOW
    # a could-not-collect finding: the audit is not complete, no success without an earlier one
    assert families["envparity_last_success_timestamp_seconds"] == {}
    ok = families["envparity_collection_ok"]
    assert ok[(("area", "env"), ("environment", "prod"), ("host", "p"))] == 1


def test_promtool_check_metrics_finds_no_problem(tmp_path):
    """promtool's own linter of the text format and of the naming conventions."""
    text = metrics.exposition(metrics.samples(document_of(sample_audit()), NOW - 1, NOW))
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False, timeout=60
    )
    assert checked.returncode == 0 and checked.stdout == "" and checked.stderr == "", checked


def test_names_follow_the_conventions():
    for name, (help_text, labels) in metrics.METRICS.items():
        assert re.fullmatch(r"envparity_[a-z_]+", name) and not name.endswith("_total")
        assert help_text and all(re.fullmatch(r"[a-z_]+", label) for label in labels)
        if "time" in name or "age" in name or "duration" in name:
            assert name.endswith("_seconds")


def test_a_failed_host_and_the_last_success_kept(tmp_path):
    audit = sample_audit()
    audit["findings"] = [f for f in audit["findings"] if f["kind"] != "unknown"]
    complete = document_of(audit)
    path = str(tmp_path / "envparity.prom")
    metrics.write_metrics(path, metrics.exposition(metrics.samples(complete, NOW - 1, NOW)))
    assert metrics.previous_success(path) == NOW
    failed = document_of(sample_audit())
    failed["errors"] = [{"host": "p", "area": "env", "message": "unreachable"}]
    later = NOW + 3600
    series = metrics.samples(failed, later - 1, later, metrics.previous_success(path))
    metrics.write_metrics(path, metrics.exposition(series))
    with open(path, encoding="utf-8") as handle:
        families = parse(handle.read())
    assert families["envparity_last_success_timestamp_seconds"][()] == NOW
    assert families["envparity_last_run_timestamp_seconds"][()] == later
    assert families["envparity_collection_ok"][(("area", "env"), ("environment", "prod"), ("host", "p"))] == 0
    assert families["envparity_collection_ok"][(("area", "env"), ("environment", "dev"), ("host", "d"))] == 1
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path) == ["envparity.prom"]  # no temporary file left


def test_hostile_label_values_are_escaped():
    audit = sample_audit()
    hostile = 'web"1\\\n} evil 1'
    audit["columns"][1]["host"] = hostile
    audit["states"] = {"d": audit["states"]["d"], hostile: audit["states"]["p"]}
    families = parse(metrics.exposition(metrics.samples(document_of(audit), NOW, NOW)))
    assert families["envparity_collection_ok"][(("area", "env"), ("environment", "prod"), ("host", hostile))] == 1
    assert "evil" not in families


def test_an_unwritable_directory_is_a_clear_error(tmp_path):
    # A file where the directory should be: refused even to root (CI runs as root).
    (tmp_path / "textfile").write_text("not a directory")
    with pytest.raises(metrics.MetricsError, match="cannot write the metrics file .*: Not a directory"):
        metrics.write_metrics(str(tmp_path / "textfile" / "envparity.prom"), "x 1\n")


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(metrics.MetricsError, match="cannot write the metrics file .*: No such file or directory"):
        metrics.write_metrics(str(tmp_path / "nowhere" / "envparity.prom"), "x 1\n")


def test_only_prom_files():
    with pytest.raises(metrics.MetricsError, match="ending in .prom"):
        metrics.write_metrics("/tmp/envparity.txt", "x 1\n")
