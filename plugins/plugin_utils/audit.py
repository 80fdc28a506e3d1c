"""From the run directory to findings: columns, host states, per-area cells, diffs and rules.

Pure Python; no Ansible imports. The report action plugin is thin glue around build_audit().
"""

from ansible_collections.envparity.audit.plugins.module_utils.collect import without_gc
from ansible_collections.envparity.audit.plugins.plugin_utils import docker_diff, env_diff, git_diff, pg_diff, run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import area_problem
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    GATE_NEVER,
    SEVERITIES,
    at_or_above,
    is_unknown,
    join_names,
    make_finding,
    sort_key,
    unknown_cell,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import apply_rules, load_rules

# One entry per area: its diff rules and how to list the subjects a request names.
AREAS = {
    "docker": docker_diff,
    "env": env_diff,
    "git": git_diff,
    "postgres": pg_diff,
}


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
    if settings.get("fail_on") not in SEVERITIES + (GATE_NEVER,):
        raise AuditConfigError("drift_fail_on must be one of %s" % ", ".join(SEVERITIES + (GATE_NEVER,)))


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
        if (requests.get(host) or {}).get(area) is None:
            cells[column["label"]] = None
            continue
        state = states[host]
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


def unknown_findings(area, columns, cells, requests):
    """'Could not collect' is never 'same': one unknown finding per subject a failed host was to audit."""
    by_subject = {}
    for column in columns:
        cell = cells[column["label"]]
        if is_unknown(cell):
            for subject in AREAS[area].subjects(requests[column["host"]][area]):
                by_subject.setdefault(subject, []).append(column["label"])
    findings = []
    for subject, labels in sorted(by_subject.items()):
        values = {column["label"]: ("collected" if cells[column["label"]] is not None else None) for column in columns}
        values.update({label: cells[label] for label in labels})
        reasons = "; ".join("%s: %s" % (label, cells[label]["unknown"]) for label in labels)
        findings.append(
            make_finding(
                area,
                subject,
                "*",
                "unknown",
                "collect.failed",
                "high",
                values,
                labels,
                "%s %s could not be collected on %s (%s); it was not compared."
                % (area, subject, join_names(labels), reasons),
                "Make %s reachable and the area readable, then audit again; until then its drift is unknown."
                % join_names(labels),
            )
        )
    return findings


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


def build_audit(run_directory, environments, production_environments, groups, requests, rules_files, fail_on):
    """Every finding of the run, with the context the report needs."""
    columns = build_columns(environments, groups, set(requests))
    with without_gc():
        states = {
            column["host"]: host_state(
                run_dir.load_facts(run_directory, column["host"]), run_dir.load_error(run_directory, column["host"])
            )
            for column in columns
        }
    labels = [column["label"] for column in columns]
    production = {column["label"] for column in columns if column["environment"] in production_environments}
    audited = sorted(
        {area for host in requests for area, request in (requests[host] or {}).items() if request is not None}
    )
    errors = []
    findings = []
    with without_gc():
        for area in audited:
            if area not in AREAS:
                errors.append({"host": None, "area": area, "message": "no diff rules for area %s" % area})
                continue
            cells = area_cells(area, columns, states, requests)
            findings += unknown_findings(area, columns, cells, requests)
            findings += AREAS[area].diff(labels, cells, {"baseline": labels[0], "production": production})
    rules, rule_errors = load_rules(rules_files)
    errors += [{"host": None, "area": None, "message": message} for message in rule_errors]
    environment_of = {column["label"]: column["environment"] for column in columns}
    stale = _stale_candidates(apply_rules(findings, rules, environment_of), audited, findings, len(columns))
    findings.sort(key=sort_key)
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
    return {
        "columns": columns,
        "states": states,
        "production": sorted(production),
        "audited_areas": audited,
        "findings": findings,
        "stale_rules": stale,
        "errors": errors,
        "rules_files": list(rules_files),
        "gate": {"fail_on": fail_on, "tripped": bool(gating) and fail_on != GATE_NEVER, "count": len(gating)},
    }
