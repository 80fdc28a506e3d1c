"""Tolerances of the rules file (plugin_utils/tolerances.py): parsing, lookup, and the thresholds
they override in the health and endpoints diffs, in both directions (a finding off, one on)."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import health_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import RulesError
from ansible_collections.envparity.audit.plugins.plugin_utils.tolerances import (
    Tolerances,
    annotate,
    tolerance,
    validate_tolerance,
)
from tests.unit.plugins.plugin_utils import test_endpoints_diff as endpoints
from tests.unit.plugins.plugin_utils.test_health_diff import cell, host, service

ENVIRONMENT_OF = {"dev": "dev", "prod": "prod"}


def entry(path, thresholds, number=1, **fields):
    return validate_tolerance(
        dict({"path": path, "thresholds": thresholds, "reason": "r"}, **fields), "t.yml tolerance %d" % number
    )


def context(*entries):
    return {"baseline": "dev", "production": {"prod"}, "tolerances": Tolerances(entries, ENVIRONMENT_OF)}


def checks(findings):
    return sorted((f["subject"], f["key"], f["check"]) for f in findings)


def test_a_tolerance_turns_a_health_finding_off_and_another_on():
    full = host(filesystems={"data": {"status": "ok", "mount": "/", "used_percent": 90.0, "inodes_used_percent": 1}})
    cells = {"dev": cell(), "prod": cell(host_record=full, services={"api": service(restart_count=0)})}
    plain = checks(health_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}}))
    assert plain == [("host", "filesystems.data.used", "health.disk_full")]
    given = context(
        entry("health/host", {"disk_percent": 95}, environments=["prod"]),
        entry("health/stack:*", {"restarts": 0}, number=2),
    )
    found = health_diff.diff(["dev", "prod"], cells, given)
    assert checks(found) == [("stack:shop", "services.api.restarts", "health.restarts")]
    applied = given["tolerances"].report()
    assert [(a["subject"], a["name"], a["value"], a["default"]) for a in applied] == [
        ("host", "disk_percent", 95, 85),
        ("stack:shop", "restarts", 0, 1),
    ]
    annotate(found, applied)
    assert found[0]["tolerances"] == [
        {"column": "prod", "name": "restarts", "value": 0, "default": 1, "source": "t.yml tolerance 2"}
    ]


def test_a_tolerance_for_another_environment_or_subject_does_not_apply():
    given = context(
        entry("health/stack:*", {"restarts": 0}, environments=["staging"]), entry("health/host", {"restarts": 0})
    )
    assert tolerance(given, "health", "stack:shop", "prod", "restarts", 1) == 1
    assert given["tolerances"].report() == []
    assert [t["source"] for t in given["tolerances"].unmatched(["health"])] == [
        "t.yml tolerance 1",
        "t.yml tolerance 1",
    ]
    assert tolerance({}, "health", "host", "prod", "restarts", 3) == 3  # no tolerances in the context


def test_the_first_matching_tolerance_wins():
    given = context(entry("health/host", {"disk_percent": 99}), entry("health/*", {"disk_percent": 50}, number=2))
    assert tolerance(given, "health", "host", "prod", "disk_percent", 85) == 99
    assert tolerance(given, "health", "stack:x", "prod", "disk_percent", 85) == 50


def test_endpoints_slower_tolerance_per_endpoint():
    prod = endpoints.record(timing={"samples": 5, "failed": 0, "median_ms": 610.0, "p95_ms": 640.0, "max_ms": 650.0})
    cells = endpoints.cells(endpoints.record(), prod)
    slow = [f for f in endpoints.diff(["dev", "prod"], cells, endpoints.CONTEXT) if f["check"] == "endpoints.slower"]
    assert len(slow) == 1
    relaxed = dict(
        endpoints.CONTEXT, tolerances=Tolerances([entry("endpoints/api", {"slower_ms": 1000})], ENVIRONMENT_OF)
    )
    assert [f for f in endpoints.diff(["dev", "prod"], cells, relaxed) if f["check"] == "endpoints.slower"] == []
    fast = endpoints.record(timing={"samples": 5, "failed": 0, "median_ms": 30.0, "p95_ms": 32.0, "max_ms": 33.0})
    strict = dict(
        endpoints.CONTEXT,
        tolerances=Tolerances([entry("endpoints/*", {"slower_ms": 5, "slower_percent": 10})], ENVIRONMENT_OF),
    )
    found = endpoints.diff(["dev", "prod"], endpoints.cells(endpoints.record(), fast), strict)
    assert [f["check"] for f in found if f["check"] == "endpoints.slower"] == ["endpoints.slower"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"path": "env/app", "thresholds": {"x": 1}}, "an area that has thresholds"),
        ({"path": "health", "thresholds": {"disk_percent": 1}}, "<area>/<subject glob>"),
        ({"path": "health/host", "thresholds": {"slower_ms": 1}}, "health has no threshold 'slower_ms'"),
        ({"path": "health/host", "thresholds": {"disk_percent": "95"}}, "disk_percent must be a number >= 0"),
        ({"path": "health/host", "thresholds": {"disk_percent": -1}}, "a number >= 0"),
        ({"path": "health/host", "thresholds": {"clock_sync": 0}}, "clock_sync must be true or false"),
        ({"path": "health/host", "thresholds": {}}, "thresholds is required"),
        ({"path": "health/host", "thresholds": {"restarts": 2}, "why": "x"}, "unknown field(s) why"),
    ],
)
def test_malformed_tolerances(fields, message):
    fields.setdefault("reason", "r")
    with pytest.raises(RulesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_tolerance(fields, "t.yml tolerance 1")
    with pytest.raises(RulesError, match="reason is required"):
        validate_tolerance({"path": "health/host", "thresholds": {"restarts": 2}}, "t.yml tolerance 1")
