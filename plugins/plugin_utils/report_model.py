"""The report model: the JSON sidecar document and the Markdown view the template iterates over.

Everything the template shows is computed here; the template only loops and prints.
Pure Python; no Ansible imports.
"""

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


def md_text(text):
    """Plain text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def md_value(cell):
    """One value cell: absent, could not collect, empty, or the (already redacted) value as code."""
    if cell is None:
        return "—"
    if is_unknown(cell):
        return "⚠ could not collect"
    if cell == "":
        return "(empty)"
    text = md_text(cell)
    return text if "`" in text else "`%s`" % text


def _row(finding, labels):
    return {
        "key": md_value(finding["key"]),
        "kind": finding["kind"],
        "check": finding["check"],
        "severity": finding["severity"],
        "cells": [md_value(finding["values"].get(label)) for label in labels],
        "message": md_text(finding["message"]),
        "recommendation": md_text(finding["recommendation"]),
        "reason": md_text(finding["reason"] or ""),
        # a unified diff of two bodies (views, functions), shown in a collapsible block
        "detail": finding["detail"].replace("```", "` ` `") if finding.get("detail") else None,
    }


def build_view(document):
    """What the Markdown template prints, in order."""
    labels = [column["label"] for column in document["columns"]]
    findings = document["findings"]
    summary = document["summary"]
    areas = []
    for area in document["areas"]:
        own = [f for f in findings if f["area"] == area]
        subjects = sorted({f["subject"] for f in own})
        areas.append(
            {
                "name": area,
                "subjects": [
                    {
                        "name": md_text(subject),
                        "rows": [_row(f, labels) for f in own if f["subject"] == subject and not f["expected"]],
                    }
                    for subject in subjects
                    if any(f["subject"] == subject and not f["expected"] for f in own)
                ],
                "expected": [dict(_row(f, labels), subject=md_text(f["subject"])) for f in own if f["expected"]],
                "clean": not any(not f["expected"] for f in own),
            }
        )
    plan = sorted((f for f in findings if not f["expected"]), key=action_order)
    return {
        "generated_at": document["generated_at"],
        "inventory": md_text(document["inventory"]),
        "baseline": document["baseline"],
        "labels": labels,
        "hosts": [
            {
                "environment": column["environment"],
                "host": column["host"],
                "label": column["label"],
                "role": "baseline"
                if column["label"] == document["baseline"]
                else ("production" if column["production"] else ""),
                "status": column["status"],
                "reason": md_text(column["reason"] or ""),
            }
            for column in document["columns"]
        ],
        "severity_counts": [{"severity": s, "count": summary["by_severity"][s]} for s in SEVERITIES],
        "area_counts": [{"area": a, "count": n} for a, n in summary["by_area"].items()],
        "summary": summary,
        "gate": document["gate"],
        "plan": [
            dict(_row(f, labels), area=f["area"], subject=md_text(f["subject"]), number=index + 1)
            for index, f in enumerate(plan)
        ],
        "areas": areas,
        "stale_rules": [{k: md_text(v) for k, v in rule.items()} for rule in document["stale_rules"]],
        "errors": [
            {"host": error["host"] or "—", "area": error["area"] or "—", "message": md_text(error["message"] or "")}
            for error in document["errors"]
        ],
    }


def report_body(markdown):
    """The report without its generated-at line: equal for two audits of the same state."""
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("Generated: "))
