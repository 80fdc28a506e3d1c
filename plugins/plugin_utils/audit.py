"""From the run directory to findings: columns, host states, per-area cells, diffs and rules.

Pure Python; no Ansible imports. The report action plugin is thin glue around build_audit().
"""

from ansible_collections.envparity.audit.plugins.module_utils.areas import AREA_NAMES
from ansible_collections.envparity.audit.plugins.module_utils.collect import without_gc
from ansible_collections.envparity.audit.plugins.plugin_utils import policies, root_causes, run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import diff_rules
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import area_problem
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    GATE_NEVER,
    SEVERITIES,
    at_or_above,
    by_value,
    is_unknown,
    join_names,
    make_finding,
    sort_key,
    unknown_cell,
    with_ids,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.one_finding import one_finding_per_fact
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import apply_rules
from ansible_collections.envparity.audit.plugins.plugin_utils.rules_file import load_rules
from ansible_collections.envparity.audit.plugins.plugin_utils.tolerances import Tolerances, annotate

# The key of the findings about a subject as a whole (configured here, not there; not collected).
SUBJECT_KEY = "*"


class AuditConfigError(ValueError):
    """The inventory does not describe environments that can be compared."""


def check_settings(settings):
    """Fail fast, before any host is contacted, on settings that cannot give a report."""
    environments = settings.get("environments")
    if not isinstance(environments, list) or not environments:
        raise AuditConfigError("drift_environments must be a non-empty list of inventory groups")
    unknown = [name for name in environments if name not in settings["groups"]]
    if unknown:
        raise AuditConfigError("drift_environments names %s, which is not an inventory group" % join_names(unknown))
    for name in ("fail_on", "fail_on_new"):
        if settings.get(name, GATE_NEVER) not in SEVERITIES + (GATE_NEVER,):
            raise AuditConfigError("drift_%s must be one of %s" % (name, ", ".join(SEVERITIES + (GATE_NEVER,))))
    check_history_settings(settings)
    metrics_file = settings.get("metrics_file")
    if metrics_file and not metrics_file.endswith(".prom"):
        raise AuditConfigError(
            "drift_metrics_file must end in .prom (node_exporter's textfile collector reads no other)"
        )


def check_history_settings(settings):
    """The history settings that cannot work together, refused before any host is contacted."""
    if settings.get("baseline") and settings.get("previous_report"):
        raise AuditConfigError(
            "drift_baseline and drift_previous_report both name the run to compare with: set one of them"
        )
    if not settings.get("history", True) and (settings.get("baseline") or settings.get("baseline_save")):
        raise AuditConfigError("drift_baseline and drift_baseline_save need the history store (drift_history: true)")
    if settings.get("history_retention_days", 1) < 1:
        raise AuditConfigError("drift_history_retention_days must be at least 1")
    if settings.get("history_busy_timeout", 0) < 0 or settings.get("history_trend_runs", 1) < 1:
        raise AuditConfigError("drift_history_busy_timeout must be 0 or more, drift_history_trend_runs 1 or more")


def build_columns(environments, groups, participating):
    """One column per host of each environment, in order; the first is the baseline.

    A host of an environment that is not in this run (e.g. excluded by --limit) is left out.
    """
    if not environments:
        raise AuditConfigError("drift_environments is empty: list the inventory groups to compare")
    columns, seen = [], {}
    for environment in environments:
        if environment not in groups:
            raise AuditConfigError("environment %r of drift_environments is not an inventory group" % environment)
        hosts = [host for host in groups[environment] if host in participating]
        for host in hosts:
            if host in seen:
                raise AuditConfigError("host %s is in two environments: %s and %s" % (host, seen[host], environment))
            seen[host] = environment
            label = environment if len(hosts) == 1 else "%s/%s" % (environment, host)
            columns.append({"label": label, "environment": environment, "host": host})
    if not columns:
        raise AuditConfigError("no host of %s took part in this run" % join_names(environments))
    return columns


