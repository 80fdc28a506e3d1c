"""Terminal summary lines and bounded failure reasons for the callback. Pure Python."""

import re

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import SEVERITIES

MAX_REASON = 400
# The exit code of a run whose report could not be written (sysexits.h EX_CANTCREAT, "cannot
# create output file"): Ansible's own codes are 0, 1, 2, 4, 5, 8, 99 and 250.
EXIT_REPORT_NOT_WRITTEN = 73
# A report phase with hosts that no collect job delivered: the code Ansible gives a run with
# unreachable hosts, whose report says the same (could not collect).
EXIT_NOT_COLLECTED = 4
# The run directory lives in the report directory (drift_run's message when it cannot be created).
RUN_DIR_NOT_CREATED = "cannot create the run directory"

# ssh's words when a bound of ansible.cfg ended the connection, and the setting that is that bound.
SSH_BOUNDS = (
    (
        re.compile(r"timed out during banner exchange|port \d+: Connection timed out"),
        "SSH ConnectTimeout (ansible timeout)",
    ),
    (
        re.compile(r"Connection to \S+ port \d+ timed out|Timeout, server \S+ not responding"),
        "SSH keepalives (ServerAliveInterval x ServerAliveCountMax)",
    ),
)


def ssh_bound_hit(message):
    """The ansible.cfg bound that ended an SSH connection, by ssh's message; None for other failures."""
    return next((bound for pattern, bound in SSH_BOUNDS if pattern.search(message)), None)


def failure_reason(result, status):
    """Ansible's own message for a failed or unreachable host, one line, bounded; names the SSH bound hit."""
    message = result.get("msg") or ("host unreachable" if status == "unreachable" else "task failed")
    message = " ".join(str(message).split())
    bound = ssh_bound_hit(message) if status == "unreachable" else None
    if bound:
        message = "no answer within %s: %s" % (bound, message)
    return message if len(message) <= MAX_REASON else message[: MAX_REASON - 1] + "…"


def report_not_written(report):
    """Whether the run ended without a report because the report directory refused it."""
    return bool(report) and bool(report.get("report_unwritable"))


def run_not_opened(result):
    """A failed run-opening result as a report that was not written, or None for other failures.

    Only a run directory that cannot be created (it is in the report directory) means that."""
    message = str(result.get("msg") or "")
    if not message.startswith(RUN_DIR_NOT_CREATED):
        return None
    return {"failed": True, "report_unwritable": True, "msg": message}


def collect_phase(run):
    """Whether the run-opening result `run` (None before it) is a collect phase of a shared run."""
    return bool(run) and run.get("phase") == "collect"


def collected_line(run, processed, unreachable, failed):
    """The end of a collect phase: {host: count} of Ansible's stats; no report is written here."""
    trouble = sorted(set(unreachable) | set(failed))
    line = "envparity: run %s: this collect job took %d host(s) into the shared run" % (run["run_id"], len(processed))
    if trouble:
        line += " (%d could not be collected: %s)" % (len(trouble), ", ".join(trouble))
    return line + "; the report job (drift_phase=report) writes the report."


def summary_lines(report):
    """What the terminal shows at the end of a run."""
    if report is None:
        return ["envparity: no report was written (the report step did not run; see the errors above)."]
    if report_not_written(report):
        return [
            "envparity: NO REPORT: %s" % failure_reason(report, "failed"),
            "envparity: nothing was written; exit code %d (see README, Exit codes)." % EXIT_REPORT_NOT_WRITTEN,
        ]
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
    if summary.get("not_compared"):
        lines.append(
            "envparity: NOT COMPARED: %s: fewer than two environments were collected, no drift could be seen "
            "there (a gate other than never fails)." % ", ".join(summary["not_compared"])
        )
    if report.get("not_collected"):
        lines.append(
            "envparity: NOT COLLECTED by any collect job of the shared run: %s (could not collect in the "
            "report; exit code %d)." % (", ".join(report["not_collected"]), EXIT_NOT_COLLECTED)
        )
    lines += history_lines(report.get("history"))
    lines += output_lines(report)
    gates = []
    if gate["fail_on"] != "never":
        gates.append("%d finding(s) at or above %s" % (gate["count"], gate["fail_on"]))
    if gate.get("fail_on_new", "never") != "never":
        gates.append("%d new at or above %s" % (gate["new_count"], gate["fail_on_new"]))
    if gates:
        lines.append("envparity: gate %s: %s." % ("FAILED" if gate["tripped"] else "passed", "; ".join(gates)))
    else:
        lines.append("envparity: gate off (drift_fail_on=never).")
    return lines


def output_lines(report):
    """The JUnit XML and the metrics file, when written; a metrics file that could not be."""
    lines = []
    if report["report"].get("junit"):
        lines.append("envparity: JUnit %s" % report["report"]["junit"])
    metrics = report.get("metrics") or {}
    if metrics.get("error"):
        lines.append("envparity: METRICS: %s (the report is written; the exit code is unchanged)" % metrics["error"])
    elif metrics.get("file"):
        lines.append("envparity: metrics %s" % metrics["file"])
    return lines


def history_lines(history):
    """Since the last audit, and a store that could not be read or written."""
    if not history:
        return []
    counts = history["counts"]
    lines = [
        "envparity: since the last audit: %d new, %d changed, %d persisting, %d resolved."
        % (counts["new"], counts["changed"], counts["persisting"], counts["resolved"])
    ]
    if history.get("error"):
        lines.append("envparity: HISTORY: %s" % history["error"])
    return lines
