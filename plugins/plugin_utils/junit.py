"""The report as JUnit XML, so that CI systems show drift in their test views.

One test case per finding id, one test suite per area (plus one for the audit's own errors):
- failure: an unexpected finding that trips the gate (at or above drift_fail_on, or new and at or
  above drift_fail_on_new); with no gate at all (both `never`), every unexpected finding, so that a
  test view never shows a drift as passed for lack of a gate;
- passed: an unexpected finding below the gate (its message is kept in system-out);
- skipped: an expected finding (the rule's reason is the skip message);
- error: a finding that could not be collected (kind `unknown`), and each audit error.
The test case name starts with the finding id, which never changes from run to run, so that a CI
system's test history follows one drift. Built from the report document (report_model), pure
Python (xml.etree only); every text is made safe for XML 1.0 (see xml_text).
"""

import re
import xml.etree.ElementTree as ET

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import GATE_NEVER, at_or_above

REPORT_JUNIT = "report.junit.xml"
LATEST_JUNIT = "latest.junit.xml"
ERRORS_SUITE = "audit"
# Characters XML 1.0 cannot hold at all, not even escaped (control characters, lone surrogates,
# U+FFFE/U+FFFF); each is written as \xNN / \uNNNN so that the text stays readable and parseable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_TEXT = 4000  # characters of one message (a value from a host is already bounded, a sentence may not be)


def xml_text(value):
    """A string XML 1.0 can hold: characters it forbids spelled out, bounded. ElementTree escapes
    the rest (&, <, >, quotes, and newlines in attributes), so `]]>` and markup stay text."""
    text = str(value)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "… (cut)"
    return _NOT_XML.sub(_spelled_out, text)


def _spelled_out(match):
    code = ord(match.group())
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code


def outcome(finding, gate):
    """failure, passed, skipped or error for one finding under the report's gate."""
    if finding["kind"] == "unknown":
        return "error"
    if finding["expected"]:
        return "skipped"
    fail_on, fail_on_new = gate.get("fail_on", GATE_NEVER), gate.get("fail_on_new", GATE_NEVER)
    if fail_on == GATE_NEVER and fail_on_new == GATE_NEVER:
        return "failure"
    if at_or_above(finding["severity"], fail_on):
        return "failure"
    if finding.get("state") == "new" and at_or_above(finding["severity"], fail_on_new):
        return "failure"
    return "passed"


def case_name(finding):
    return "%s %s %s (%s)" % (finding["id"], finding["subject"], finding["key"], finding["check"])


def finding_detail(finding):
    """The text of a failure, skip or error: message, values by column, recommendation, state."""
    lines = [finding["message"]]
    for label, cell in finding["values"].items():
        lines.append("  %s: %s" % (label, "absent" if cell is None else cell))
    if finding.get("recommendation"):
        lines.append("Recommendation: %s" % finding["recommendation"])
    if finding.get("state"):
        lines.append("State: %s, first seen %s" % (finding["state"], finding.get("first_seen")))
    return "\n".join(lines)


def _element(parent, tag, text=None, **attributes):
    node = ET.SubElement(parent, tag, {name: xml_text(value) for name, value in attributes.items()})
    if text is not None:
        node.text = xml_text(text)
    return node


def _case(suite, classname, name, result, message, detail, type_):
    case = _element(suite, "testcase", classname=classname, name=name, time="0")
    if result == "passed":
        _element(case, "system-out", detail)
    elif result == "skipped":
        _element(case, "skipped", message=message)
    else:
        _element(case, result, detail, message=message, type=type_)


def _suite_counts(suite, cases, timestamp):
    suite.set("tests", str(len(cases)))
    for result, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attribute, str(sum(1 for r in cases if r == result)))
    suite.set("time", "0")
    suite.set("timestamp", timestamp.rstrip("Z"))


def build_junit(document):
    """The JUnit XML text (UTF-8, with its declaration) of a report document."""
    gate = document["gate"]
    root = ET.Element("testsuites", {"name": "envparity"})
    timestamp = document["generated_at"]
    totals = []
    areas = list(document["areas"])
    areas += sorted({f["area"] for f in document["findings"]} - set(areas))
    for area in areas:
        suite = _element(root, "testsuite", name="envparity.%s" % area)
        results = []
        for finding in (f for f in document["findings"] if f["area"] == area):
            result = outcome(finding, gate)
            if result == "skipped":
                message = "expected: %s" % (finding.get("reason") or "a rule says so")
            else:
                message = "%s: %s" % (finding["severity"], finding["message"])
            detail = finding_detail(finding)
            _case(suite, "envparity.%s" % area, case_name(finding), result, message, detail, finding["kind"])
            results.append(result)
        _suite_counts(suite, results, timestamp)
        totals += results
    if document["errors"]:
        suite = _element(root, "testsuite", name="envparity.%s" % ERRORS_SUITE)
        results = []
        for number, error in enumerate(document["errors"], 1):
            where = " ".join(part for part in (error.get("host"), error.get("area")) if part) or "audit"
            message = "could not collect: %s" % error.get("message")
            _case(suite, "envparity.audit", "error %d %s" % (number, where), "error", message, message, "error")
            results.append("error")
        _suite_counts(suite, results, timestamp)
        totals += results
    root.set("tests", str(len(totals)))
    root.set("failures", str(totals.count("failure")))
    root.set("errors", str(totals.count("error")))
    root.set("skipped", str(totals.count("skipped")))
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