def environment_rows(environments, columns):
    """Every environment of drift_environments, with the hosts of it that took part (maybe none)."""
    return [
        {"name": name, "hosts": [column["host"] for column in columns if column["environment"] == name]}
        for name in environments
    ]


def host_state(facts, error):
    """Collection status of one host: ok, unreachable, failed or not collected."""
    if facts is not None:
        return {"status": "ok", "reason": None, "areas": facts.get("areas", {})}
    if error is not None:
        return {"status": error.get("status", "failed"), "reason": error.get("reason"), "areas": {}}
    return {
        "status": "not collected",
        "reason": "no facts were delivered (the collect task did not run on this host)",
        "areas": {},
    }


def area_cells(area, columns, states, requests):
    """Per column: the area's data, an unknown marker, or None when the area is not configured there."""
    cells = {}
    for column in columns:
        host = column["host"]
        state = states[host]
        if requests.get(host) is None:  # the host's variables did not validate: nothing is known
            cells[column["label"]] = unknown_cell("%s: %s" % (state["status"], state["reason"]))
            continue
        if requests[host].get(area) is None:
            cells[column["label"]] = None
            continue
        if state["status"] != "ok":
            cells[column["label"]] = unknown_cell("%s: %s" % (state["status"], state["reason"]))
            continue
        result = state["areas"].get(area)
        if result is None:
            cells[column["label"]] = unknown_cell("area %s was not collected" % area)
        elif result["status"] != "ok":
            cells[column["label"]] = unknown_cell("area %s failed: %s" % (area, result.get("reason")))
        elif problem := area_problem(area, result.get("data")):
            # Facts of the wrong shape are this host's and area's "could not collect", not a crash.
            cells[column["label"]] = unknown_cell(problem)
        else:
            cells[column["label"]] = result["data"]
    return cells


def configured_subjects(area, columns, requests):
    """{label: set of subject names} of the columns whose host configures the area."""
    subjects_of = diff_rules(area).subjects
    return {
        column["label"]: set(subjects_of(requests[column["host"]][area]))
        for column in columns
        if (requests.get(column["host"]) or {}).get(area) is not None
    }


def unknown_findings(area, columns, cells, configured):
    """'Could not collect' is never 'same': one unknown finding per subject a failed host was to
    audit (every subject configured anywhere, when the host's own request could not be built)."""
    everywhere = set().union(*configured.values()) if configured else set()
    by_subject = {}
    for column in columns:
        label = column["label"]
        if is_unknown(cells[label]):
            for subject in configured.get(label) or everywhere:
                by_subject.setdefault(subject, []).append(label)
    findings = []
    for subject, labels in sorted(by_subject.items()):
        values = {column["label"]: ("collected" if cells[column["label"]] is not None else None) for column in columns}
        values.update({label: cells[label] for label in labels})
        reasons = by_value(((label, cells[label]["unknown"]) for label in labels), ": ")
        findings.append(
            make_finding(
                area=area,
                subject=subject,
                key=SUBJECT_KEY,
                kind="unknown",
                check="collect.failed",
                severity="high",
                values=values,
                environments=labels,
                message="%s %s could not be collected on %s (%s); it was not compared."
                % (area, subject, join_names(labels), reasons),
                recommendation="Make %s reachable and the area readable, then audit again; until then its drift "
                "is unknown." % join_names(labels),
            )
        )
    return findings


def not_configured_findings(area, columns, cells, configured):
    """A subject configured on some hosts and not on others: never silently compared with nothing.
    (A host whose facts are unknown is not said to lack it: unknown_findings speaks for it.)"""
    labels = [column["label"] for column in columns]
    findings = []
    for subject in sorted(set().union(*configured.values()) if configured else ()):
        lacking = [
            label for label in labels if subject not in configured.get(label, ()) and not is_unknown(cells[label])
        ]
        if not lacking:
            continue
        having = [label for label in labels if subject in configured.get(label, ())]
        values = {label: ("configured" if label in having else "not configured") for label in labels}
        values.update({label: cells[label] for label in labels if is_unknown(cells[label])})
        findings.append(
            make_finding(
                area=area,
                subject=subject,
                key=SUBJECT_KEY,
                kind="missing",
                check="%s.not_configured" % area,
                severity="medium",
                values=values,
                environments=lacking,
                message="%s %s is configured for %s but not for %s, so it is not compared there."
                % (area, subject, join_names(having), join_names(lacking)),
                recommendation="Configure %s %s for %s (the %s area's variables), or remove it from %s."
                % (area, subject, join_names(lacking), area, join_names(having)),
            )
        )
    return findings


