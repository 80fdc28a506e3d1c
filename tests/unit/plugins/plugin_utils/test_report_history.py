"""The report's history parts: 'Since the last audit', ages in the action plan, the trend chart,
expired and expiring waivers; every host-given text escaped."""

import jsonschema

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import with_ids
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import (
    age_text,
    build_document,
    build_view,
    trend_view,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import render_markdown
from ansible_collections.envparity.audit.plugins.plugin_utils.timeline import (
    compare_with,
    new_gate,
    resolved_record,
    state_row,
    without_history,
)
from tests.unit.plugins.plugin_utils.test_report_model import SCHEMA, TEMPLATE, sample_audit

T0 = 1763107200  # 2025-11-14T08:00:00Z
NOW = T0 + 23 * 86400
HOSTILE = "X|<b>*y*</b>"


def audited_since(earlier_rows):
    audit = sample_audit()
    with_ids(audit["findings"])
    previous = {
        "areas": ["env"],
        "generated_at": "2025-11-14T08:00:00Z",
        "recorded_at": T0,
        "states": {row["id"]: row for row in earlier_rows},
    }
    for finding in audit["findings"]:
        finding.pop("state", None)
    outcome = compare_with(audit["findings"], ["env"], previous, "2025-12-07T08:00:00Z", NOW)
    audit["history"] = dict(
        without_history(audit["findings"], "2025-12-07T08:00:00Z", "r2"),
        source="previous run",
        compared_with={"generated_at": "2025-11-14T08:00:00Z", "run_id": "r1"},
        counts=outcome["counts"],
        resolved=[resolved_record(row) for row in outcome["resolved"]],
        trend=[
            {"generated_at": "2025-11-14T08:00:00Z", "unexpected": {"high": 3, "low": 1}},
            {"generated_at": "2025-12-07T08:00:00Z", "unexpected": {"high": 2, "low": 1}},
        ],
    )
    audit["gate"] = new_gate({"fail_on": "never", "tripped": False, "count": 0}, audit["findings"], "high")
    return audit


def earlier_of(audit, keys, first_seen="2025-11-14T08:00:00Z"):
    with_ids(audit["findings"])
    rows = []
    for finding in audit["findings"]:
        if finding["key"] in keys:
            rows.append(state_row(finding, state="new", first_seen=first_seen))
    return rows


def render(audit):
    document = build_document(audit, "2025-12-07T08:00:00Z", "inventory/lab")
    jsonschema.validate(document, SCHEMA)
    return document, render_markdown(str(TEMPLATE), build_view(document))


def test_since_the_last_audit_lists_new_changed_and_resolved_with_ages():
    base = sample_audit()
    rows = earlier_of(base, {"DEBUG", "LOG_LEVEL"})
    rows[1]["digest"] = "other values then"  # LOG_LEVEL: same id, other values
    gone = dict(rows[0], id="0123456789abcdef", key=HOSTILE, severity="medium")
    document, markdown = render(audited_since([*rows, gone]))
    states = {f["key"]: (f["state"], f["age_days"]) for f in document["findings"]}
    assert states["DEBUG"] == ("persisting", 23) and states["LOG_LEVEL"] == ("changed", 23)
    assert states["*"] == ("new", 0)
    assert "Compared with the previous run of 2025-11-14T08:00:00Z: 1 new, 1 changed, 1 persisting, 1 resolved." in (
        markdown
    )
    since = markdown.split("## Since the last audit", 1)[1].split("## Environments", 1)[0]
    assert "- **high** · env · worker · `*` (`" in since
    assert "for 23 days, since 2025-11-14; values changed" in since
    # the resolved key from the store is escaped like any other host text
    # the resolved key from the store is shown as code like any other host text: no HTML, no emphasis
    assert "- **medium** · env · app · `X|<b>*y*</b>` (`0123456789abcdef`), present for 23 days, since 2025-11-14" in (
        since
    )
    assert "1. **high** · env · app · `DEBUG` (for 23 days, since 2025-11-14): " in markdown
    assert "Gate: fail on `never`, or on new findings at `high`: **tripped** by 0 finding(s) and 1 new." in markdown


def test_the_trend_is_a_mermaid_chart_and_a_table():
    view = trend_view(
        [
            {"generated_at": "2025-11-14T08:00:00Z", "unexpected": {"high": 3, "low": 1}},
            {"generated_at": "2025-12-07T08:00:00Z", "unexpected": {"high": 2}},
        ]
    )
    assert view["mermaid"].splitlines() == [
        "xychart-beta",
        '    title "Unexpected findings by severity, last 2 runs"',
        "    x-axis [1, 2]",
        '    y-axis "findings" 0 --> 4',
        "    bar [4, 2]",
        "    line [3, 2]",
        "    line [1, 0]",
    ]
    assert view["lines"] == "high, low"
    assert [row["total"] for row in view["rows"]] == [4, 2]
    assert trend_view([{"generated_at": "2025-11-14T08:00:00Z", "unexpected": {}}])["mermaid"] is None


def test_expired_and_expiring_waivers_are_listed_with_owner_and_utc_expiry():
    audit = sample_audit()
    waiver = {
        "expires": "2025-12-01T00:00:00Z",
        "owner": "alice <ops>",
        "approver": None,
        "ticket": "OPS-42",
        "source": "rules.yml rule 2 (line 4)",
        "reason": "incident",
    }
    audit["findings"][0]["waiver"] = dict(waiver, state="expired")
    audit["findings"][2]["waiver"] = dict(waiver, state="expiring", expires="2025-12-10T00:00:00Z")
    document, markdown = render(audit)
    assert document["summary"]["expired_waivers"] == 1 and document["summary"]["expiring_waivers"] == 1
    assert (
        "- **expired waiver**: **high** · env · app · `DEBUG` (`%s`): expires 2025-12-01T00:00:00Z, owner "
        "alice \\<ops\\>, ticket OPS-42 (rules.yml rule 2 (line 4)). No longer waived" % document["findings"][0]["id"]
    ) in markdown
    assert "- expiring soon (within 14 days): env · app · `APP_ENV`" in markdown


def test_age_text():
    assert age_text({"state": "new"}) == "new"
    assert age_text({"state": "persisting", "age_days": 0, "first_seen": "2025-12-07T08:00:00Z"}) == (
        "for less than a day, since 2025-12-07"
    )
    assert age_text({"state": "changed", "age_days": 1, "first_seen": "2025-12-06T08:00:00Z"}) == (
        "for 1 day, since 2025-12-06; values changed"
    )


def test_a_run_compared_with_nothing_says_why():
    audit = sample_audit()
    _, markdown = render(audit)  # no history at all: the store is off
    assert "History is off (drift_history: false): every finding is new." in markdown
    audit = sample_audit()
    audit["history"] = dict(
        without_history(audit["findings"], "2025-12-07T08:00:00Z", "r"),
        source="previous run",
        error="/r/history.sqlite is not an SQLite database (a corrupt or foreign file); it is left as it is",
    )
    _, markdown = render(audit)
    assert "The previous run could not be read: every finding is new." in markdown
    assert "**History not read: /r/history.sqlite is not an SQLite database" in markdown
    audit["history"]["error"] = None
    _, markdown = render(audit)
    assert "No earlier run of this inventory and these environments yet (previous run)" in markdown
