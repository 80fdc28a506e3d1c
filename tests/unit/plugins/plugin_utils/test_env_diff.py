"""The env area's diff rules on hand-built facts (the shape env_collect returns)."""

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.redact import length_class
from ansible_collections.envparity.audit.plugins.plugin_utils import env_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import unknown_cell


def plain(value, line=1):
    return {
        "secret": False,
        "display": value,
        "fp": "fp:" + value,
        "secret_fp": None,
        "length_class": length_class(len(value)),
        "empty": value == "",
        "line": line,
    }


def secret(value, line=1, display=None):
    return {
        "secret": True,
        "display": display,
        "fp": "fp:" + value,
        "secret_fp": "sfp:" + value,
        "length_class": length_class(len(value)),
        "empty": value == "",
        "line": line,
    }


def env_file(keys, mode="0600", duplicates=None, errors=None, template=None, status="ok"):
    return {
        "path": "/p/app.env",
        "status": status,
        "reason": None,
        "mode": mode,
        "owner": "deploy",
        "group": "deploy",
        "size": 10,
        "keys": keys,
        "duplicates": duplicates or {},
        "errors": errors or [],
        "template": template,
    }


def run(dev_keys, prod_keys, **prod_extra):
    cells = {
        "dev": {"files": {"app": env_file(dev_keys)}},
        "prod": {"files": {"app": env_file(prod_keys, **prod_extra)}},
    }
    return env_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}})


def checks(findings):
    return sorted((f["key"], f["kind"], f["check"]) for f in findings)


@pytest.mark.parametrize(
    ("dev", "prod", "expected"),
    [
        ({"A": plain("1")}, {"A": plain("1")}, []),
        ({"A": plain("1")}, {}, [("A", "missing", "env.key_missing")]),
        ({}, {"B": plain("1")}, [("B", "extra", "env.key_extra")]),
        ({"L": plain("DEBUG")}, {"L": plain("INFO")}, [("L", "changed", "env.value_changed")]),
        ({"S": secret("a" * 30)}, {"S": secret("b" * 30)}, [("S", "changed", "env.secret_changed")]),
        ({"S": secret("a" * 30)}, {"S": secret("a" * 30)}, [("S", "policy", "env.secret_reused")]),
        ({"DEBUG": plain("true")}, {"DEBUG": plain("true")}, [("DEBUG", "policy", "env.debug_enabled")]),
        ({"FLASK_DEBUG": plain("0")}, {"FLASK_DEBUG": plain("0")}, []),
        (
            {"APP_LOG_LEVEL": plain("debug")},
            {"APP_LOG_LEVEL": plain("debug")},
            [("APP_LOG_LEVEL", "policy", "env.debug_log_level")],
        ),
        (
            {"U": plain("http://localhost:8000/cb")},
            {"U": plain("http://localhost:8000/cb")},
            [("U", "policy", "env.localhost_url")],
        ),
        (
            {"U": plain("http://example.org/")},
            {"U": plain("http://example.org/")},
            [("U", "policy", "env.insecure_url")],
        ),
        ({"U": plain("https://example.org/")}, {"U": plain("https://example.org/")}, []),
        (
            {"S": secret("a" * 30)},
            {"S": secret("")},
            [("S", "changed", "env.secret_changed"), ("S", "policy", "env.empty_secret")],
        ),
        (
            {"S": secret("a" * 30)},
            {"S": secret("short")},
            [("S", "changed", "env.secret_changed"), ("S", "policy", "env.short_secret")],
        ),
    ],
)
def test_key_checks(dev, prod, expected):
    assert checks(run(dev, prod)) == expected


@pytest.mark.parametrize(("length", "short"), [(1, True), (4, True), (8, True), (15, True), (16, False), (64, False)])
def test_short_secret_is_decided_on_the_length_class(length, short):
    found = [f for f in run({"S": secret("a" * 40)}, {"S": secret("b" * length)}) if f["check"] == "env.short_secret"]
    assert [(f["severity"], f["environments"]) for f in found] == ([("medium", ["prod"])] if short else [])
    if short:
        assert "under 16 characters" in found[0]["message"]


def test_production_policies_do_not_apply_to_dev():
    cells = {
        "dev": {"files": {"app": env_file({"DEBUG": plain("true"), "U": plain("http://localhost/")}, mode="0644")}}
    }
    assert env_diff.diff(["dev"], cells, {"baseline": "dev", "production": set()}) == []


@pytest.mark.parametrize(("mode", "severity"), [("0600", None), ("0640", "medium"), ("0644", "high"), ("0604", "high")])
def test_file_permissions_in_production(mode, severity):
    found = [f for f in run({}, {}, mode=mode) if f["check"] == "env.file_permissions"]
    assert [f["severity"] for f in found] == ([severity] if severity else [])


