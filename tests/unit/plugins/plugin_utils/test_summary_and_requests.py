"""Terminal summary lines, failure reasons, and area requests from inventory inputs."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.requests import (
    RequestError,
    configured_areas,
    env_request,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.summary import MAX_REASON, failure_reason, summary_lines


def report(tripped=False, fail_on="high"):
    return {
        "summary": {
            "unexpected": 3,
            "expected": 1,
            "unknown": 0,
            "stale_rules": 2,
            "by_severity": {"critical": 0, "high": 1, "medium": 1, "low": 1, "info": 0},
        },
        "gate": {"fail_on": fail_on, "tripped": tripped, "count": 1 if tripped else 0},
        "report": {"markdown": "/r/x.md", "json": "/r/x.json"},
    }


def test_summary_lines():
    lines = summary_lines(report(tripped=True))
    assert lines[0].startswith("envparity: 3 unexpected finding(s) (critical 0, high 1, medium 1, low 1, info 0)")
    assert lines[1] == "envparity: report /r/x.md (JSON /r/x.json)"
    assert lines[2] == "envparity: gate FAILED: 1 finding(s) at or above high."
    assert summary_lines(report(fail_on="never"))[2] == "envparity: gate off (drift_fail_on=never)."


def test_summary_without_report_says_so():
    assert "no report was written" in summary_lines(None)[0]
    assert summary_lines({"msg": "cannot compare environments: x"}) == [
        "envparity: the report step failed: cannot compare environments: x"
    ]


def test_failure_reason_is_one_bounded_line():
    assert failure_reason({"msg": "a\n  b"}, "failed") == "a b"
    assert failure_reason({}, "unreachable") == "host unreachable"
    assert len(failure_reason({"msg": "x" * 5000}, "failed")) == MAX_REASON


def test_env_request():
    assert env_request([]) is None
    assert env_request([{"name": "app", "path": "a.env"}], "/p", 5) == {
        "project_dir": "/p",
        "files": [{"name": "app", "path": "a.env", "template": None, "allow_outside_project": False}],
        "max_bytes": 5,
    }


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([{"name": "app"}], "item 1 needs a name and a path"),
        ([{"name": "a", "path": "x"}, {"name": "a", "path": "y"}], "a appears twice"),
        (["x"], "item 1 needs"),
    ],
)
def test_env_request_rejects_bad_input(files, message):
    with pytest.raises(RequestError, match=message):
        env_request(files)


def test_configured_areas_drops_unset():
    assert configured_areas({"env": None, "docker": {"x": 1}}) == {"docker": {"x": 1}}


def test_postgres_request_never_carries_a_password():
    from ansible_collections.envparity.audit.plugins.plugin_utils.requests import postgres_passwords, postgres_request

    databases = [
        {"name": "app", "dbname": "ai_assistant", "user": "prod_user", "password": "CANARYpw123", "container": "db-1"},
        {"name": "analytics", "dbname": "analytics", "user": "prod_user", "host": "127.0.0.1", "port": "55433"},
    ]
    request = postgres_request(databases, "unix:///run/d.sock", {"timeout": 9})
    assert "CANARYpw123" not in repr(request)
    assert request["databases"][1] == {
        "name": "analytics",
        "dbname": "analytics",
        "user": "prod_user",
        "host": "127.0.0.1",
        "port": 55433,
        "container": None,
    }
    assert request["timeout"] == 9 and request["docker_host"] == "unix:///run/d.sock"
    assert postgres_passwords(databases) == {"app": "CANARYpw123"}
    assert postgres_request([]) is None
    with pytest.raises(RequestError, match="needs a name, a dbname and a user"):
        postgres_request([{"name": "x"}])
