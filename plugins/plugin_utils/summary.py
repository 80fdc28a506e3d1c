"""Terminal summary lines and bounded failure reasons for the callback. Pure Python."""

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import SEVERITIES

MAX_REASON = 400


def failure_reason(result, status):
    """Ansible's own message for a failed or unreachable host, one line, bounded."""
    message = result.get("msg") or ("host unreachable" if status == "unreachable" else "task failed")
    message = " ".join(str(message).split())
    return message if len(message) <= MAX_REASON else message[: MAX_REASON - 1] + "…"


def summary_lines(report):
    """What the terminal shows at the end of a run."""
    if report is None:
        return ["envparity: no report was written (the report step did not run; see the errors above)."]
    if "summary" not in report:
        return ["envparity: the report step failed: %s" % failure_reason(report, "failed")]
    summary = report["summary"]
    counts = ", ".join("%s %d" % (severity, summary["by_severity"][severity]) for severity in SEVERITIES)
    gate = report["gate"]
    lines = [
        "envparity: %d unexpected finding(s) (%s); %d expected; %d could not be collected; %d stale rule(s)."
        % (summary["unexpected"], counts, summary["expected"], summary["unknown"], summary["stale_rules"]),
        "envparity: report %s (JSON %s)" % (report["report"]["markdown"], report["report"]["json"]),
    ]
    if gate["fail_on"] == "never":
        lines.append("envparity: gate off (drift_fail_on=never).")
    else:
        lines.append(
            "envparity: gate %s: %d finding(s) at or above %s."
            % ("FAILED" if gate["tripped"] else "passed", gate["count"], gate["fail_on"])
        )
    return lines
