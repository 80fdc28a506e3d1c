"""The rules linter: malformed, duplicate, shadowed, stale rules, expired and expiring waivers,
each with its line; shadowing is claimed only where it is certain."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.rules import validate_rule
from ansible_collections.envparity.audit.plugins.plugin_utils.rules_lint import (
    ERRORS,
    lint_files,
    lint_text,
    problem_lines,
    shadows,
)

NOW = 1796083200  # 2026-12-01T00:00:00Z

RULES = """\
rules:
  - path: env/*
    kinds: [changed]
    reason: all changed env values
  - path: env/app/DEBUG
    kinds: [changed]
    reason: shadowed by rule 1
  - path: env/*
    kinds: [changed]
    reason: same match as rule 1
  - path: env/app/DEBUG
    reason: not shadowed, other kinds than rule 1
  - path: git/*
    reason: r
    owner: alice
    expires: 2026-11-30
  - path: git/repo/main
    reason: not shadowed (rule 5 expires)
  - path: docker/*
    reason: r
    owner: bob
    expires: 2026-12-10
  - path: postgres/app
    reason: missing kinds type
    kinds: changed
  - path: env/legacy/OLD
    reason: stale in the last report
"""


def test_each_problem_with_its_line():
    problems = lint_text(RULES, "rules.yml", NOW, stale_sources={"rules.yml rule 9"})
    assert [(p["line"], p["kind"]) for p in problems] == [
        (5, "shadowed"),
        (8, "duplicate"),
        (13, "expired"),
        (19, "expiring"),
        (23, "malformed"),
        (26, "stale"),
    ]
    lines = problem_lines(problems)
    assert lines[0] == "rules.yml:5: shadowed: never matches: rule 1 (line 2, env/*) always matches first"
    assert lines[2] == "rules.yml:13: expired: waiver expired on 2026-12-01T00:00:00Z (owner alice)"
    assert lines[4] == "rules.yml:23: malformed: kinds must be a list of strings"


def rule(path, **fields):
    return validate_rule(dict({"path": path, "reason": "r"}, **fields), "r")


@pytest.mark.parametrize(
    ("earlier", "later", "expected"),
    [
        (rule("env/*"), rule("env/app/DEBUG"), True),
        (rule("env/*"), rule("env/app/LOG_*"), True),
        (rule("env/app/LOG_*"), rule("env/*"), False),
        (rule("env/app/?"), rule("env/app/*"), False),  # "?" matches "*" as a character, not what it stands for
        (rule("env/app/[AB]"), rule("env/app/A"), True),
        (rule("env/app/[AB]"), rule("env/app/[AB]"), True),
        (rule("env/*", kinds=["changed"]), rule("env/app/X"), False),
        (rule("env/*"), rule("env/app/X", kinds=["unknown"]), False),  # unknown is never matched unless listed
        (rule("env/*", environments=["prod"]), rule("env/app/X", environments=["prod"]), True),
        (rule("env/*", environments=["prod"]), rule("env/app/X"), False),
        (rule("env/*", checks=["a", "b"]), rule("env/app/X", checks=["a"]), True),
        (rule("env/*", owner="a", expires="2030-01-01"), rule("env/app/X"), False),
    ],
)
def test_shadowing_is_claimed_only_where_certain(earlier, later, expected):
    assert shadows(earlier, later) is expected


def test_files_that_cannot_be_read_or_parsed(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("rules:\n  - path: [\n")
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00")
    problems = lint_files([str(tmp_path / "missing.yml"), str(broken), str(binary)], NOW)
    assert [(p["kind"], p["message"]) for p in problems] == [
        ("malformed", "cannot read: No such file or directory"),
        ("malformed", "not valid YAML"),
        ("malformed", "not UTF-8 text"),
    ]
    assert problems[1]["line"] == 3
    assert lint_text("", "empty.yml", NOW) == []
    assert lint_text("- a\n", "list.yml", NOW)[0]["message"] == (
        "expected a mapping with a list under rules or policies or tolerances"
    )


def test_stale_rules_come_from_the_last_report(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text("rules:\n  - path: env/a/B\n    reason: r\n")
    report = {"stale_rules": [{"path": "env/a/B", "reason": "r", "source": "%s rule 1 (line 2)" % path}]}
    assert [p["kind"] for p in lint_files([str(path)], NOW, report)] == ["stale"]
    assert lint_files([str(path)], NOW, None) == []


POLICIES = """\
rules:
  - path: env/app/X
    reason: r
policies:
  - must_equal: docker/app/services.web.image
    severity: high
    reason: r
  - must_equal: docker/app/services.web.image
    severity: low
    reason: the same policy again, another severity
  - value: env/app/LOG_LEVEL
    one_of: INFO
    severity: low
    reason: one_of is not a list
  - must_differ: nowhere/app/X
    severity: low
    reason: no such area
  - must_equal: git/app/head
    severity: low
    reason: matched nothing in the last report
tolerances:
  - path: health/host
    thresholds: {disk_percent: 95}
    reason: r
  - path: health/host
    thresholds: {disk_percnt: 95}
    reason: misspelt
  - path: endpoints/api
    thresholds: {slower_ms: 500}
    reason: gave no threshold in the last report
"""


def test_policies_and_tolerances_with_their_lines():
    report = {
        "unmatched_policies": [{"source": "rules.yml policy 5 (line 18)", "path": "git/app/head", "reason": "r"}],
        "unmatched_tolerances": [{"source": "rules.yml tolerance 3 (line 28)", "path": "endpoints/api", "reason": "r"}],
    }
    problems = lint_files_text(POLICIES, report)
    assert [(p["line"], p["kind"]) for p in problems] == [
        (8, "duplicate"),
        (11, "malformed"),
        (15, "malformed"),
        (18, "unmatched"),
        (25, "malformed"),
        (28, "unmatched"),
    ]
    lines = problem_lines(problems)
    assert lines[0] == "rules.yml:8: duplicate: same as policy 1 (line 5)"
    assert lines[1] == "rules.yml:11: malformed: a value policy needs one_of: a non-empty list of values"
    assert "must_differ names no area ('nowhere'" in lines[2]
    assert lines[3] == "rules.yml:18: unmatched: policy matched nothing in the last audit: git/app/head"
    assert "health has no threshold 'disk_percnt'" in lines[4]
    assert lines[5] == "rules.yml:28: unmatched: tolerance matched nothing in the last audit: endpoints/api"
    assert "unmatched" not in ERRORS  # said, not failed: the last run may have audited fewer areas


def test_an_unknown_section_is_malformed():
    assert problem_lines(lint_text("rules: []\npolicy: []\n", "r.yml", NOW)) == [
        "r.yml:1: malformed: unknown section(s) policy (sections: rules, policies, tolerances)"
    ]


def lint_files_text(text, report):
    from ansible_collections.envparity.audit.plugins.plugin_utils.rules_lint import unmatched_sources

    return lint_text(text, "rules.yml", NOW, unmatched_sources=unmatched_sources(report))