def compared_environments(area, columns, cells):
    """The environments where the area's facts were read on at least one host."""
    found = []
    for column in columns:
        cell = cells[column["label"]]
        if cell is not None and not is_unknown(cell) and column["environment"] not in found:
            found.append(column["environment"])
    return found


def not_compared_finding(area, environments, compared, labels):
    """Fewer than two environments compared for an area: the audit says so and fails any gate."""
    missing = [name for name in environments if name not in compared]
    return make_finding(
        area=area,
        subject=SUBJECT_KEY,
        key=SUBJECT_KEY,
        kind="unknown",
        check="audit.not_compared",
        severity="critical",
        values={label: None for label in labels},
        environments=[],
        message="%s was compared across %d environment(s) (%s): %s gave nothing to compare with, so no drift "
        "could be seen." % (area, len(compared), join_names(compared) or "none", join_names(missing)),
        recommendation="Configure and collect the %s area in %s (check the inventory's group_vars and the "
        "collection errors), then audit again." % (area, join_names(missing)),
    )


def _stale_candidates(stale, audited_areas, findings, column_count):
    """Unused rules that could have matched: their area was audited, fully, across 2+ columns.

    A rule for an area not audited in this run (--tags), or one whose area could not be collected
    everywhere, or a run with a single column (--limit), is not evaluated, so not called stale.
    """
    if column_count < 2:
        return []
    incomplete = {finding["area"] for finding in findings if finding["kind"] == "unknown"}
    kept = []
    for rule in stale:
        area = rule["path"].split("/", 1)[0]
        if any(ch in area for ch in "*?["):
            if not incomplete:
                kept.append(rule)
        elif area in audited_areas and area not in incomplete:
            kept.append(rule)
    return kept


def audited_areas(requests, selected_areas=None):
    """The areas some host configures; with a host whose request could not be built (its
    variables did not validate), every area the run selected, since it may configure any."""
    configured = {area for request in requests.values() for area, value in (request or {}).items() if value is not None}
    if selected_areas and any(request is None for request in requests.values()):
        configured.update(selected_areas)
    return sorted(configured)