def test_duplicates_syntax_and_template():
    template = {"path": "/p/example", "status": "ok", "reason": None, "keys": ["A", "SMTP_PASSWORD"]}
    findings = run({"A": plain("1")}, {"A": plain("1")}, duplicates={"A": [2, 5]}, errors=[7, 9], template=template)
    assert checks(findings) == [
        ("@syntax", "policy", "env.unparseable_line"),
        ("A", "policy", "env.duplicate_key"),
        ("SMTP_PASSWORD", "missing", "env.template_missing"),
    ]
    syntax = next(f for f in findings if f["key"] == "@syntax")
    assert syntax["values"] == {"dev": None, "prod": "lines 7, 9"}


def test_broken_file_is_reported_once_and_keys_are_not_compared():
    cells = {
        "dev": {"files": {"app": env_file({"A": plain("1")})}},
        "prod": {"files": {"app": env_file({}, status="missing")}},
    }
    findings = env_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}})
    assert checks(findings) == [("@file", "missing", "env.file_status")]
    assert findings[0]["values"] == {"dev": "ok", "prod": "file missing"}


def test_file_refused_outside_the_project_is_reported_and_not_compared():
    refused = dict(env_file({}, status="outside_project"), reason="The path leads through a symlink ...")
    cells = {"dev": {"files": {"app": env_file({"A": plain("1")})}}, "prod": {"files": {"app": refused}}}
    findings = env_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}})
    assert checks(findings) == [("@file", "unknown", "env.file_status")]
    assert findings[0]["severity"] == "high"
    assert findings[0]["values"] == {"dev": "ok", "prod": "symlink leads outside the project, not read"}
    assert "prod: The path leads through a symlink ..." in findings[0]["message"]


def test_unknown_column_is_marked_not_compared():
    dev = {"files": {"app": env_file({"A": plain("1"), "L": plain("a")})}}
    web1 = {"files": {"app": env_file({"L": plain("b")})}}
    context = {"baseline": "dev", "production": {"prod/web1", "prod/web2"}}
    # Control: a readable host lacking A is reported; the unknown one below must not be.
    control = env_diff.diff(["dev", "prod/web1"], {"dev": dev, "prod/web1": web1}, context)
    assert checks(control) == [("A", "missing", "env.key_missing"), ("L", "changed", "env.value_changed")]
    columns = ["dev", "prod/web1", "prod/web2"]
    cells = {"dev": dev, "prod/web1": web1, "prod/web2": unknown_cell("unreachable: refused")}
    findings = env_diff.diff(columns, cells, context)
    assert checks(findings) == checks(control)
    for finding in findings:
        assert finding["values"]["prod/web2"] == {"unknown": "unreachable: refused"}
        assert finding["environments"] == ["prod/web1"]


def test_secret_values_are_labelled_never_shown():
    findings = run({"S": secret("dev-secret-value-123456")}, {"S": secret("prod-secret-value-654321")})
    assert findings[0]["values"] == {"dev": "‹secret A, 16-31 chars›", "prod": "‹secret B, 16-31 chars›"}


def test_url_with_password_shows_redacted_form():
    url = secret("postgresql://u:pw@db/x", display="postgresql://u:***@db/x")
    findings = run(
        {"DATABASE_URL": url}, {"DATABASE_URL": secret("postgresql://u:pw2@db/x", display="postgresql://u:***@db/x")}
    )
    assert findings[0]["values"]["dev"] == "postgresql://u:***@db/x ‹secret A, 16-31 chars›"


def test_a_file_configured_on_one_host_only_is_left_to_the_engine():
    # The engine's env.not_configured speaks for it (test_audit); the area's diff compares nothing.
    cells = {
        "dev": {"files": {"app": env_file({}), "worker": env_file({"A": plain("1")})}},
        "prod": {"files": {"app": env_file({})}},
    }
    findings = env_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": set()})
    assert [f for f in findings if f["subject"] == "worker"] == []


def test_three_hosts_n_way():
    cells = {
        "dev": {"files": {"app": env_file({"L": plain("a")})}},
        "prod/web1": {"files": {"app": env_file({"L": plain("a")})}},
        "prod/web2": {"files": {"app": env_file({"L": plain("b")})}},
    }
    findings = env_diff.diff(["dev", "prod/web1", "prod/web2"], cells, {"baseline": "dev", "production": set()})
    assert checks(findings) == [("L", "changed", "env.value_changed")]
    assert findings[0]["environments"] == ["prod/web2"]
