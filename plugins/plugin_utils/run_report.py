"""Write the report of a run from its run directory alone.

Used by the report action plugin, and by the callback when no host remained in the play to run
the report step (every host unreachable), so that a report is written whenever a run was opened.
Pure Python; no Ansible imports.
"""

import json
import os
import shutil
import time

from ansible_collections.envparity.audit.plugins.plugin_utils import baseline_run, history, metrics, run_dir, timeline
from ansible_collections.envparity.audit.plugins.plugin_utils.audit import build_audit, build_columns
from ansible_collections.envparity.audit.plugins.plugin_utils.baseline_facts import since_baseline
from ansible_collections.envparity.audit.plugins.plugin_utils.junit import build_junit
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import (
    SCHEMA_VERSION,
    build_document,
    build_view,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import (
    render_markdown,
    report_name,
    write_report,
)

SETTINGS = (
    "environments",
    "production_environments",
    "groups",
    "rules_files",
    "fail_on",
    "report_dir",
    "template",
    "inventory",
    "keep_run_dir",
)


def history_scope(settings):
    """Runs compare with runs of the same scope: the same inventory (by its name, so that CI
    checkouts in other directories still match) and the same environments."""
    sources = [os.path.basename(os.path.normpath(part.strip())) for part in settings["inventory"].split(",")]
    return json.dumps({"inventory": sources, "environments": settings["environments"]}, sort_keys=True)


def earlier_run(settings, audited_areas):
    """(the earlier run to compare with or None, where it comes from, error message or None)."""
    if settings.get("previous_report"):
        source = "previous report %s" % settings["previous_report"]
        try:
            return timeline.read_previous_report(settings["previous_report"], SCHEMA_VERSION), source, None
        except timeline.PreviousReportError as exc:
            return None, source, str(exc)
    if not settings.get("history", False):
        return None, None, None
    source = "baseline %s" % settings["baseline"] if settings.get("baseline") else "previous run"
    try:
        found = history.read_history(
            settings["history_file"],
            history_scope(settings),
            audited_areas,
            settings["history_trend_runs"],
            settings["history_busy_timeout"],
            baseline=settings.get("baseline"),
        )
    except history.HistoryError as exc:
        return None, source, str(exc)
    return found, source, None


def partial_run(settings, audit):
    """Whether some host of the compared environments took no part in the run (--limit)."""
    taking_part = {column["host"] for column in audit["columns"]}
    return any(
        host not in taking_part for name in settings["environments"] for host in settings["groups"].get(name, ())
    )


def live_view(findings, baseline_labels):
    """The findings as the history sees them: without the baseline columns' values, so that a run
    with a baseline column keeps the states and digests of a run without one."""
    if not baseline_labels:
        return findings
    return [
        dict(finding, values={label: v for label, v in finding["values"].items() if label not in baseline_labels})
        for finding in findings
    ]


def history_section(settings, audit, run_id, generated_at, now):
    """Compare the findings with the earlier run (setting their state and age); the report's
    history section, and the rows to record."""
    previous, source, error = earlier_run(settings, audit["audited_areas"])
    findings = live_view(audit["findings"], {column["label"] for column in audit.get("baseline_columns") or ()})
    outcome = timeline.compare_with(
        findings, audit["audited_areas"], previous, generated_at, now, partial=partial_run(settings, audit)
    )
    for finding, view in zip(audit["findings"], findings, strict=True):
        finding.update(state=view["state"], first_seen=view["first_seen"], age_days=view["age_days"])
    unexpected = [f for f in audit["findings"] if not f["expected"]]
    current = {"generated_at": generated_at, "unexpected": timeline.severity_counts(unexpected)}
    trend = ((previous or {}).get("trend") or []) + [current]
    section = {
        "run_id": run_id,
        "source": source,
        "compared_with": None
        if previous is None or previous.get("generated_at") is None
        else {"generated_at": previous["generated_at"], "run_id": previous.get("run_id")},
        "error": error,
        "warnings": outcome["warnings"],
        "counts": outcome["counts"],
        "resolved": [timeline.resolved_record(row) for row in outcome["resolved"]],
        "trend": trend[-settings.get("history_trend_runs", 10) :],
        "store": settings["history_file"] if settings.get("history") else None,
        "baseline_saved": settings.get("baseline_save"),
    }
    rows = timeline.state_rows(findings, outcome["carried"])
    return section, rows


def record_history(settings, section, rows, now, areas, baseline_facts=()):
    """Record the run in the store, after the report; returns an error message or None. A store
    that could not be read (corrupt, foreign, newer) is not written either: it is left as it is."""
    if not settings.get("history"):
        return None
    if section["error"] and not settings.get("previous_report"):
        return section["error"]
    run = {
        "run_id": section["run_id"],
        "scope": history_scope(settings),
        "generated_at": section["trend"][-1]["generated_at"],
        "recorded_at": now,
        "areas": areas,
        "unexpected": section["trend"][-1]["unexpected"],
    }
    try:
        history.record_run(
            settings["history_file"],
            run,
            rows,
            settings["history_busy_timeout"],
            settings["history_retention_days"],
            baseline_name=settings.get("baseline_save"),
            baseline_facts=baseline_facts,
        )
    except history.HistoryError as exc:
        return str(exc)
    return None


def write_metrics_file(settings, document, now):
    """Write the Prometheus textfile when drift_metrics_file is set; an error message or None.
    After the report: a metrics directory that is not writable never costs the report."""
    path = settings.get("metrics_file")
    if not path:
        return None
    started_at = settings.get("started_at", now)
    series = metrics.samples(document, started_at, now, metrics.previous_success(path))
    try:
        metrics.write_metrics(path, metrics.exposition(series))
    except metrics.MetricsError as exc:
        return str(exc)
    return None


def write_run_report(run_directory, now=None):
    """Diff, render and write; returns {report: paths, summary, gate}.

    `now` is a POSIX time (default: the current one). Raises AuditConfigError or ReportWriteError."""
    # Collection is over: the key goes first, whatever happens next, and even if the facts stay.
    run_dir.discard_key(run_directory)
    settings = run_dir.load_settings(run_directory)
    now = time.time() if now is None else now
    run_id = os.path.basename(os.path.normpath(run_directory))
    not_collected = run_dir.mark_not_collected(run_directory, settings, run_id) if settings.get("shared") else []
    requests = run_dir.load_requests(run_directory)
    live_columns = build_columns(settings["environments"], settings["groups"], set(requests))
    extra, columns, baseline_errors = baseline_run.baseline_columns(settings, run_directory, live_columns, requests)
    # A baseline of a production environment is production too: the same policies hold it.
    production = settings["production_environments"] + [
        column["environment"] for column in columns if column["of"] in settings["production_environments"]
    ]
    audit = build_audit(
        run_directory,
        settings["environments"],
        production,
        settings["groups"],
        requests,
        settings["rules_files"],
        settings["fail_on"],
        settings.get("areas"),
        now=now,
        baseline=extra,
    )
    saved, save_errors = baseline_run.baseline_rows(settings, run_directory, live_columns, audit["states"], requests)
    audit["errors"] += [{"host": None, "area": None, "message": text} for text in baseline_errors + save_errors]
    if columns:
        audit["baseline_columns"] = since_baseline(audit["findings"], columns)
    generated_at = time.strftime(timeline.STAMP, time.gmtime(now))
    audit["history"], rows = history_section(settings, audit, run_id, generated_at, now)
    audit["gate"] = timeline.new_gate(audit["gate"], audit["findings"], settings.get("fail_on_new", "never"))
    document = build_document(audit, generated_at, settings["inventory"])
    markdown = render_markdown(settings["template"], build_view(document))
    junit = build_junit(document) if settings.get("junit", True) else None
    paths = write_report(settings["report_dir"], report_name(now, run_id), markdown, document, junit)
    # After the report: a store that cannot be written never costs the report.
    history_error = record_history(settings, audit["history"], rows, now, audit["audited_areas"], saved)
    metrics_error = write_metrics_file(settings, document, now)
    if not settings["keep_run_dir"]:
        shutil.rmtree(run_directory, ignore_errors=True)
    return {
        "report": paths,
        "summary": document["summary"],
        "gate": document["gate"],
        "history": {"store": audit["history"]["store"], "error": history_error, "counts": audit["history"]["counts"]},
        "metrics": {"file": settings.get("metrics_file"), "error": metrics_error},
        "not_collected": not_collected,
    }
