"""Report model, Markdown view and rendering, JSON Schema; on a hand-built audit."""

import json
import pathlib

import jsonschema

from ansible_collections.envparity.audit.plugins.plugin_utils.areas import REPORT_TEMPLATE
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import make_finding, unknown_cell
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import (
    build_document,
    build_view,
    md_value,
    report_body,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import render_markdown, write_report

ROOT = pathlib.Path(__file__).resolve().parents[4]
SCHEMA = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
TEMPLATE = REPORT_TEMPLATE


def sample_audit():
    findings = [
        make_finding(
            area="env",
            subject="app",
            key="DEBUG",
            kind="policy",
            check="env.debug_enabled",
            severity="high",
            values={"dev": "true", "prod": "true"},
            environments=["prod"],
            message="DEBUG is true in production (prod).",
            recommendation="Set DEBUG=false in production.",
        ),
        make_finding(
            area="env",
            subject="app",
            key="LOG_LEVEL",
            kind="changed",
            check="env.value_changed",
            severity="low",
            values={"dev": "DEBUG", "prod": "a|b"},
            environments=["prod"],
            message="LOG_LEVEL differs.",
            recommendation="Align it.",
        ),
        make_finding(
            area="env",
            subject="app",
            key="APP_ENV",
            kind="changed",
            check="env.value_changed",
            severity="low",
            values={"dev": "d", "prod": None},
            environments=["prod"],
            message="m",
            recommendation="r",
        ),
        make_finding(
            area="env",
            subject="worker",
            key="*",
            kind="unknown",
            check="collect.failed",
            severity="high",
            values={"dev": "collected", "prod": unknown_cell("x")},
            environments=["prod"],
            message="could not",
            recommendation="retry",
        ),
    ]
    findings[2]["expected"], findings[2]["reason"] = True, "each environment names itself"
    return {
        "columns": [
            {"label": "dev", "environment": "dev", "host": "d"},
            {"label": "prod", "environment": "prod", "host": "p"},
        ],
        "states": {"d": {"status": "ok", "reason": None}, "p": {"status": "ok", "reason": None}},
        "production": ["prod"],
        "audited_areas": ["env"],
        "environments": [{"name": "dev", "hosts": ["d"]}, {"name": "prod", "hosts": ["p"]}],
        "findings": findings,
        "stale_rules": [{"path": "env/app/LEGACY_*", "reason": "old", "source": "rules.yml rule 3"}],
        "errors": [],
        "gate": {"fail_on": "high", "tripped": True, "count": 2},
    }


def test_document_validates_and_counts():
    document = build_document(sample_audit(), "2026-01-01T00:00:00Z", "inventory/lab")
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["by_severity"] == {"critical": 0, "high": 2, "medium": 0, "low": 1, "info": 0}
    assert document["summary"]["expected"] == 1
    assert document["summary"]["unknown"] == 1
    assert document["baseline"] == "dev"


def test_schema_rejects_a_secret_shaped_cell_and_missing_fields():
    document = build_document(sample_audit(), "t", "i")
    document["findings"][0]["values"]["prod"] = {"fp": "abc"}
    try:
        jsonschema.validate(document, SCHEMA)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("a cell that is neither null, text nor unknown must be rejected")


def test_markdown_rendering(tmp_path):
    document = build_document(sample_audit(), "2026-01-01T00:00:00Z", "inventory/lab")
    markdown = render_markdown(str(TEMPLATE), build_view(document))
    assert markdown.startswith("# envparity drift report\n")
    assert "| key | kind | check | severity | dev | prod |" in markdown
    assert "| `LOG_LEVEL` | changed | `env.value_changed` | low | `DEBUG` | `a\\|b` |" in markdown
    assert "1. **high** · env · app · `DEBUG`" in markdown
    assert "each environment names itself" in markdown
    assert "`env/app/LEGACY_*`" in markdown
    assert "**tripped** by 2 finding(s)" in markdown
    assert "⚠ could not collect" in markdown
    paths = write_report(str(tmp_path), "20260101T000000.000000Z-run1", markdown, document)
    assert pathlib.Path(paths["latest_markdown"]).read_text() == markdown
    assert json.loads(pathlib.Path(paths["json"]).read_text()) == document
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20260101T000000.000000Z-run1",
        "latest",
        "latest.json",
        "latest.md",
    ]
    assert sorted(p.name for p in (tmp_path / "20260101T000000.000000Z-run1").iterdir()) == [
        "report.json",
        "report.md",
    ]


def test_report_body_ignores_only_the_generated_line():
    one = render_markdown(str(TEMPLATE), build_view(build_document(sample_audit(), "2026-01-01T00:00:00Z", "i")))
    two = render_markdown(str(TEMPLATE), build_view(build_document(sample_audit(), "2027-02-02T00:00:00Z", "i")))
    assert one != two
    assert report_body(one) == report_body(two)


def test_md_value_markers():
    assert md_value(None) == "—"
    assert md_value(unknown_cell("r")) == "⚠ could not collect"
    assert md_value("") == "(empty)"
    assert md_value("a\nb") == "`a\\nb`"
    assert md_value("a|b") == "`a\\|b`"
    assert md_value("a|b", table=False) == "`a|b`"


def test_a_finding_detail_is_a_collapsible_diff():
    audit = sample_audit()
    audit["findings"][0]["detail"] = "--- dev\n+++ prod\n-select 1\n+select 2"
    document = build_document(audit, "t", "i")
    jsonschema.validate(document, SCHEMA)
    markdown = render_markdown(str(TEMPLATE), build_view(document))
    assert "<details><summary><code>DEBUG</code>: how it differs</summary>" in markdown
    assert "```diff\n--- dev\n+++ prod\n-select 1\n+select 2\n```" in markdown
