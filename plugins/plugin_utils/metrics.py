"""The report as Prometheus metrics: a textfile for node_exporter's textfile collector.

Written in the text exposition format (0.0.4) by this module alone (no client library on the
controller), atomically: a temporary file in the same directory, fsync'd, then renamed over the
.prom file, so that the collector never reads half a file. Names follow Prometheus conventions:
the `envparity_` prefix, base units (seconds), `_total`-free gauges (each file is one run's
snapshot), label values escaped (backslash, double quote, newline). Pure Python; no Ansible imports.
"""

import math
import os
import re
import tempfile
from collections import Counter

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import SEVERITIES
from ansible_collections.envparity.audit.plugins.plugin_utils.timeline import parse_stamp

LAST_SUCCESS = "envparity_last_success_timestamp_seconds"
# name: (help, labels); the order of the file.
METRICS = {
    "envparity_findings": (
        "Findings of the last audit by area, severity and whether a rule expects them.",
        ("area", "severity", "expected"),
    ),
    "envparity_unexpected_findings_by_environment": (
        "Unexpected findings of the last audit that concern each environment, by severity.",
        ("environment", "severity"),
    ),
    "envparity_new_findings": (
        "Unexpected findings of the last audit that are new since the run it was compared with.",
        ("area", "severity"),
    ),
    "envparity_unexpected_findings_by_check": (
        "Unexpected findings of the last audit by check (e.g. endpoints.cert_expiring); none, no series.",
        ("area", "check", "severity"),
    ),
    "envparity_oldest_unexpected_finding_age_seconds": (
        "Age of the oldest unexpected finding of the last audit (0 without any).",
        (),
    ),
    "envparity_collection_ok": (
        "1 when the last audit collected the area on the host, 0 when it could not.",
        ("host", "environment", "area"),
    ),
    "envparity_gate_tripped": ("1 when the last audit's gate (drift_fail_on, drift_fail_on_new) tripped.", ()),
    "envparity_run_duration_seconds": ("Wall time of the last audit, from opening the run to the report.", ()),
    "envparity_last_run_timestamp_seconds": ("When the last audit wrote its report (POSIX time).", ()),
    LAST_SUCCESS: (
        "When an audit last wrote its report having collected every host and area (POSIX time).",
        (),
    ),
}
NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class MetricsError(Exception):
    """The metrics file could not be written; the report is not affected."""


def label_value(value):
    """Escape a label value as the text format requires."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def sample_value(number):
    if isinstance(number, bool):
        return "1" if number else "0"
    if isinstance(number, float):
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "+Inf" if number > 0 else "-Inf"
        return repr(number)
    return str(int(number))


def audit_complete(document):
    """Every host and area collected: no audit error and no could-not-collect finding."""
    return not document["errors"] and document["summary"]["unknown"] == 0


def samples(document, started_at, finished_at, previous_success=None):
    """{metric name: [(labels dict, value)]} of one report document.

    `previous_success` is the last-success time of the metrics file this one replaces: an audit
    that was not complete keeps it, so that an alert can see how long audits have been failing."""
    findings = document["findings"]
    unexpected = [f for f in findings if not f["expected"]]
    out = {name: [] for name in METRICS}
    # Counted in one pass each; every (area, severity) and (environment, severity) pair is written,
    # 0 included, so that a query never sees a series vanish when its drift is fixed.
    found = Counter((f["area"], f["severity"], f["expected"]) for f in findings)
    new = Counter((f["area"], f["severity"]) for f in unexpected if f.get("state") == "new")
    by_environment = Counter((name, f["severity"]) for f in unexpected for name in set(f["environments"]))
    checks = Counter((f["area"], f["check"], f["severity"]) for f in unexpected)
    for area in document["areas"]:
        for severity in SEVERITIES:
            for expected in (False, True):
                out["envparity_findings"].append(
                    (
                        {"area": area, "severity": severity, "expected": str(expected).lower()},
                        found[area, severity, expected],
                    )
                )
            out["envparity_new_findings"].append(({"area": area, "severity": severity}, new[area, severity]))
    for row in document["environments"]:
        for severity in SEVERITIES:
            out["envparity_unexpected_findings_by_environment"].append(
                ({"environment": row["name"], "severity": severity}, by_environment[row["name"], severity])
            )
    for (area, check, severity), count in sorted(checks.items()):
        out["envparity_unexpected_findings_by_check"].append(
            ({"area": area, "check": check, "severity": severity}, count)
        )
    seen = [stamp for stamp in (parse_stamp(f.get("first_seen")) for f in unexpected) if stamp is not None]
    generated = parse_stamp(document["generated_at"]) or finished_at
    oldest = max(0.0, generated - min(seen)) if seen else 0.0
    out["envparity_oldest_unexpected_finding_age_seconds"].append(({}, oldest))
    failed = {(e.get("host"), e.get("area")) for e in document["errors"]}
    live = {row["name"] for row in document["environments"]}
    # a baseline column (drift_baseline_columns) is read from the store, not collected
    for column in (column for column in document["columns"] if column["environment"] in live):
        for area in document["areas"]:
            ok = column["status"] == "ok" and (column["host"], area) not in failed
            out["envparity_collection_ok"].append(
                ({"host": column["host"], "environment": column["environment"], "area": area}, int(ok))
            )
    out["envparity_gate_tripped"].append(({}, int(bool(document["gate"]["tripped"]))))
    out["envparity_run_duration_seconds"].append(({}, max(0.0, float(finished_at - started_at))))
    out["envparity_last_run_timestamp_seconds"].append(({}, float(finished_at)))
    success = float(finished_at) if audit_complete(document) else previous_success
    if success is not None:
        out[LAST_SUCCESS].append(({}, float(success)))
    return out


def exposition(series):
    """The text format of {name: [(labels, value)]}, in METRICS order; HELP and TYPE for each."""
    lines = []
    for name, (help_text, _labels) in METRICS.items():
        if not NAME.match(name):
            raise ValueError("not a metric name: %r" % name)
        lines.append("# HELP %s %s" % (name, help_text.replace("\\", "\\\\").replace("\n", "\\n")))
        lines.append("# TYPE %s gauge" % name)
        for labels, value in series.get(name, ()):
            text = ",".join('%s="%s"' % (key, label_value(labels[key])) for key in sorted(labels))
            lines.append("%s%s %s" % (name, "{%s}" % text if text else "", sample_value(value)))
    return "\n".join(lines) + "\n"


def previous_success(path):
    """The last-success time of an existing metrics file, or None (no file, or none in it)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                name, _, value = line.strip().partition(" ")
                if name == LAST_SUCCESS:
                    return float(value)
    except (OSError, ValueError):
        return None
    return None


def write_metrics(path, text):
    """Write `text` to `path` atomically (temporary file beside it, fsync, rename), mode 0644.
    Raises MetricsError with a readable reason."""
    if not path.endswith(".prom"):
        raise MetricsError("%s: node_exporter's textfile collector reads only files ending in .prom" % path)
    directory = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".envparity-", suffix=".tmp", dir=directory)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise MetricsError("cannot write the metrics file %s: %s" % (path, exc.strerror or exc)) from None
