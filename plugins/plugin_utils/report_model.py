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

SCHEMA_VERSION = 1
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
        },
        "gate": dict(audit["gate"]),
        "findings": findings,
        "stale_rules": [
            {"path": r["path"], "reason": r["reason"], "source": r["source"]} for r in audit["stale_rules"]
        ],
        "errors": list(audit["errors"]),
    }
    document.update({name: audit[name] for name in ("root_causes", "stabilization_plan") if name in audit})
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


def _row(finding, groups, table=True):
    """A finding as the template prints it: every field escaped for a table cell or a list item."""
    row = {
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
            "tripped": document["gate"]["tripped"],
            "count": document["gate"]["count"],
        },
        "plan": [dict(_row(f, groups, table=False), number=index + 1) for index, f in enumerate(plan)],
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
