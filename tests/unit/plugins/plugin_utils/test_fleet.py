"""Fleets in the Markdown report: hosts that agree are one group, names folded, report length."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.areas import REPORT_TEMPLATE
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import join_names, make_finding
from ansible_collections.envparity.audit.plugins.plugin_utils.fleet import environment_groups, group_cell
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import render_markdown


@pytest.mark.parametrize(
    ("names", "text"),
    [
        ([], ""),
        (["a"], "a"),
        (["a", "b"], "a and b"),
        (["a", "b", "c", "d"], "a, b, c and d"),
        (["a", "b", "c", "d", "e"], "a, b, c and 2 more"),
        (["h%02d" % n for n in range(50)], "h00, h01, h02 and 47 more"),
    ],
)
def test_join_names_folds_beyond_a_few(names, text):
    assert join_names(names) == text


@pytest.mark.parametrize(
    ("values", "text"),
    [
        (["`INFO`"] * 3, "`INFO`"),
        (["`INFO`"] * 49 + ["`DEBUG`"], "49 hosts: `INFO` · h49: `DEBUG`"),
        (["`A`", "`B`", "`A`"], "h00 and h02: `A` · h01: `B`"),
        (["`A`"] * 5 + ["`B`"] * 5, "5 hosts: `A` · 5 hosts: `B`"),
    ],
)
def test_a_cell_groups_the_hosts_that_agree_largest_first(values, text):
    assert group_cell(values, ["h%02d" % n for n in range(len(values))]) == text


def test_columns_are_grouped_by_environment_in_order():
    columns = [{"environment": e, "label": label} for e, label in (("dev", "dev"), ("prod", "p/1"), ("prod", "p/2"))]
    assert [(name, [c["label"] for c in members]) for name, members in environment_groups(columns)] == [
        ("dev", ["dev"]),
        ("prod", ["p/1", "p/2"]),
    ]


def audit_of(prod_hosts, drift_keys=20):
    """The same drift (every key differs in prod) with one or many prod hosts that agree."""
    labels = ["prod"] if prod_hosts == 1 else ["prod/web%02d" % n for n in range(prod_hosts)]
    columns = [{"label": "dev", "environment": "dev", "host": "dev-laptop"}] + [
        {"label": label, "environment": "prod", "host": label.rsplit("/", 1)[-1]} for label in labels
    ]
    findings = [
        make_finding(
            area="env",
            subject="app",
            key="KEY_%02d" % n,
            kind="changed",
            check="env.value_changed",
            severity="low",
            values={"dev": "dev-value", **{label: "prod-value" for label in labels}},
            environments=labels,
            message="KEY_%02d differs on %s." % (n, join_names(labels)),
            recommendation="Align KEY_%02d with dev." % n,
        )
        for n in range(drift_keys)
    ]
    return {
        "columns": columns,
        "environments": [
            {"name": "dev", "hosts": ["dev-laptop"]},
            {"name": "prod", "hosts": [c["host"] for c in columns[1:]]},
        ],
        "states": {c["host"]: {"status": "ok", "reason": None} for c in columns},
        "production": labels,
        "audited_areas": ["env"],
        "findings": findings,
        "stale_rules": [],
        "errors": [],
        "gate": {"fail_on": "never", "tripped": False, "count": 0},
    }


def markdown_of(audit):
    return render_markdown(REPORT_TEMPLATE, build_view(build_document(audit, "2026-01-01T00:00:00Z", "i")))


def test_a_fleet_of_50_with_the_same_drift_gives_a_report_about_as_long_as_one_host():
    one, fleet = markdown_of(audit_of(1)), markdown_of(audit_of(50))
    assert len(fleet) <= 1.5 * len(one), (len(one), len(fleet))
    assert "| dev | prod |" in fleet
    assert "| `dev-value` | `prod-value` |" in fleet
    assert "50 hosts: web00, web01, web02 and 47 more" in fleet


def test_messages_name_each_value_once_with_its_columns_folded():
    from ansible_collections.envparity.audit.plugins.plugin_utils.findings import by_value

    pairs = [("dev", "DEBUG")] + [("prod/web%02d" % n, "INFO") for n in range(50)] + [("prod/web50", "TRACE")]
    assert by_value(pairs) == "dev=DEBUG; prod/web00, prod/web01, prod/web02 and 47 more=INFO; prod/web50=TRACE"
    assert by_value([("dev", "refused"), ("prod", "refused")], ": ") == "dev and prod: refused"


def test_an_area_compared_in_one_environment_only_is_said_in_the_report():
    from ansible_collections.envparity.audit.plugins.plugin_utils.audit import not_compared_finding

    audit = audit_of(1, drift_keys=0)
    audit["findings"] = [not_compared_finding("env", ["dev", "prod"], ["dev"], ["dev", "prod"])]
    document = build_document(audit, "2026-01-01T00:00:00Z", "i")
    assert document["summary"]["not_compared"] == ["env"]
    assert "**Not compared: env.**" in markdown_of(audit)
    assert "Not compared" not in markdown_of(audit_of(1))
