"""JUnit XML and the Prometheus textfile end to end: compare.yml through ansible-runner against the
lab, read back by junitparser (and the JUnit schema) and by prometheus_client's parser, counted
against the report's own JSON; a metrics file that cannot be written costs neither the report nor
the exit code; no lab canary in either file."""

import json

import junitparser
import xmlschema
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import at_or_above

from .conftest import LAB_STATE, ROOT

JUNIT_SCHEMA = xmlschema.XMLSchema(str(ROOT / "tests" / "unit" / "fixtures" / "junit" / "junit.xsd"))


def families(path):
    return {
        family.name: {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}
        for family in text_string_to_metric_families(path.read_text())
    }


def test_the_lab_audit_writes_junit_and_metrics(audit, tmp_path):
    metrics_file = tmp_path / "textfile" / "envparity.prom"
    metrics_file.parent.mkdir()
    result = audit(extravars={"drift_fail_on": "high", "drift_metrics_file": str(metrics_file)})
    report = result.report
    assert result.rc == (2 if report["gate"]["tripped"] else 0), result.stdout

    latest = result.report_dir / "latest.junit.xml"
    text = latest.read_bytes()
    JUNIT_SCHEMA.validate(text)
    xml = junitparser.JUnitXml.fromstring(text)
    run_dir = (result.report_dir / "latest").resolve()
    assert (run_dir / "report.junit.xml").read_bytes() == text
    cases = {case.name.split(" ")[0]: case for suite in xml for case in suite if suite.name != "envparity.audit"}
    findings = report["findings"]
    assert sorted(cases) == sorted(f["id"] for f in findings)
    gating = [
        f for f in findings if f["kind"] != "unknown" and not f["expected"] and at_or_above(f["severity"], "high")
    ]
    assert xml.failures == len(gating) > 0  # the lab plants high drift
    assert xml.skipped == sum(1 for f in findings if f["expected"] and f["kind"] != "unknown")
    assert xml.errors == sum(1 for f in findings if f["kind"] == "unknown") + len(report["errors"])
    for finding in gating:
        assert isinstance(cases[finding["id"]].result[0], junitparser.Failure)

    metrics = families(metrics_file)
    assert sum(metrics["envparity_findings"].values()) == len(findings)
    unexpected_high = sum(
        value
        for labels, value in metrics["envparity_findings"].items()
        if ("expected", "false") in labels and ("severity", "high") in labels
    )
    assert unexpected_high == report["summary"]["by_severity"]["high"]
    assert metrics["envparity_gate_tripped"][()] == int(report["gate"]["tripped"])
    hosts = {column["host"] for column in report["columns"]}
    collected = metrics["envparity_collection_ok"]
    assert {dict(labels)["host"] for labels in collected} == hosts
    assert {dict(labels)["area"] for labels in collected} == set(report["areas"])
    assert 0 < metrics["envparity_run_duration_seconds"][()] < 600
    if not report["errors"] and report["summary"]["unknown"] == 0:
        assert (
            metrics["envparity_last_success_timestamp_seconds"][()]
            == (metrics["envparity_last_run_timestamp_seconds"][()])
        )
    assert sorted(p.name for p in metrics_file.parent.iterdir()) == ["envparity.prom"]

    canaries = json.loads((LAB_STATE / "canaries.json").read_text())
    written = text.decode("utf-8") + metrics_file.read_text()
    for name, value in canaries.items():
        assert str(value) not in written, name


def test_a_metrics_file_that_cannot_be_written_costs_nothing_else(audit, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the textfile directory should be")
    plain = audit("--tags env")
    result = audit("--tags env", extravars={"drift_metrics_file": str(blocker / "envparity.prom")})
    assert result.rc == plain.rc, result.stdout
    assert "metrics: cannot write the metrics file %s/envparity.prom: Not a directory" % blocker in result.stdout
    assert "envparity: METRICS: cannot write the metrics file" in result.stdout  # the closing summary too
    assert (result.report_dir / "latest.junit.xml").exists() and result.report["findings"]


def test_a_metrics_file_not_ending_in_prom_is_refused_before_any_host(audit, tmp_path):
    result = audit("--tags env", extravars={"drift_metrics_file": str(tmp_path / "envparity.txt")})
    assert result.rc != 0
    assert "drift_metrics_file must end in .prom" in result.stdout
    assert not (result.report_dir / "latest.json").exists()


def test_junit_can_be_turned_off(audit):
    result = audit("--tags env", extravars={"drift_report_junit": False})
    assert result.report["findings"] and not (result.report_dir / "latest.junit.xml").exists()
