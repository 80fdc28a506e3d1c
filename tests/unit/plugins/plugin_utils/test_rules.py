"""Rules of expected differences: parsing, matching, stale rules."""

import pytest
import yaml

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import make_finding
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import (
    RulesError,
    apply_rules,
    parse_rules,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.rules_file import load_rules


def finding(key, kind="changed", check="env.value_changed", environments=("prod",)):
    return make_finding(
        area="env",
        subject="app",
        key=key,
        kind=kind,
        check=check,
        severity="low",
        values={},
        environments=environments,
        message="m",
        recommendation="r",
    )


def test_parse_and_apply():
    rules = parse_rules(
        "rules:\n  - path: env/app/DATABASE_URL\n    kinds: [changed]\n    reason: hosts differ\n"
        "  - path: env/app/LEGACY_*\n    reason: old\n",
        "rules.yml",
    )
    findings = [finding("DATABASE_URL"), finding("LOG_LEVEL")]
    stale = apply_rules(findings, rules, {"prod": "prod"})
    assert [f["expected"] for f in findings] == [True, False]
    assert findings[0]["reason"] == "hosts differ"
    assert [r["path"] for r in stale] == ["env/app/LEGACY_*"]


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ({"path": "env/app/*", "reason": "x"}, True),
        ({"path": "env/other/*", "reason": "x"}, False),
        ({"path": "env/app/K", "kinds": ["missing"], "reason": "x"}, False),
        ({"path": "env/app/K", "checks": ["env.value_changed"], "reason": "x"}, True),
        ({"path": "env/app/K", "environments": ["staging"], "reason": "x"}, False),
        ({"path": "env/app/K", "environments": ["prod"], "reason": "x"}, True),
    ],
)
def test_rule_matching(rule, matches):
    rules = parse_rules(yaml.safe_dump({"rules": [rule]}), "r.yml")
    found = [finding("K")]
    apply_rules(found, rules, {"prod": "prod"})
    assert found[0]["expected"] is matches


def test_unknown_is_never_expected_by_accident():
    rules = parse_rules('rules: [{path: "*", reason: "all"}]', "r.yml")
    found = [finding("*", kind="unknown", check="collect.failed")]
    apply_rules(found, rules, {})
    assert found[0]["expected"] is False
    explicit = parse_rules('rules: [{path: "*", kinds: [unknown], reason: "host retired"}]', "r.yml")
    apply_rules(found, explicit, {})
    assert found[0]["expected"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{path: x}]", "reason is required"),
        ("rules: [{reason: x}]", "path is required"),
        ("rules: [{path: x, reason: y, kind: [changed]}]", "unknown field(s) kind"),
        ("rules: [{path: x, reason: y, kinds: [differs]}]", "kinds must be among"),
        ("rules: {a: 1}", "expected a mapping with a list"),
        ("rules: [\n  - path: [", "not valid YAML at line"),
        ("- 1", "expected a mapping"),
    ],
)
def test_bad_rules_are_rejected_with_where(text, message):
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.yml")
    assert message in str(caught.value)
    assert "rules.yml" in str(caught.value)


def test_load_rules_reports_missing_file(tmp_path):
    good = tmp_path / "good.yml"
    good.write_text("rules:\n  - {path: env/a/b, reason: r}\n")
    loaded, errors = load_rules([str(good), str(tmp_path / "absent.yml")])
    assert [r["path"] for r in loaded["rules"]] == ["env/a/b"]
    assert errors == ["rules file %s: No such file or directory" % (tmp_path / "absent.yml")]
