"""The JUnit XML of a report: one test case per finding id, read back by junitparser (the parser CI
helpers use) and validated against the JUnit schema; hostile host-given text stays inert."""

import os
import pathlib
import xml.etree.ElementTree as ET

import junitparser
import xmlschema

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import make_finding, with_ids
from ansible_collections.envparity.audit.plugins.plugin_utils.junit import build_junit, outcome, xml_text
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import write_report
from ansible_collections.envparity.audit.plugins.plugin_utils.timeline import new_gate
from tests.unit.plugins.plugin_utils.test_report_model import sample_audit

SCHEMA = xmlschema.XMLSchema(str(pathlib.Path(__file__).parents[2] / "fixtures" / "junit" / "junit.xsd"))
HOSTILE = "a]]><b x='1'>&amp;\x00\x07\x1b[31m\ud800\ufffe\"\n</testcase>"


def document_of(audit, fail_on="high", fail_on_new="never"):
    with_ids(audit["findings"])
    gate = {"fail_on": fail_on, "tripped": False, "count": 0}
    audit["gate"] = new_gate(gate, audit["findings"], fail_on_new)
    return build_document(audit, "2026-12-07T05:00:00Z", "inventory/lab")


def parsed(text):
    SCHEMA.validate(text.encode("utf-8"))
    return junitparser.JUnitXml.fromstring(text.encode("utf-8"))


def cases(xml):
    return {case.name.split(" ")[0]: case for suite in xml for case in suite}


def test_one_case_per_finding_id_with_its_outcome():
    document = document_of(sample_audit())
    xml = parsed(build_junit(document))
    by_id = cases(xml)
    assert sorted(by_id) == sorted(f["id"] for f in document["findings"])
    result = {f["key"]: by_id[f["id"]].result for f in document["findings"]}
    assert isinstance(result["DEBUG"][0], junitparser.Failure)  # high, at the gate
    assert result["LOG_LEVEL"] == []  # low, below the gate: passed
    assert isinstance(result["APP_ENV"][0], junitparser.Skipped)  # expected
    assert isinstance(result["*"][0], junitparser.Error)  # could not collect
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (4, 1, 1, 1)
    debug = next(f for f in document["findings"] if f["key"] == "DEBUG")
    failure = result["DEBUG"][0]
    assert failure.message == "high: DEBUG is true in production (prod)."
    assert "Recommendation: Set DEBUG=false in production." in failure.text
    assert by_id[debug["id"]].classname == "envparity.env"
    skipped = result["APP_ENV"][0]
    assert skipped.message == "expected: each environment names itself"


def test_without_any_gate_every_unexpected_finding_fails():
    document = document_of(sample_audit(), fail_on="never")
    xml = parsed(build_junit(document))
    assert (xml.failures, xml.errors, xml.skipped) == (2, 1, 1)


def test_the_gate_on_new_findings_fails_new_ones_only():
    audit = sample_audit()
    with_ids(audit["findings"])
    for finding in audit["findings"]:
        finding["state"] = "persisting" if finding["key"] == "DEBUG" else "new"
    gate = new_gate({"fail_on": "never", "tripped": False, "count": 0}, audit["findings"], "low")
    outcomes = {f["key"]: outcome(f, gate) for f in audit["findings"]}
    assert outcomes == {"DEBUG": "passed", "LOG_LEVEL": "failure", "APP_ENV": "skipped", "*": "error"}


def test_audit_errors_are_error_cases():
    audit = sample_audit()
    audit["errors"] = [{"host": "p", "area": "env", "message": "unreachable: ssh said no"}]
    xml = parsed(build_junit(document_of(audit)))
    suite = next(s for s in xml if s.name == "envparity.audit")
    (case,) = list(suite)
    assert case.name == "error 1 p env"
    assert case.result[0].message == "could not collect: unreachable: ssh said no"


def test_hostile_text_stays_text():
    audit = sample_audit()
    finding = make_finding(
        area="env",
        subject=HOSTILE,
        key=HOSTILE,
        kind="changed",
        check="env.value_changed",
        severity="critical",
        values={"dev": HOSTILE, "prod": None},
        environments=["prod"],
        message=HOSTILE,
        recommendation=HOSTILE,
    )
    audit["findings"].append(finding)
    text = build_junit(document_of(audit))
    xml = parsed(text)
    assert xml.tests == 5  # no case was injected
    tree = ET.fromstring(text.encode("utf-8"))
    hostile = [case for case in tree.iter("testcase") if "]]>" in case.get("name")]
    assert len(hostile) == 1
    name = hostile[0].get("name")
    assert "<b x='1'>&amp;" in name and "\\x00\\x07\\x1b[31m\\ud800\\ufffe" in name and '"\n</testcase>' in name
    assert "\x00" not in text and "\x1b" not in text


def test_xml_text_bounds_and_spells_out():
    assert xml_text("x" * 5000).endswith("… (cut)") and len(xml_text("x" * 5000)) < 4100
    assert xml_text("tab\tok\r\n") == "tab\tok\r\n"
    assert xml_text("\x0b\x7f") == "\\x0b\x7f"


def test_written_beside_the_report_with_a_latest_link(tmp_path):
    document = document_of(sample_audit())
    junit = build_junit(document)
    paths = write_report(str(tmp_path), "run-1", "# md\n", document, junit)
    assert pathlib.Path(paths["junit"]).read_text() == junit
    assert (tmp_path / "latest.junit.xml").read_text() == junit
    assert paths["latest_junit"] == str(tmp_path / "latest.junit.xml")
    later = build_junit(document_of(sample_audit(), fail_on="never"))
    write_report(str(tmp_path), "run-2", "# md\n", document, later)
    assert (tmp_path / "latest.junit.xml").read_text() == later  # follows the newest run
    assert sorted(p.name for p in (tmp_path / "run-1").iterdir()) == ["report.json", "report.junit.xml", "report.md"]


def test_no_junit_when_turned_off(tmp_path):
    paths = write_report(str(tmp_path), "run-1", "# md\n", document_of(sample_audit()))
    assert "junit" not in paths and not (tmp_path / "latest.junit.xml").exists()


def test_turning_junit_off_removes_the_stale_latest_link(tmp_path):
    document = document_of(sample_audit())
    write_report(str(tmp_path), "run-1", "# md\n", document, build_junit(document))
    assert (tmp_path / "latest.junit.xml").is_file()
    write_report(str(tmp_path), "run-2", "# md\n", document)  # JUnit off: no JUnit for run-2
    assert not os.path.lexists(tmp_path / "latest.junit.xml")  # no link dangling as if current
    assert (tmp_path / "run-1" / "report.junit.xml").is_file()  # the earlier run keeps its own
    assert os.readlink(tmp_path / "latest") == "run-2"


def test_turning_junit_off_leaves_a_latest_junit_of_the_users_own(tmp_path):
    document = document_of(sample_audit())
    (tmp_path / "latest.junit.xml").write_text("<testsuites/>")  # not the audit's link
    other = tmp_path / "elsewhere.xml"
    other.write_text("<testsuites/>")
    write_report(str(tmp_path), "run-1", "# md\n", document)
    assert (tmp_path / "latest.junit.xml").read_text() == "<testsuites/>"
    (tmp_path / "latest.junit.xml").unlink()
    os.symlink(str(other), tmp_path / "latest.junit.xml")  # a link the audit did not make
    write_report(str(tmp_path), "run-2", "# md\n", document)
    assert os.readlink(tmp_path / "latest.junit.xml") == str(other)