def build_audit(
    run_directory,
    environments,
    production_environments,
    groups,
    requests,
    rules_files,
    fail_on,
    selected_areas=None,
    now=None,
    baseline=None,
):
    """Every finding of the run, with the context the report needs. `now` (POSIX time, default the
    current one) decides which waivers have expired. `baseline`: the baseline columns added after
    the live ones ({"columns": [{label, environment, host}], "facts": {host: facts}, "requests":
    {host: request}}, see baseline_facts.py)."""
    columns, requests, baseline = with_baseline(build_columns(environments, groups, set(requests)), requests, baseline)
    with without_gc():
        states = {
            column["host"]: host_state(
                baseline["facts"].get(column["host"]) or run_dir.load_facts(run_directory, column["host"]),
                run_dir.load_error(run_directory, column["host"]),
            )
            for column in columns
        }
    labels = [column["label"] for column in columns]
    production = {column["label"] for column in columns if column["environment"] in production_environments}
    audited = audited_areas(requests, selected_areas)
    environment_of = {column["label"]: column["environment"] for column in columns}
    loaded, rule_errors = load_rules(rules_files)
    errors = [{"host": None, "area": None, "message": message} for message in rule_errors]
    tolerances = Tolerances(loaded["tolerances"], environment_of)
    matched_policies = set()
    findings = []
    compared = {}
    tables = {}
    with without_gc():
        for area in audited:
            if area not in AREA_NAMES:
                errors.append({"host": None, "area": area, "message": "no diff rules for area %s" % area})
                continue
            cells = area_cells(area, columns, states, requests)
            configured = configured_subjects(area, columns, requests)
            findings += unknown_findings(area, columns, cells, configured)
            findings += not_configured_findings(area, columns, cells, configured)
            context = {
                "baseline": labels[0],
                "production": production,
                # another area's cells of the same columns (the endpoints area reads git's HEADs)
                "area_cells": lambda other: area_cells(other, columns, states, requests),
                # thresholds of measured figures overridden per subject by the rules file
                "tolerances": tolerances,
                # every value the diff compares, equal ones too, when team policies read them
                "compared_values": {} if loaded["policies"] else None,
            }
            found = diff_rules(area).diff(labels, cells, context)
            findings += found
            if loaded["policies"]:
                values = policies.compared_values(area, cells, found, context["compared_values"])
                findings += policies.evaluate(loaded["policies"], area, values, environment_of, matched_policies)
            # An area may also give tables (and charts) of figures for its report section.
            tables_of = getattr(diff_rules(area), "tables", None)
            if tables_of is not None:
                tables[area] = tables_of(labels, cells, context)
            compared[area] = compared_environments(area, columns, cells)
            if len(compared[area]) < 2 <= len(environments):
                findings.append(not_compared_finding(area, environments, compared[area], labels))
    annotate(findings, tolerances.report())
    stale = _stale_candidates(
        apply_rules(findings, loaded["rules"], environment_of, now),
        audited,
        findings,
        len(columns),
    )
    findings = one_finding_per_fact(findings)
    baseline_only(findings, {column["label"] for column in baseline["columns"]})
    findings.sort(key=sort_key)
    with_ids(findings)
    for column in columns:
        state = states[column["host"]]
        if state["status"] != "ok":
            errors.append(
                {"host": column["host"], "area": None, "message": "%s: %s" % (state["status"], state["reason"])}
            )
        for area, result in sorted(state["areas"].items()):
            if result["status"] != "ok":
                errors.append({"host": column["host"], "area": area, "message": result.get("reason")})
    gating = [f for f in findings if not f["expected"] and at_or_above(f["severity"], fail_on)]
    causes, plan = root_causes.build(
        # what to do now is about the live columns: a baseline column is how things were
        findings,
        [column for column in columns if column["host"] not in baseline["requests"]],
        production,
        lambda area: area_cells(area, columns, states, requests),
        requests,
    )
    return {
        "columns": columns,
        "environments": environment_rows(environments, columns),
        "compared": compared,
        "states": states,
        "production": sorted(production),
        "audited_areas": audited,
        "findings": findings,
        "tables": tables,
        "stale_rules": stale,
        "unmatched_policies": policies.unmatched(loaded["policies"], matched_policies, audited),
        "tolerances": tolerances.report(),
        "unmatched_tolerances": tolerances.unmatched(audited),
        "errors": errors,
        "rules_files": list(rules_files),
        "gate": {"fail_on": fail_on, "tripped": bool(gating) and fail_on != GATE_NEVER, "count": len(gating)},
        "root_causes": causes,
        "stabilization_plan": plan,
    }


def with_baseline(columns, requests, baseline):
    """(the live columns followed by the baseline columns, the requests of both, the baseline)."""
    baseline = baseline or {"columns": [], "facts": {}, "requests": {}}
    extra = [{name: column[name] for name in ("label", "environment", "host")} for column in baseline["columns"]]
    return columns + extra, {**requests, **baseline["requests"]}, baseline


def baseline_only(findings, baseline_labels):
    """A finding about baseline columns alone (prod@release differed then, prod agrees now) tells
    how things were: expected, so that it never gates nor enters the history as new drift."""
    for finding in findings:
        if baseline_labels and finding["environments"] and set(finding["environments"]) <= baseline_labels:
            finding["expected"] = True
            finding["reason"] = "only in the baseline column(s) %s: how it was then" % join_names(
                sorted(set(finding["environments"]))
            )
