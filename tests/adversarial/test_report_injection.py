"""A report cannot be used against its reader: hostile names and values render as text.

The report is rendered with the project's template and then by markdown-it-py (CommonMark with
GFM tables, as GitHub renders it); the HTML is parsed and checked: every table keeps its columns,
no tag, link or image comes from data, and every value reads as it is (invisible characters
written as escapes).
"""

import html.parser
import json
import pathlib

from markdown_it import MarkdownIt

from ansible_collections.envparity.audit.plugins.plugin_utils.areas import REPORT_TEMPLATE
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import KINDS, make_finding
from ansible_collections.envparity.audit.plugins.plugin_utils.markdown_text import visible
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import render_markdown

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = REPORT_TEMPLATE
RENDERER = MarkdownIt("commonmark").enable("table")
# What the template itself produces; anything else would come from data.
TEMPLATE_TAGS = {
    "h1", "h2", "h3", "p", "strong", "br", "ol", "ul", "li", "code", "pre",
    "table", "thead", "tbody", "tr", "th", "td", "details", "summary",
}  # fmt: skip
TEMPLATE_ATTRIBUTES = {("style", "text-align:right"), ("class", "language-diff"), ("class", "language-mermaid")}

SCRIPT = "<script>alert(1)</script>"
LINK = "[x](javascript:alert(1))"
IMAGE = "![i](http://x)"
TICKS = "a`b``c```d"
HOSTILE_VALUES = [
    SCRIPT,
    LINK,
    IMAGE,
    TICKS,
    "`",
    "p|q||r",
    "bidi\u202eevil",
    "zero\u200bwidth",
    "C:\\new\\table\\",
    "line\nbreak",
    "<project>",
    "&amp; **b** ~~s~~ $m$",
]


class Page(html.parser.HTMLParser):
    """Rendered HTML: its tags with attributes, its tables as rows of cell texts, its text."""

    def __init__(self, source):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.tables = []
        self.text = ""
        self._cell = None
        self.feed(source)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        self.text += data
        if self._cell is not None:
            self._cell += data


def hostile_audit():
    dev, prod = "dev|`x`", "prod<project>\u202e"
    findings = []
    for index, value in enumerate(HOSTILE_VALUES):
        findings.append(
            make_finding(
                area="env",
                subject="app%s|<b>" % SCRIPT,
                key="K%d%s" % (index, value),
                kind="changed",
                check="env.value_changed",
                severity="low",
                values={dev: value, prod: value + "|2"},
                environments=[prod],
                message="%s differs %s" % (value, LINK),
                recommendation="Align %s" % IMAGE,
            )
        )
    findings[0]["detail"] = "--- dev\n+++ prod\n-```\n+````%s\n</details>\n" % SCRIPT
    findings[1]["expected"], findings[1]["reason"] = True, "because %s" % LINK
    return {
        "columns": [
            {"label": dev, "environment": dev, "host": "dev|vm"},
            {"label": prod, "environment": prod, "host": "prod%s" % IMAGE},
        ],
        "states": {
            "dev|vm": {"status": "ok", "reason": None},
            "prod%s" % IMAGE: {"status": "unreachable", "reason": "ssh: %s" % SCRIPT},
        },
        "production": [prod],
        "audited_areas": ["env"],
        "environments": [{"name": dev, "hosts": ["dev|vm"]}, {"name": prod, "hosts": ["prod%s" % IMAGE]}],
        "findings": findings,
        "stale_rules": [{"path": "env/%s/`x`" % LINK, "reason": SCRIPT, "source": "rules|%s.yml" % TICKS}],
        "errors": [{"host": "dev|vm", "area": "env", "message": "%s\n# not a heading" % IMAGE}],
        "gate": {"fail_on": "high", "tripped": False, "count": 0},
    }


def render(audit, inventory):
    markdown = render_markdown(str(TEMPLATE), build_view(build_document(audit, "2026-01-01T00:00:00Z", inventory)))
    return markdown, Page(RENDERER.render(markdown))


def finding_rows(page):
    """Rows of the area tables (key, kind, check, severity, one cell per column)."""
    return [row for table in page.tables for row in table[1:] if len(row) > 3 and row[1] in KINDS]


