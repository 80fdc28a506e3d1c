"""The report model: the JSON sidecar document and the Markdown view the template iterates over.

Everything the template shows is computed here; the template only loops and prints.
Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils import markdown_text, root_causes
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SEVERITIES,
    action_order,
    is_unknown,
    join_names,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.fleet import environment_groups, group_cell, value_groups
from ansible_collections.envparity.audit.plugins.plugin_utils.timeline import new_gate, without_history

SCHEMA_VERSION = 2
NOT_COMPARED = "audit.not_compared"


def build_document(audit, generated_at, inventory):
    """The JSON sidecar (documented by schemas/report.schema.json)."""
    production = set(audit["production"])
    columns = [
        {
            "label": column["label"],
            "environment": column["environment"],
            "host": column["host"],
            "production": column["label"] in production,
            "status": audit["states"][column["host"]]["status"],
            "reason": audit["states"][column["host"]]["reason"],
        }
        for column in audit["columns"]
    ]
    findings = audit["findings"]
    unexpected = [f for f in findings if not f["expected"]]
    # An audit built without history (a test, a benchmark): every finding new, no gate on new.
    history = audit.get("history") or without_history(findings, generated_at)
    gate = audit["gate"] if "fail_on_new" in audit["gate"] else new_gate(audit["gate"], findings, "never")
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": "envparity",
        "generated_at": generated_at,
        "inventory": inventory,
        "baseline": columns[0]["label"],
        "columns": columns,
        "areas": list(audit["audited_areas"]),
        "environments": [dict(environment) for environment in audit["environments"]],
        "summary": {
            "findings": len(findings),
            "unexpected": len(unexpected),
            "expected": len(findings) - len(unexpected),
            "by_severity": {
                severity: sum(1 for f in unexpected if f["severity"] == severity) for severity in SEVERITIES
            },
            "by_area": {area: sum(1 for f in unexpected if f["area"] == area) for area in audit["audited_areas"]},
            "unknown": sum(1 for f in findings if f["kind"] == "unknown"),
            # Areas compared across fewer than two environments: no drift could be seen there.
            "not_compared": sorted({f["area"] for f in findings if f["check"] == NOT_COMPARED}),
            "stale_rules": len(audit["stale_rules"]),
            "errors": len(audit["errors"]),
            "expired_waivers": sum(1 for f in findings if (f.get("waiver") or {}).get("state") == "expired"),
            "expiring_waivers": sum(1 for f in findings if (f.get("waiver") or {}).get("state") == "expiring"),
            "policies_broken": sum(1 for f in unexpected if "policy" in f),
        },
        "gate": dict(gate),
        "history": dict(history),
        "findings": findings,
        # Figures some areas show beside their findings (health: resources, memory, error rates).
        "tables": dict(audit.get("tables") or {}),
        "stale_rules": [
            {"path": r["path"], "reason": r["reason"], "source": r["source"]} for r in audit["stale_rules"]
        ],
        "errors": list(audit["errors"]),
    }
    document.update(
        {
            name: audit[name]
            for name in (
                "root_causes",
                "stabilization_plan",
                "unmatched_policies",
                "tolerances",
                "unmatched_tolerances",
                "baseline_columns",
            )
            if name in audit
        }
    )
    return document


def md_value(cell, table=True):
    """One value cell: absent, could not collect, empty, or the (already redacted) value as code."""
    if cell is None:
        return "—"
    if is_unknown(cell):
        return "⚠ could not collect"
    if cell == "":
        return "(empty)"
    return markdown_text.code(cell, table=table)


def _cells(finding, groups, table):
    """One cell per environment: the value its hosts agree on, or each value with its hosts."""
    return [
        group_cell(
            [md_value(finding["values"].get(column["label"]), table) for column in columns],
            [markdown_text.text(column["host"]) for column in columns],
        )
        for _, columns in groups
    ]


def _host_rows(document, groups):
    """The Environments table: per environment, its hosts grouped by collection status (names
    folded in a fleet), and a row for an environment of which no host took part."""
    rows = []
    by_name = dict(groups)
    for environment in document["environments"]:
        columns = by_name.get(environment["name"], [])
        if not columns:
            rows.append(
                {
                    "environment": markdown_text.text(environment["name"]),
                    "hosts": "—",
                    "role": "",
                    "status": "no host of this environment took part in the run (nothing was compared there)",
                }
            )
            continue
        statuses = [
            markdown_text.text(column["status"] + (": %s" % column["reason"] if column["reason"] else ""))
            for column in columns
        ]
        hosts = [markdown_text.text(column["host"]) for column in columns]
        first = columns[0]
        role = "baseline" if first["label"] == document["baseline"] else ("production" if first["production"] else "")
        for status, members in value_groups(statuses, hosts):
            shown = join_names(members)
            rows.append(
                {
                    "environment": markdown_text.text(environment["name"]),
                    "hosts": "%d hosts: %s" % (len(members), shown) if len(members) > 1 else shown,
                    "role": role,
                    "status": status,
                }
            )
    return rows


def days(count):
    return "less than a day" if count < 1 else "%d day%s" % (count, "" if count == 1 else "s")


def age_text(finding):
    """'new', or 'for 23 days, since 2026-11-14' (and 'values changed' when they did)."""
    if finding.get("state") in (None, "new"):
        return "new"
    since = "for %s, since %s" % (days(finding["age_days"]), (finding["first_seen"] or "?")[:10])
    return since + ("; values changed" if finding["state"] == "changed" else "")


def waiver_text(waiver):
    """The waiver as the report names it: expiry (UTC), owner, approver, ticket, where."""
    parts = ["expires %s" % waiver["expires"], "owner %s" % waiver["owner"]]
    parts += ["%s %s" % (name, waiver[name]) for name in ("approver", "ticket") if waiver.get(name)]
    return markdown_text.text("%s (%s)" % (", ".join(parts), waiver["source"]))


def _row(finding, groups, table=True):
    """A finding as the template prints it: every field escaped for a table cell or a list item."""
    row = {
        "id": markdown_text.code(finding["id"], table),
        "age": markdown_text.text(age_text(finding)),
        "key": md_value(finding["key"], table),
        "kind": markdown_text.text(finding["kind"]),
        "check": markdown_text.code(finding["check"], table),
        "severity": markdown_text.text(finding["severity"]),
        "area": markdown_text.text(finding["area"]),
        "subject": markdown_text.text(finding["subject"]),
        "cells": _cells(finding, groups, table),
        "message": markdown_text.text(finding["message"]),
        "recommendation": markdown_text.text(finding["recommendation"]),
        "reason": markdown_text.text(finding["reason"] or ""),
        "detail": None,
    }
    row.update(_detail(finding))
    return row


def _detail(finding):
    """A unified diff of two bodies (views, functions), shown in a collapsible block."""
    if not finding.get("detail"):
        return {}
    return {
        "summary_key": markdown_text.html_text(finding["key"]),
        "detail": markdown_text.fenced_block(finding["detail"], "diff"),
    }


def _about(record, table=False):
    """area · subject · key of a finding or a resolved record, escaped."""
    return "%s · %s · %s" % (
        markdown_text.text(record["area"]),
        markdown_text.text(record["subject"]),
        md_value(record["key"], table),
    )


def baseline_view(document):
    """The 'Since the baseline' sections: per baseline column, what differs now in its live column."""
    by_id = {finding["id"]: finding for finding in document["findings"]}
    sections = []
    for column in document.get("baseline_columns") or ():
        changes = [by_id[identity] for identity in column["changed"]]
        sections.append(
            {
                "label": markdown_text.text(column["label"]),
                "live": markdown_text.text(column["live"] or "—"),
                "saved": markdown_text.text(column["generated_at"]),
                "gone": column["live"] is None,
                "changes": [
                    {
                        "about": _about(finding),
                        "id": markdown_text.code(finding["id"]),
                        "then": md_value(finding["values"].get(column["label"]), table=False),
                        "now": md_value(finding["values"].get(column["live"]), table=False),
                    }
                    for finding in changes
                ],
            }
        )
    return sections


def since_view(document):
    """The 'Since the last audit' section: new, changed and resolved findings, and what the run
    was compared with (or why it could not be)."""
    history = document["history"]
    unexpected = [f for f in document["findings"] if not f["expected"]]
    compared = history["compared_with"]
    if history["source"] is None:
        alone = "History is off (drift_history: false): every finding is new."
    elif history["error"]:
        alone = "The %s could not be read: every finding is new." % history["source"]
    else:
        alone = (
            "No earlier run of this inventory and these environments yet (%s): every finding is new."
            % (history["source"])
        )
    return {
        "alone": markdown_text.text(alone),
        "source": markdown_text.text(history["source"] or ""),
        "compared_with": markdown_text.text(compared["generated_at"]) if compared else None,
        "error": markdown_text.text(history["error"]) if history["error"] else None,
        "warnings": [markdown_text.text(warning) for warning in history["warnings"]],
        "counts": history["counts"],
        "new": [
            {"severity": f["severity"], "about": _about(f), "id": markdown_text.code(f["id"])}
            for f in sorted(unexpected, key=action_order)
            if f["state"] == "new"
        ],
        "changed": [
            {
                "severity": f["severity"],
                "about": _about(f),
                "id": markdown_text.code(f["id"]),
                "age": markdown_text.text(age_text(f)),
            }
            for f in sorted(unexpected, key=action_order)
            if f["state"] == "changed"
        ],
        "resolved": [
            {
                "severity": r["severity"],
                "about": _about(r),
                "id": markdown_text.code(r["id"]),
                "age": markdown_text.text(
                    "present for %s, since %s" % (days(r["age_days"]), (r["first_seen"] or "?")[:10])
                ),
            }
            for r in history["resolved"]
        ],
    }


def trend_view(trend):
    """Unexpected findings by severity over the last runs: a Mermaid chart (one line per severity,
    in the order of the table's columns) and the same figures as a table."""
    rows = [
        {
            "when": markdown_text.text((point["generated_at"] or "?")[:16].replace("T", " ")),
            "counts": [point["unexpected"].get(severity, 0) for severity in SEVERITIES],
            "total": sum(point["unexpected"].get(severity, 0) for severity in SEVERITIES),
        }
        for point in trend
    ]
    if len(rows) < 2:
        return {"rows": rows, "mermaid": None}
    top = max(row["total"] for row in rows) or 1
    lines = [
        "xychart-beta",
        '    title "Unexpected findings by severity, last %d runs"' % len(rows),
        "    x-axis [%s]" % ", ".join(str(index + 1) for index in range(len(rows))),
        '    y-axis "findings" 0 --> %d' % top,
        "    bar [%s]" % ", ".join(str(row["total"]) for row in rows),
    ]
    lines += [
        "    line [%s]" % ", ".join(str(row["counts"][index]) for row in rows)
        for index, severity in enumerate(SEVERITIES)
        if any(row["counts"][index] for row in rows)
    ]
    shown = [severity for index, severity in enumerate(SEVERITIES) if any(row["counts"][index] for row in rows)]
    return {"rows": rows, "mermaid": "\n".join(lines), "lines": ", ".join(shown)}


def waivers_view(findings):
    """Expired waivers (their findings count again) and waivers expiring within 14 days."""
    view = {"expired": [], "expiring": []}
    for finding in sorted(findings, key=action_order):
        waiver = finding.get("waiver")
        if waiver and waiver["state"] in view:
            view[waiver["state"]].append(
                {
                    "severity": finding["severity"],
                    "about": _about(finding),
                    "id": markdown_text.code(finding["id"]),
                    "waiver": waiver_text(waiver),
                    "reason": markdown_text.text(waiver["reason"]),
                }
            )
    return view


def rules_file_view(document):
    """The team's policies broken (their reason), policies and tolerances matching nothing, and
    every threshold a tolerance of the rules file set in place of the inventory's."""
    broken = [f for f in sorted(document["findings"], key=action_order) if "policy" in f and not f["expected"]]
    return {
        "broken": [
            {
                "severity": finding["severity"],
                "about": _about(finding),
                "id": markdown_text.code(finding["id"]),
                "check": markdown_text.code(finding["check"]),
                "where": markdown_text.text(join_names(finding["environments"])),
                "reason": markdown_text.text(finding["policy"]["reason"]),
                "source": markdown_text.text(finding["policy"]["source"]),
            }
            for finding in broken
        ],
        "unmatched": [
            {
                "what": markdown_text.text(noun),
                "path": markdown_text.code(entry["path"]),
                "source": markdown_text.text(entry["source"]),
            }
            for noun, name in (("policy", "unmatched_policies"), ("tolerance", "unmatched_tolerances"))
            for entry in document.get(name) or []
        ],
        "tolerances": [
            {
                "about": "%s · %s" % (markdown_text.text(entry["area"]), markdown_text.text(entry["subject"])),
                "column": markdown_text.text(entry["column"]),
                "name": markdown_text.code(entry["name"]),
                "value": markdown_text.code(str(entry["value"])),
                "default": markdown_text.code(str(entry["default"])),
                "source": markdown_text.text(entry["source"]),
                "reason": markdown_text.text(entry["reason"]),
            }
            for entry in document.get("tolerances") or []
        ],
    }


def _area_tables(given):
    """An area's tables with every cell escaped, and its Mermaid charts fenced (their text is
    made of safe characters by the area: names reduced to letters, digits, _ . -)."""
    return {
        "tables": [
            {
                "title": markdown_text.text(table["title"]),
                "header": [markdown_text.text(cell) for cell in table["header"]],
                "rule": "|".join("---" for _ in table["header"]),
                "rows": [[markdown_text.text(str(cell)) for cell in row] for row in table["rows"]],
            }
            for table in given.get("tables") or []
        ],
        "charts": [markdown_text.fenced_block(chart, "mermaid") for chart in given.get("charts") or []],
    }


def build_view(document):
    """What the Markdown template prints, in order; every text from a host or inventory escaped."""
    groups = environment_groups(document["columns"])
    findings = document["findings"]
    summary = document["summary"]
    areas = []
    for area in document["areas"]:
        own = [f for f in findings if f["area"] == area]
        subjects = sorted({f["subject"] for f in own})
        areas.append(
            {
                "name": markdown_text.text(area),
                "subjects": [
                    {
                        "name": markdown_text.text(subject),
                        "rows": [_row(f, groups) for f in own if f["subject"] == subject and not f["expected"]],
                    }
                    for subject in subjects
                    if any(f["subject"] == subject and not f["expected"] for f in own)
                ],
                "expected": [_row(f, groups) for f in own if f["expected"]],
                "clean": not any(not f["expected"] for f in own),
            }
        )
        areas[-1].update(_area_tables((document.get("tables") or {}).get(area) or {}))
    plan = sorted((f for f in findings if not f["expected"]), key=action_order)
    return {
        "generated_at": markdown_text.text(document["generated_at"]),
        "inventory": markdown_text.code(document["inventory"]),
        "baseline": markdown_text.text(document["baseline"]),
        "labels": [markdown_text.text(environment) for environment, _ in groups],
        "hosts": _host_rows(document, groups),
        "severity_counts": [{"severity": s, "count": summary["by_severity"][s]} for s in SEVERITIES],
        "area_counts": [{"area": markdown_text.text(a), "count": n} for a, n in summary["by_area"].items()],
        "summary": summary,
        "not_compared": ", ".join(markdown_text.text(area) for area in summary["not_compared"]),
        "gate": {
            "fail_on": markdown_text.code(document["gate"]["fail_on"]),
            "fail_on_new": markdown_text.code(document["gate"]["fail_on_new"]),
            "new_count": document["gate"]["new_count"],
            "tripped": document["gate"]["tripped"],
            "count": document["gate"]["count"],
        },
        "plan": [dict(_row(f, groups, table=False), number=index + 1) for index, f in enumerate(plan)],
        "since": since_view(document),
        "baseline_columns": baseline_view(document),
        "trend": trend_view(document["history"]["trend"]),
        "waivers": waivers_view(findings),
        "rules_file": rules_file_view(document),
        "root_causes": root_causes.view(document),
        "areas": areas,
        "stale_rules": [
            {
                "path": markdown_text.code(rule["path"]),
                "source": markdown_text.text(rule["source"]),
                "reason": markdown_text.text(rule["reason"] or ""),
            }
            for rule in document["stale_rules"]
        ],
        "errors": [
            {
                "host": markdown_text.text(error["host"] or "—"),
                "area": markdown_text.text(error["area"] or "—"),
                "message": markdown_text.text(error["message"] or ""),
            }
            for error in document["errors"]
        ],
    }


def report_body(markdown):
    """The report without its generated-at line: equal for two audits of the same state."""
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("Generated: "))
