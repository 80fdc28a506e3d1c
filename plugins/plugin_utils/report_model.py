"""The report model: the JSON sidecar document and the Markdown view the template iterates over.

Everything the template shows is computed here; the template only loops and prints.
Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils import markdown_text
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import SEVERITIES, action_order, is_unknown

SCHEMA_VERSION = 1


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
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "envparity",
        "generated_at": generated_at,
        "inventory": inventory,
        "baseline": columns[0]["label"],
        "columns": columns,
        "areas": list(audit["audited_areas"]),
        "summary": {
            "findings": len(findings),
            "unexpected": len(unexpected),
            "expected": len(findings) - len(unexpected),
            "by_severity": {
                severity: sum(1 for f in unexpected if f["severity"] == severity) for severity in SEVERITIES
            },
            "by_area": {area: sum(1 for f in unexpected if f["area"] == area) for area in audit["audited_areas"]},
            "unknown": sum(1 for f in findings if f["kind"] == "unknown"),
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


def md_value(cell, table=True):
    """One value cell: absent, could not collect, empty, or the (already redacted) value as code."""
    if cell is None:
        return "—"
    if is_unknown(cell):
        return "⚠ could not collect"
    if cell == "":
        return "(empty)"
    return markdown_text.code(cell, table=table)


def _row(finding, labels, table=True):
    """A finding as the template prints it: every field escaped for a table cell or a list item."""
    row = {
        "key": md_value(finding["key"], table),
        "kind": markdown_text.text(finding["kind"]),
        "check": markdown_text.code(finding["check"], table),
        "severity": markdown_text.text(finding["severity"]),
        "area": markdown_text.text(finding["area"]),
        "subject": markdown_text.text(finding["subject"]),
        "cells": [md_value(finding["values"].get(label), table) for label in labels],
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
    labels = [column["label"] for column in document["columns"]]
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
                        "rows": [_row(f, labels) for f in own if f["subject"] == subject and not f["expected"]],
                    }
                    for subject in subjects
                    if any(f["subject"] == subject and not f["expected"] for f in own)
                ],
                "expected": [_row(f, labels) for f in own if f["expected"]],
                "clean": not any(not f["expected"] for f in own),
            }
        )
    plan = sorted((f for f in findings if not f["expected"]), key=action_order)
    return {
        "generated_at": markdown_text.text(document["generated_at"]),
        "inventory": markdown_text.code(document["inventory"]),
        "baseline": markdown_text.text(document["baseline"]),
        "labels": [markdown_text.text(label) for label in labels],
        "hosts": [
            {
                "environment": markdown_text.text(column["environment"]),
                "host": markdown_text.text(column["host"]),
                "label": markdown_text.text(column["label"]),
                "role": "baseline"
                if column["label"] == document["baseline"]
                else ("production" if column["production"] else ""),
                "status": markdown_text.text(column["status"]),
                "reason": markdown_text.text(column["reason"] or ""),
            }
            for column in document["columns"]
        ],
        "severity_counts": [{"severity": s, "count": summary["by_severity"][s]} for s in SEVERITIES],
        "area_counts": [{"area": markdown_text.text(a), "count": n} for a, n in summary["by_area"].items()],
        "summary": summary,
        "gate": {
            "fail_on": markdown_text.code(document["gate"]["fail_on"]),
            "tripped": document["gate"]["tripped"],
            "count": document["gate"]["count"],
        },
        "plan": [dict(_row(f, labels, table=False), number=index + 1) for index, f in enumerate(plan)],
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