def cell_text(value):
    """What a value cell reads as (report_model.md_value, rendered)."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        return "⚠ could not collect"
    return visible(value) if value else "(empty)"


def rows_match_findings(page, report):
    """Each unexpected finding of the JSON is one area-table row reading exactly as its values."""
    rows = finding_rows(page)
    labels = [column["label"] for column in report["columns"]]
    findings = [f for f in report["findings"] if not f["expected"]]
    for finding in findings:
        expected = [visible(finding["key"]), finding["kind"], finding["check"], finding["severity"]]
        assert expected + [cell_text(finding["values"].get(label)) for label in labels] in rows, finding
    assert len(rows) == len(findings)
    return rows


def test_hostile_findings_render_as_text_in_intact_tables():
    audit = hostile_audit()
    _, page = render(audit, "inventory/%s<project>" % LINK)
    assert {tag for tag, _ in page.tags} <= TEMPLATE_TAGS
    shown = {attr for _, attrs in page.tags for attr in attrs}
    # the template's own (a hostile audit has a diff detail and counts, no chart), nothing from data
    assert {("style", "text-align:right"), ("class", "language-diff")} <= shown <= TEMPLATE_ATTRIBUTES
    for table in page.tables:
        assert len({len(row) for row in table}) == 1, table
    dev, prod = (column["label"] for column in audit["columns"])
    assert page.tables[0][1:] == [
        [visible(dev), "dev|vm", "baseline", "ok"],
        [visible(prod), "prod" + IMAGE, "production", "unreachable: ssh: " + SCRIPT],
    ]
    rows = {row[0]: row for row in finding_rows(page)}
    for finding in audit["findings"]:
        if finding["expected"]:
            continue
        assert rows[visible(finding["key"])][1:] == [
            "changed",
            "env.value_changed",
            "low",
            visible(finding["values"][dev]),
            visible(finding["values"][prod]),
        ]
    assert len(rows) == len(HOSTILE_VALUES) - 1
    assert "Inventory: inventory/%s<project>" % LINK in page.text
    assert "### " not in page.text and "<project>" in page.text


def test_expected_rules_errors_and_plan_read_as_they_are():
    audit = hostile_audit()
    _, page = render(audit, "i")
    expected = [row for table in page.tables for row in table if row[0] == visible(audit["findings"][1]["subject"])]
    assert expected == [
        [
            visible(audit["findings"][1]["subject"]),
            visible(audit["findings"][1]["key"]),
            "changed",
            "because " + LINK,
            visible(LINK),
            visible(LINK + "|2"),
        ]
    ]
    assert "env/%s/`x` (rules|%s.yml): matched nothing. %s" % (LINK, TICKS, SCRIPT) in page.text
    assert "host dev|vm, area env: %s\\n# not a heading" % IMAGE in page.text
    assert "**low** · env" not in page.text  # the plan's markup is the template's, data is not markup
    assert (
        "app%s|<b> · %s (new): %s differs %s" % (SCRIPT, visible(audit["findings"][0]["key"]), SCRIPT, LINK)
        in page.text
    )


def test_a_diff_detail_stays_in_its_block_and_its_summary_is_text():
    _, page = render(hostile_audit(), "i")
    assert "-```\n+````%s\n</details>\n" % SCRIPT in page.text
    assert "K0%s: how it differs" % SCRIPT in page.text
    assert [tag for tag, _ in page.tags].count("details") == 1


def test_the_lab_inventory_name_keeps_its_angle_brackets():
    _, page = render(hostile_audit(), "inventory/<project>/hosts.yml")
    assert "Inventory: inventory/<project>/hosts.yml" in page.text


def test_an_audit_of_hostile_env_files_renders_safely(audit, tmp_path):
    """End to end: two local hosts whose env files have hostile keys and values."""
    dev_env = tmp_path / "dev.env"
    prod_env = tmp_path / "prod.env"
    dev_env.write_text(
        "%s=one\nLINKED=%s\nPICTURE=%s\nTICKS=%s\nPIPED=a|b\nWINDOWS='C:\\new\\table'\nZW\u200b=1\nMARK=<project>\n"
        % (SCRIPT, LINK, IMAGE, TICKS)
    )
    prod_env.write_text(
        "%s=two\nLINKED=[y](javascript:alert(2))\nPICTURE=![j](http://y)\nTICKS=``\nPIPED=c||d\n"
        "WINDOWS='C:\\new\\other'\nZW=1\nMARK=safe\u202eevil\n" % SCRIPT
    )
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    python = "{{ ansible_playbook_python }}"
    (inventory / "hosts.yml").write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "dev": {"hosts": {"dev|vm": {"drift_env_files": [{"name": "app", "path": str(dev_env)}]}}},
                        "prod": {"hosts": {"prod`vm": {"drift_env_files": [{"name": "app", "path": str(prod_env)}]}}},
                    },
                    "vars": {"ansible_connection": "local", "ansible_python_interpreter": python},
                }
            }
        )
    )
    result = audit(cmdline="-i %s --tags env" % inventory)
    assert result.rc == 0, result.stdout
    page = Page(RENDERER.render(result.markdown))
    assert {tag for tag, _ in page.tags} <= TEMPLATE_TAGS
    assert {attr for _, attrs in page.tags for attr in attrs} <= TEMPLATE_ATTRIBUTES
    for table in page.tables:
        assert len({len(row) for row in table}) == 1, table
    rows = {row[0]: row[1:] for row in rows_match_findings(page, result.report)}
    values = {f["key"]: f["values"] for f in result.findings() if f["check"] == "env.value_changed"}
    assert values["PIPED"] == {"dev": "a|b", "prod": "c||d"}
    assert values["WINDOWS"] == {"dev": "C:\\new\\table", "prod": "C:\\new\\other"}
    assert rows["PIPED"][-2:] == ["a|b", "c||d"]
    assert rows["WINDOWS"][-2:] == ["C:\\new\\table", "C:\\new\\other"]
    assert rows["MARK"][-2:] == ["<project>", "safe\\u202eevil"]
    assert "ZW\\u200b" in rows and "ZW" in rows  # two keys that would look identical
    assert "dev|vm" in page.tables[0][1] and "prod`vm" in page.tables[0][2]


def test_the_lab_report_renders_with_intact_tables_and_its_placeholders(audit):
    """The lab's own report: `<project>` in a compose volume stays text, every table keeps its columns."""
    result = audit()
    assert result.rc == 0, result.stdout
    page = Page(RENDERER.render(result.markdown))
    assert {tag for tag, _ in page.tags} <= TEMPLATE_TAGS
    assert {attr for _, attrs in page.tags for attr in attrs} <= TEMPLATE_ATTRIBUTES
    for table in page.tables:
        assert len({len(row) for row in table}) == 1, table
    rows = rows_match_findings(page, result.report)
    volumes = [row for row in rows if row[0] == "services.web.volumes"]
    assert [row[-2] for row in volumes] == ["<project>/site:/www/site:ro"]
